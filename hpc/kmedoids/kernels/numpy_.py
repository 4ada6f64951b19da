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


# -- medoid silhouette (hpc.kmedoids.msc) ---------------------------------------------------
def _ratio(a, b):
    """a / b, 0 where a or b is 0 (the loss term of the medoid silhouette)."""
    zero = (a == 0) | (b == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(zero, 0.0, a / np.where(zero, 1.0, b))


def msc_delta(D, near_i, seco_i, near_d, seco_d, third_d, k):
    """(nc, k+1): per candidate, the gain of L = sum near/second when it replaces medoid m
    beyond m's removal gain (columns < k), and the part shared by all m (column k)."""
    D = np.asarray(D, dtype=np.float64)
    n, s, t = near_d[:, None], seco_d[:, None], third_d[:, None]
    ns, st, nt = _ratio(n, s), _ratio(s, t), _ratio(n, t)
    c1 = D < n
    c2 = ~c1 & (D < s)
    c3 = ~c1 & ~c2 & (D < t)
    acc = np.where(c1, ns - _ratio(D, n), np.where(c2, ns - _ratio(n, D), 0.0))
    sum_ns = _ratio(n + D, s)
    pn = np.where(c1, _ratio(D, n) + st - sum_ns,
                  np.where(c2, _ratio(n, D) + st - sum_ns,
                           np.where(c3, st - _ratio(s, D), 0.0)))
    ps = np.where(c1 | c2, nt - ns, np.where(c3, nt - _ratio(n, D), 0.0))
    out = np.empty((D.shape[1], k + 1))
    on = np.zeros((near_i.size, k))
    on[np.arange(near_i.size), near_i] = 1.0
    osd = np.zeros((near_i.size, k))
    osd[np.arange(near_i.size), seco_i] = 1.0
    out[:, :k] = pn.T @ on + ps.T @ osd
    out[:, k] = acc.sum(axis=0)
    return out


def msc2_loss(D, d0, d1):
    """(nc, 2): k = 2, the loss L after the candidate replaces medoid slot 0 or 1."""
    D = np.asarray(D, dtype=np.float64)
    out = np.empty((D.shape[1], 2))
    for col, other in ((0, d1[:, None]), (1, d0[:, None])):
        out[:, col] = np.where(D < other, _ratio(D, other), _ratio(other, D)).sum(axis=0)
    return out


def _pammedsil_terms(D, near_i, seco_i, n, s, t, m):
    """The change of one point's ratio when candidate (column) replaces medoid m (PAMMEDSIL,
    t = +inf where there is no third medoid)."""
    ns = _ratio(n, s)
    is_n = (near_i == m)[:, None]
    is_s = (seco_i == m)[:, None]
    gone_n = np.where(D < s, ns - _ratio(D, s), np.where(D < t, ns - _ratio(s, D),
                                                          ns - _ratio(s, t)))
    gone_s = np.where(D < n, ns - _ratio(D, n), np.where(D < t, ns - _ratio(n, D),
                                                          ns - _ratio(n, t)))
    kept = np.where(D < n, ns - _ratio(D, n), np.where(D < s, ns - _ratio(n, D), 0.0))
    return np.where(is_n, gone_n, np.where(is_s, gone_s, kept))


def pammedsil_gain(D, near_i, seco_i, near_d, seco_d, third_d, k, skip):
    """(nc, k): PAMMEDSIL's gain of every (candidate, medoid) pair, one pass per medoid, over
    the local points except row skip[c] (the candidate itself; -1: not local)."""
    D = np.asarray(D, dtype=np.float64)
    n, s, t = near_d[:, None], seco_d[:, None], third_d[:, None]
    out = np.empty((D.shape[1], k))
    cs = np.flatnonzero(skip >= 0)
    rs = skip[cs]
    for m in range(k):
        out[:, m] = _pammedsil_terms(D, near_i, seco_i, n, s, t, m).sum(axis=0)
        if cs.size:  # remove the candidate's own row
            own = _pammedsil_terms(D[rs, cs][:, None], near_i[rs], seco_i[rs], n[rs], s[rs],
                                   t[rs], m)[:, 0]
            out[cs, m] -= own
    return out
