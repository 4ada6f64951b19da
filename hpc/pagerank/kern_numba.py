"""Numba kernels of hpc.pagerank (parallel loops; compiled on first use, cached on disk)."""
from __future__ import annotations

import numba as nb
import numpy as np


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
    """x_new = d*y + base; returns (|x_new - x|_1, dangling mass); sets x, xs."""
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


__all__ = ["spmv_pattern", "update", "np"]
