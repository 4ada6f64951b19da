"""Shared test helpers: launching apps under the mpich wheel's mpiexec, and the real data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")

# Yield instead of busy-polling when ranks exceed cores; nothing may hang.
MPI_ENV = {
    "MPIR_CVAR_POLLS_BEFORE_YIELD": "1",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "true",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


def mpirun(n: int, *args: str, timeout: int = 300, env: dict | None = None,
           module: str | None = None) -> subprocess.CompletedProcess:
    """Run ``mpiexec -n n python [-m module] args...``; MPIEXEC_TIMEOUT guards against hangs."""
    e = dict(os.environ)
    e.update(MPI_ENV)
    e["MPIEXEC_TIMEOUT"] = str(timeout)
    if env:
        e.update(env)
    cmd = [MPIEXEC, "-n", str(n), sys.executable]
    if module:
        cmd += ["-m", module]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout + 60,
                          cwd=str(ROOT))


def run_app(app: str, n: int, *args: str, timeout: int = 300, env: dict | None = None):
    """Run ``python -m hpc.<app>`` on n ranks."""
    return mpirun(n, *args, timeout=timeout, env=env, module=f"hpc.{app}")


def load_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def data_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.fixture
def mpi():
    return mpirun


@pytest.fixture
def app_runner():
    return run_app
