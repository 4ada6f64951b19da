"""HPCG 3.1, written from its specification: ``python -m hpc.cg hpcg --nx --ny --nz [--rt]``.

The API: :func:`run_hpcg` (every phase of the benchmark, the rating and the verdict),
:class:`HPCGResult`, :func:`process_grid` (HPCG's factorisation of the rank count).

- :mod:`.geometry`: the process grid, each rank's box, HPCG's checks on both
- :mod:`.problem`: the 27-point system of every multigrid level, its halo, CheckProblem
- :mod:`.solver`: CG and the V-cycle with HPCG's reference kernels or the suite's optimised ones
- :mod:`.benchmark`: the phases (spectral, symmetry, reference and optimised runs, timed sets,
  norm variance), the flop count and the rating
- :mod:`.app`: the command line
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "HPCGResult": ".benchmark",
    "run_hpcg": ".benchmark",
    "process_grid": ".geometry",
})
__all__ = ["HPCGResult", "process_grid", "run_hpcg"]

if TYPE_CHECKING:
    from .benchmark import HPCGResult, run_hpcg
    from .geometry import process_grid
