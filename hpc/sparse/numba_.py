"""Numba kernels for the local sparse operations (compiled on first use, cached on disk)."""
from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def spmv(indptr, indices, data, x, y, accumulate):
    n = indptr.shape[0] - 1
    for i in prange(n):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += data[k] * x[indices[k]]
        if accumulate:
            y[i] += s
        else:
            y[i] = s


@njit(cache=True, nogil=True)
def gs_sweep(indptr, indices, data, diag, b, x, forward):
    """One Gauss-Seidel sweep on a square block, x in place (rows in order or reversed)."""
    n = indptr.shape[0] - 1
    for t in range(n):
        i = t if forward else n - 1 - t
        s = b[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j != i:
                s -= data[k] * x[j]
        x[i] = s / diag[i]
