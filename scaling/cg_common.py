"""Helpers shared by the cg_*.py benchmarks: launch `python -m hpc.cg` (or a worker) under
mpiexec with the suite's oversubscription settings and read the JSON record back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MPIEXEC = str(Path(PY).parent / "mpiexec")


def mpi_env(threads: int = 1) -> dict:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1",
             MPIR_CVAR_POLLS_BEFORE_YIELD="1", MPIR_CVAR_CH4_PROGRESS_THROTTLE="true",
             MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT="1", MPIEXEC_TIMEOUT="1200")
    return e


def run_json(ranks: int, argv: list[str], module: str | None = "hpc.cg") -> dict:
    """Run under mpiexec with --json; returns the record (raises with stderr on failure)."""
    with tempfile.TemporaryDirectory() as d:
        js = os.path.join(d, "r.json")
        cmd = [MPIEXEC, "-n", str(ranks), PY] + (["-m", module] if module else []) + argv + ["--json", js]
        p = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env(), cwd=ROOT)
        if not os.path.exists(js):
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
        with open(js) as f:
            rec = json.load(f)
        rec["_returncode"] = p.returncode
        return rec


def have_petsc() -> bool:
    try:
        import petsc4py  # noqa: F401
    except ImportError:
        return False
    return True


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
