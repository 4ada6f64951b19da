"""PageRank's CuPy back end: cuSPARSE pattern SpMV and one fused element-wise update kernel
(the interface is described in :mod:`hpc.pagerank.backends`)."""
from __future__ import annotations

import cupy as cp
import cupyx.scipy.sparse as csp
import numpy as np
import scipy.sparse as sp


class Kernels:
    """CuPy on the GPU: cuSPARSE pattern SpMV, one fused element-wise kernel for the update."""

    name = "cupy"
    sparse_kernel = "cupy"

    def __init__(self):
        self.xp = cp
        self._upd = cp.ElementwiseKernel(
            "float64 y, float64 inv, float64 d, float64 base", "float64 x, float64 xs, float64 dx, float64 dm",
            "double xn = d * y + base; dx = fabs(xn - x); x = xn; xs = xn * inv; dm = inv == 0.0 ? xn : 0.0;",
            "hpc_pagerank_update")

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            self.A = csp.csr_matrix(sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape))

        def spmv(self, x, y, accumulate=False):
            if accumulate:
                y += self.A @ x
            else:
                y[...] = self.A @ x

    def local(self, A, values: bool = False):
        """The local kernel of one block: pattern (all values 1) or, with ``values``, the
        stored values (weights)."""
        if values:
            loc = self._Local(A)
            loc.A = csp.csr_matrix(sp.csr_matrix(A, dtype=np.float64))
            return loc
        return self._Local(A)

    def update(self, y, x, xs, inv, d, base):
        dx = cp.empty_like(y)
        dm = cp.empty_like(y)
        self._upd(y, inv, float(d), float(base), x, xs, dx, dm)
        return float(dx.sum()), float(dm.sum())

    def asarray(self, a):
        return cp.asarray(a)

    @staticmethod
    def host(a):
        return a.get() if hasattr(a, "get") else np.asarray(a)
