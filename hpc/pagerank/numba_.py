"""PageRank's numba back end: prange loops, compiled on first use and cached on disk (the
interface is described in :mod:`hpc.pagerank.backends`)."""
from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from .numpy_ import Kernels as NumpyKernels


@nb.njit(parallel=True, cache=True)
def spmv_pattern(indptr, indices, x, y, accumulate):
    """y = A x (or y += A x) for a pattern CSR (all values 1)."""
    n = indptr.shape[0] - 1
    for i in nb.prange(n):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += x[indices[k]]
        y[i] = y[i] + s if accumulate else s


@nb.njit(parallel=True, cache=True)
def update(y, x, xs, inv, d, base):
    """``x_new = d*y + base``; returns (L1 norm of ``x_new - x``, dangling mass); sets x, xs."""
    diff = 0.0
    dsum = 0.0
    for i in nb.prange(y.shape[0]):
        xn = d * y[i] + base
        diff += abs(xn - x[i])
        x[i] = xn
        xs[i] = xn * inv[i]
        if inv[i] == 0.0:
            dsum += xn
    return diff, dsum


class Kernels(NumpyKernels):
    """Numba prange loops (compiled on first use, cached)."""

    name = "numba"
    sparse_kernel = "numba"

    class _Local:
        def __init__(self, A: sp.csr_matrix):
            self.indptr = np.ascontiguousarray(A.indptr, dtype=np.int64)
            self.indices = np.ascontiguousarray(A.indices, dtype=np.int32)
            self.shape = A.shape

        def spmv(self, x, y, accumulate=False):
            if x.shape[0] != self.shape[1] or y.shape[0] != self.shape[0]:
                raise ValueError("spmv: vector length does not match the matrix")
            spmv_pattern(self.indptr, self.indices, x, y, accumulate)

    @staticmethod
    def update(y, x, xs, inv, d, base):
        n = y.shape[0]
        if not (x.shape[0] == xs.shape[0] == inv.shape[0] == n):
            raise ValueError("update: vectors differ in length")
        diff, dsum = update(y, x, xs, inv, float(d), float(base))
        return float(diff), float(dsum)
