"""Progress of hpc.kmedoids' long loops over candidate or point tiles (hpc.core.progress):
rank 0 prints at most a line a second, with the fraction done and the time left."""
from __future__ import annotations

from hpc.core.progress import Progress

QUIET = False  # the app's --quiet: no progress lines


def progress(total: float | None, phase: str, comm, unit: str = "cand") -> Progress:
    """A Progress for one loop (rank 0 of ``comm`` prints, unless QUIET)."""
    return Progress(total, phase, comm=comm, quiet=QUIET, unit=unit)
