"""IC(0) factorisation and triangular solves on a lower-triangular CSR block (Numba)."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def factor(indptr, indices, data):
    """In place: the lower triangle (sorted, diagonal last in each row) becomes L with A ~ L L^T.

    Row-oriented: L[i,k] = (A[i,k] - sum_{j<k} L[i,j] L[k,j]) / L[k,k] over the pattern of A.
    Returns -1, or the first row whose pivot is not positive.
    """
    n = indptr.shape[0] - 1
    for i in range(n):
        a, b = indptr[i], indptr[i + 1]
        if b == a or indices[b - 1] != i:
            return i
        for t in range(a, b - 1):
            k = indices[t]
            # sparse dot of row i (entries before t) and row k (entries before its diagonal)
            s = data[t]
            p, pe = a, t
            q, qe = indptr[k], indptr[k + 1] - 1
            while p < pe and q < qe:
                cp, cq = indices[p], indices[q]
                if cp == cq:
                    s -= data[p] * data[q]
                    p += 1
                    q += 1
                elif cp < cq:
                    p += 1
                else:
                    q += 1
            data[t] = s / data[indptr[k + 1] - 1]
        d = data[b - 1]
        for t in range(a, b - 1):
            d -= data[t] * data[t]
        if not d > 0.0:
            return i
        data[b - 1] = np.sqrt(d)
    return -1


@njit(cache=True, nogil=True)
def solve(indptr, indices, data, r):
    """z = (L L^T)^{-1} r: forward substitution by rows, back substitution by columns of L."""
    n = indptr.shape[0] - 1
    y = r.copy()
    for i in range(n):
        s = y[i]
        for t in range(indptr[i], indptr[i + 1] - 1):
            s -= data[t] * y[indices[t]]
        y[i] = s / data[indptr[i + 1] - 1]
    for i in range(n - 1, -1, -1):
        y[i] /= data[indptr[i + 1] - 1]
        yi = y[i]
        for t in range(indptr[i], indptr[i + 1] - 1):
            y[indices[t]] -= data[t] * yi
    return y
