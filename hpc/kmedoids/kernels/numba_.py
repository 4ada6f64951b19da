"""Numba kernels: direct (exact) distance loops and ΔTD sweeps parallel over candidate columns.

Threads own disjoint column chunks, rows are streamed in order, so every candidate's sums are
accumulated in point order (deterministic, independent of the thread count).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import numpy_

xp = np
_opts = dict(parallel=True, cache=True, nogil=True, boundscheck=False, fastmath=False)
CW = 32  # columns per thread chunk


def to_host(a):
    return np.asarray(a)


@njit(**_opts)
def _dist(A, B, metric, out):
    na, nb, d = A.shape[0], B.shape[0], A.shape[1]
    nrm_a = np.empty(na)
    nrm_b = np.empty(nb)
    if metric == 3:
        for i in range(na):
            s = 0.0
            for t in range(d):
                s += A[i, t] * A[i, t]
            nrm_a[i] = np.sqrt(s) if s > 0 else 1.0
        for j in range(nb):
            s = 0.0
            for t in range(d):
                s += B[j, t] * B[j, t]
            nrm_b[j] = np.sqrt(s) if s > 0 else 1.0
    for i in prange(na):
        for j in range(nb):
            s = 0.0
            if metric <= 1:
                for t in range(d):
                    x = A[i, t] - B[j, t]
                    s += x * x
                out[i, j] = np.sqrt(s) if metric == 0 else s
            elif metric == 2:
                for t in range(d):
                    s += abs(A[i, t] - B[j, t])
                out[i, j] = s
            else:
                for t in range(d):
                    s += A[i, t] * B[j, t]
                v = 1.0 - s / nrm_a[i] / nrm_b[j]
                out[i, j] = min(max(v, 0.0), 2.0)


_METRIC = {"euclidean": 0, "sqeuclidean": 1, "manhattan": 2, "cosine": 3}


def dist(A, B, metric):
    A = np.ascontiguousarray(A, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    out = np.empty((A.shape[0], B.shape[0]))
    _dist(A, B, _METRIC[metric], out)
    return out


@njit(**_opts)
def _colsum(D, out):
    n, nc = D.shape
    for ch in prange((nc + CW - 1) // CW):
        lo = ch * CW
        hi = min(nc, lo + CW)
        for c in range(lo, hi):
            out[c] = 0.0
        for o in range(n):
            for c in range(lo, hi):
                out[c] += D[o, c]


def colsum(D):
    out = np.empty(D.shape[1])
    _colsum(D, out)
    return out


@njit(**_opts)
def _build_gain(D, near_d, out):
    n, nc = D.shape
    for ch in prange((nc + CW - 1) // CW):
        lo = ch * CW
        hi = min(nc, lo + CW)
        for c in range(lo, hi):
            out[c] = 0.0
        for o in range(n):
            nd = near_d[o]
            for c in range(lo, hi):
                x = D[o, c] - nd
                if x < 0.0:
                    out[c] += x


def build_gain(D, near_d):
    out = np.empty(D.shape[1])
    _build_gain(D, near_d, out)
    return out


@njit(**_opts)
def _fastpam_delta(D, near_i, near_d, seco_d, k, out):
    n, nc = D.shape
    for ch in prange((nc + CW - 1) // CW):
        lo = ch * CW
        hi = min(nc, lo + CW)
        for c in range(lo, hi):
            for m in range(k + 1):
                out[c, m] = 0.0
        for o in range(n):
            nd = near_d[o]
            sd = seco_d[o]
            ni = near_i[o]
            for c in range(lo, hi):
                doj = D[o, c]
                if doj < nd:
                    out[c, k] += doj - nd
                    out[c, ni] += nd - sd
                elif doj < sd:
                    out[c, ni] += doj - sd


def fastpam_delta(D, near_i, near_d, seco_d, k):
    out = np.empty((D.shape[1], k + 1))
    _fastpam_delta(D, near_i, near_d, seco_d, k, out)
    return out


@njit(**_opts)
def _pam_delta(D, near_i, near_d, seco_d, k, out):
    n, nc = D.shape
    for ch in prange((nc + CW - 1) // CW):
        lo = ch * CW
        hi = min(nc, lo + CW)
        for m in range(k):  # the original PAM: one pass over the points per removed medoid
            for c in range(lo, hi):
                out[c, m] = 0.0
            for o in range(n):
                nd = near_d[o]
                if near_i[o] == m:
                    sd = seco_d[o]
                    for c in range(lo, hi):
                        doj = D[o, c]
                        out[c, m] += (doj if doj < sd else sd) - nd
                else:
                    for c in range(lo, hi):
                        doj = D[o, c]
                        if doj < nd:
                            out[c, m] += doj - nd


def pam_delta(D, near_i, near_d, seco_d, k):
    out = np.empty((D.shape[1], k))
    _pam_delta(D, near_i, near_d, seco_d, k, out)
    return out


# medoid silhouette kernels: the NumPy versions (vectorised; no Numba loop of their own yet)
msc_delta, msc2_loss = numpy_.msc_delta, numpy_.msc2_loss
pammedsil_gain = numpy_.pammedsil_gain
