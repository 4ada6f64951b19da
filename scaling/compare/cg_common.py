"""Helpers shared by the cg_*.py benchmarks: launch `python -m hpc.cg` (or a worker) under
mpiexec through hpc.core.launch and read the JSON record back."""
from __future__ import annotations

from pathlib import Path

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]

#: MPICH's progress mode of every launch: the figures in docs/workloads/cg.md were measured
#: with waiting ranks yielding their core (hpc.core.launch.YIELD_ENV)
PROGRESS = "throttle"


def run_json(ranks: int, argv: list[str], module: str | None = "hpc.cg",
             threads: int = 1) -> dict:
    """Run under mpiexec with --json; returns the record, also of a run that did not validate
    (exit status 1: its record says so); raises with the stderr tail on any other failure."""
    return run_record(ranks, module, argv, progress=PROGRESS, timeout=1200, cwd=ROOT,
                      env={"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"},
                      allow_invalid=True)


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
