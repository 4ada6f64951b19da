"""NumPy kernels: BLAS for dot products (Gram trick), vectorised ΔTD via a one-hot product."""
from __future__ import annotations

import numpy as np

xp = np


def to_host(a):
    return np.asarray(a)


def _sq(A):
    return np.einsum("ij,ij->i", A, A)


def dist(A: np.ndarray, B: np.ndarray, metric: str) -> np.ndarray:
    """Distances between the rows of A and B (float64)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if metric in ("euclidean", "sqeuclidean"):
        # |a|^2 + |b|^2 - 2ab; clamped at 0 (rounding can make it slightly negative)
        D = _sq(A)[:, None] + _sq(B)[None, :] - 2.0 * (A @ B.T)
        np.maximum(D, 0.0, out=D)
        return np.sqrt(D, out=D) if metric == "euclidean" else D
    if metric == "cosine":
        na = np.sqrt(_sq(A))
        nb = np.sqrt(_sq(B))
        na[na == 0] = 1.0
        nb[nb == 0] = 1.0
        D = 1.0 - (A @ B.T) / na[:, None] / nb[None, :]
        return np.clip(D, 0.0, 2.0, out=D)
    if metric == "manhattan":
        out = np.empty((A.shape[0], B.shape[0]))
        step = max(1, (1 << 22) // max(1, B.shape[0] * A.shape[1]))
        for lo in range(0, A.shape[0], step):
            out[lo:lo + step] = np.abs(A[lo:lo + step, None, :] - B[None, :, :]).sum(axis=2)
        return out
    raise ValueError(f"unknown metric {metric}")


def colsum(D):
    return np.asarray(D).sum(axis=0)


def build_gain(D, near_d):
    return np.minimum(D - near_d[:, None], 0.0).sum(axis=0)


def _contrib(D, near_d, seco_d):
    nd = near_d[:, None]
    sd = seco_d[:, None]
    closer = D < nd
    acc = np.where(closer, D - nd, 0.0).sum(axis=0)
    v = np.where(closer, nd - sd, np.where(D < sd, D - sd, 0.0))
    return acc, v


def fastpam_delta(D, near_i, near_d, seco_d, k):
    acc, v = _contrib(np.asarray(D), near_d, seco_d)
    onehot = np.zeros((near_i.size, k))
    onehot[np.arange(near_i.size), near_i] = 1.0
    out = np.empty((D.shape[1], k + 1))
    out[:, :k] = v.T @ onehot
    out[:, k] = acc
    return out


def pam_delta(D, near_i, near_d, seco_d, k):
    """The original PAM: each medoid's removal evaluated in its own pass over the points."""
    D = np.asarray(D)
    nd = near_d[:, None]
    sd = seco_d[:, None]
    out = np.empty((D.shape[1], k))
    for m in range(k):
        mine = (near_i == m)[:, None]
        t = np.where(mine, np.minimum(D, sd) - nd, np.minimum(D - nd, 0.0))
        out[:, m] = t.sum(axis=0)
    return out
