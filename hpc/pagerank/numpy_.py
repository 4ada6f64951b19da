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

    class _Valued:
        """A local block with its stored values (edge weights): SciPy's CSR product."""

        def __init__(self, A: sp.csr_matrix):
            self.A = sp.csr_matrix(A, dtype=np.float64)

        def spmv(self, x, y, accumulate=False):
            if accumulate:
                y += self.A @ x
            else:
                y[:] = self.A @ x

    def local(self, A, values: bool = False):
        """The local kernel of one block: pattern (all values 1) or, with ``values``, the
        stored values (weights)."""
        return Kernels._Valued(A) if values else self._Local(A)   # numpy_'s, for every subclass

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
