"""Shared test helpers: launching apps under mpiexec (through hpc.core.launch), and the real data."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hpc.core.launch import YIELD_ENV, launch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# Every launch yields instead of busy-polling (the tests oversubscribe small machines), uses one
# thread per rank, and streams its output; nothing may hang (MPIEXEC_TIMEOUT).
TEST_ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
MPI_ENV = {**YIELD_ENV, **TEST_ENV}  # for tests that pass the environment on themselves


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave tests/mpi to its own runs (``mpiexec … pytest --with-mpi tests/mpi``, as
    tools/run_tests.sh does): its modules share basenames with the serial suite's, so a plain
    ``pytest`` collecting both would stop on import-file mismatches."""
    if collection_path == ROOT / "tests" / "mpi" and not config.getoption("with_mpi", False):
        return True
    return None


def mpirun(n: int, *args: str, timeout: int = 300, env: dict | None = None,
           module: str | None = None) -> subprocess.CompletedProcess:
    """Run ``mpiexec -n n python [-m module] args...`` from the repository root, output
    captured; MPIEXEC_TIMEOUT (``timeout`` seconds) guards against hangs."""
    return launch(n, args, module=module, progress="throttle", env={**TEST_ENV, **(env or {})},
                  timeout=timeout, capture_output=True, text=True, cwd=str(ROOT))


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


def kron_edges(scale: int = 10, ef: int = 8, seed: int = 3):
    """The distinct directed edges (m x 2, sorted) of the suite's Kronecker graph and its n,
    as networkx holds them (one edge of each duplicate)."""
    import numpy as np
    from mpi4py import MPI

    from hpc.pagerank import graphio
    g = graphio.generate_kron(f"kron:{scale}:{ef}", seed, MPI.COMM_SELF)
    src = np.repeat(np.arange(g.n, dtype=np.int64), g.outdeg)
    return np.unique(np.column_stack([src, g.out_indices]), axis=0), g.n
