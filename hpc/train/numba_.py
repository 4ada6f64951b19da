"""The numba kernels behind hpc.train.kernels (imported only when first needed: importing
numba costs every rank a noticeable fraction of a second, which tiny runs do not repay)."""
from __future__ import annotations

import math

import numba
import numpy as np

_C = math.sqrt(2.0 / math.pi)

@numba.njit(cache=True, nogil=True)
def _gelu_arg(x, u):
    for i in range(x.size):
        v = x[i]
        u[i] = _C * (v + 0.044715 * v * v * v)

@numba.njit(cache=True, nogil=True)
def _gelu_out(x, t, y):
    for i in range(x.size):
        y[i] = 0.5 * x[i] * (1.0 + t[i])

@numba.njit(cache=True, nogil=True)
def _softmax_pre(s, scale):
    """Scale, mask above the diagonal (-inf) and subtract each row's max, in place."""
    r, n, _ = s.shape
    for a in range(r):
        for i in range(n):
            m = -np.inf
            for j in range(i + 1):
                v = s[a, i, j] * scale
                s[a, i, j] = v
                m = max(m, v)
            for j in range(i + 1):
                s[a, i, j] -= m
            for j in range(i + 1, n):
                s[a, i, j] = -np.inf

@numba.njit(cache=True, nogil=True)
def _softmax_norm(p):
    r, n, _ = p.shape
    for a in range(r):
        for i in range(n):
            acc = 0.0
            for j in range(i + 1):
                acc += p[a, i, j]
            inv = 1.0 / acc
            for j in range(i + 1):
                p[a, i, j] *= inv

@numba.njit(cache=True, nogil=True)
def _softmax_bwd(dp, p, scale):
    """dp <- p * (dp - sum_j dp p) * scale, in place (zero above the diagonal)."""
    r, n, _ = p.shape
    for a in range(r):
        for i in range(n):
            acc = 0.0
            for j in range(i + 1):
                acc += dp[a, i, j] * p[a, i, j]
            for j in range(i + 1):
                dp[a, i, j] = p[a, i, j] * (dp[a, i, j] - acc) * scale
            for j in range(i + 1, n):
                dp[a, i, j] = 0.0

@numba.njit(cache=True, nogil=True)
def _gelu_bwd(dy, x, t, dx):
    for i in range(x.size):
        v = x[i]
        th = t[i]
        du = _C * (1.0 + 3 * 0.044715 * v * v)
        dx[i] = dy[i] * (0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du)

@numba.njit(cache=True, nogil=True, fastmath=True)
def _sumsq_weighted(g, w):
    acc = 0.0
    for i in range(g.size):
        acc += float(g[i]) * float(g[i]) * float(w[i])
    return acc

@numba.njit(cache=True, nogil=True)
def _adam(p, g, m, v, coef, b1, b2, omb1, omb2, ic1, ic2, lr, eps):
    for i in range(p.size):
        gi = g[i] * coef
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= lr * ((mi * ic1) / (np.sqrt(vi * ic2) + eps))

@numba.njit(cache=True, nogil=True)
def _adamw(p, g, m, v, coef, b1, b2, omb1, omb2, ic1, ic2, lr, eps, wd):
    for i in range(p.size):
        gi = g[i] * coef
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= lr * ((mi * ic1) / (np.sqrt(vi * ic2) + eps) + wd * p[i])


@numba.njit(cache=True, nogil=True)
def _ln_fwd(x, g, b, eps, y, xhat, rstd):
    r, h = x.shape
    for i in range(r):
        mu = 0.0
        for j in range(h):
            mu += x[i, j]
        mu /= h
        var = 0.0
        for j in range(h):
            d = x[i, j] - mu
            var += d * d
        var /= h
        rs = 1.0 / np.sqrt(var + eps)
        rstd[i] = rs
        for j in range(h):
            xh = (x[i, j] - mu) * rs
            xhat[i, j] = xh
            y[i, j] = xh * g[j] + b[j]

@numba.njit(cache=True, nogil=True)
def _ln_bwd(dy, xhat, rstd, g, dx, dg, db):
    r, h = dy.shape
    for i in range(r):
        s1 = 0.0
        s2 = 0.0
        for j in range(h):
            d = dy[i, j] * g[j]
            s1 += d
            s2 += d * xhat[i, j]
            dg[j] += dy[i, j] * xhat[i, j]
            db[j] += dy[i, j]
        s1 /= h
        s2 /= h
        for j in range(h):
            dx[i, j] = (dy[i, j] * g[j] - s1 - xhat[i, j] * s2) * rstd[i]


