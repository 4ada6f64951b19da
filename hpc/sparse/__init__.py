"""Distributed sparse matrices: the public API, shared by hpc.cg, hpc.spgemm and hpc.pagerank.

    from hpc.sparse import DistCSR, read_matrix

    A = read_matrix("bcsstk01.mtx")          # parallel Matrix Market reader, comm=None: WORLD
    A = DistCSR.from_scipy(S)                # a global SciPy matrix, the same on every rank
    y = A.matvec(A.local_slice(x, rows=False))   # vectors: plain NumPy blocks per rank
    y_all = A.gather_vector(y, root=None)    # the global y on every rank (== S @ x)
    S2 = A.to_scipy()                        # the global matrix on every rank (root=None)

Vectors are plain NumPy arrays holding this rank's block: ``x[col_offsets[r]:col_offsets[r+1]]``
for the argument of ``matvec`` and ``y[row_offsets[r]:row_offsets[r+1]]`` for its result;
:meth:`DistCSR.local_slice` and :meth:`DistCSR.gather_vector` convert from and to global ones.

Modules:

- :mod:`.dcsr`: :class:`DistCSR`, 1D row-block CSR with a ghost-exchange SpMV (the exchange
  plan is :class:`hpc.core.exchange.GhostPlan`)
- :mod:`.mmio`: parallel Matrix Market reader/writer (``read_matrix``, ``write_mm``)
- :mod:`.generators`: ``poisson2d``, ``poisson3d``, ``hpcg``, ``parse_problem``
- :mod:`.kernels`: local SpMV back ends (native, numba, numpy, scipy, cupy)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "DistCSR": ".dcsr", "pdot": ".dcsr", "pnorm": ".dcsr",
    "read_matrix": ".mmio", "write_mm": ".mmio",
})
__all__ = ["DistCSR", "read_matrix", "write_mm", "pdot", "pnorm"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .dcsr import DistCSR, pdot, pnorm
    from .mmio import read_matrix, write_mm
