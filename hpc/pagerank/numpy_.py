"""PageRank's NumPy back end: NumPy for the update, SciPy's compiled CSR product for the
pattern SpMV (the interface is described in :mod:`hpc.pagerank.backends`)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Kernels:
    """NumPy for the update, SciPy's compiled CSR product for the pattern SpMV."""

    name = "numpy"
    sparse_kernel = "scipy"
    xp = np

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            self.A = sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)

        def spmv(self, x, y, accumulate=False):
            if accumulate:
                y += self.A @ x
            else:
                y[:] = self.A @ x

    def local(self, A):
        return self._Local(A)

    @staticmethod
    def update(y, x, xs, inv, d, base):
        xn = d * y + base
        diff = float(np.abs(xn - x).sum())
        x[:] = xn
        np.multiply(xn, inv, out=xs)
        dsum = float(xn[inv == 0.0].sum())
        return diff, dsum

    @staticmethod
    def asarray(a):
        """A host array as this back end's array (contiguous; no copy when it already is)."""
        return np.ascontiguousarray(a)

    @staticmethod
    def host(a):
        """This back end's array as a host array (no copy for NumPy)."""
        return np.asarray(a)
