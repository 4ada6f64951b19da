"""hpc.cg: distributed CG solvers (cg, pcg, cg1, pipecg; dcdm) on hpc.sparse matrices.

The API: :func:`solve` (``scipy.sparse.linalg.cg`` on every rank of a communicator),
:class:`Solver` (set up once, solve many right-hand sides), :class:`SolveInfo`,
:class:`DCDMOptions`.

- :mod:`.api`: the public functions above
- :mod:`.app`: the command line (``python -m hpc.cg``), a thin layer over the API
- :mod:`.methods`: the method and back-end registry, Problem/SolveOptions/SolveResult
- :mod:`.krylov`: PCG, Chronopoulos-Gear, Ghysels-Vanroose pipelined CG
- :mod:`.precond`, :mod:`.mg`, :mod:`.local`: Jacobi, block Jacobi (SGS / IC(0)), Chebyshev,
  multigrid
- :mod:`.dcdm`: the Deep Conjugate Direction Method: solver, training, network, shipped model
- :mod:`.petsc_backend`: the same solve with petsc4py KSP
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "DCDMOptions": ".api",
    "SolveInfo": ".api",
    "Solver": ".api",
    "solve": ".api",
})
__all__ = ["DCDMOptions", "SolveInfo", "Solver", "solve"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .api import DCDMOptions, SolveInfo, Solver, solve
