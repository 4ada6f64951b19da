"""Hand-written forward and backward kernels of the GPT's layers on an array namespace.

Every function takes the array module ``xp`` (numpy or cupy) implicitly through its inputs'
methods or explicitly where it creates arrays. Forward functions return ``(out, cache)``;
backward functions take the output gradient and the cache and return input and parameter
gradients. No communication happens here (the tensor-parallel operators live in model.py).
"""
from __future__ import annotations

import math
from typing import Any

from . import kernels as _k

LN_EPS = 1e-5
_GELU_C = math.sqrt(2.0 / math.pi)


def layernorm_fwd(x, g, b, eps: float = LN_EPS):
    """y = (x - mean) / sqrt(var + eps) * g + b over the last axis."""
    if _k.usable(x, g, b):
        y, xhat, rstd = _k.layernorm_fwd(x, g, b, eps)
        return y, (xhat, rstd, g)
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    rstd = 1.0 / (var + eps) ** 0.5
    xhat = xc * rstd
    return xhat * g + b, (xhat, rstd, g)


def layernorm_bwd(dy, cache):
    xhat, rstd, g = cache
    if _k.usable(dy, xhat, g):
        return _k.layernorm_bwd(dy, xhat, rstd, g)
    h = xhat.shape[-1]
    dg = (dy * xhat).reshape(-1, h).sum(axis=0)
    db = dy.reshape(-1, h).sum(axis=0)
    dxhat = dy * g
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) * rstd
    return dx, dg, db


def linear_fwd(x, w, b=None):
    """y = x @ w (+ b); x (..., k), w (k, n)."""
    y = x @ w
    if b is not None:
        y += b
    return y, x


def linear_bwd(dy, x, w, need_bias: bool = True):
    k, n = w.shape
    x2 = x.reshape(-1, k)
    dy2 = dy.reshape(-1, n)
    dw = x2.T @ dy2
    db = dy2.sum(axis=0) if need_bias else None
    dx = dy @ w.T
    return dx, dw, db


def gelu_fwd(x):
    """GeLU, tanh approximation (GPT-2's)."""
    if _k.usable(x):
        y, t = _k.gelu_fwd(x)
        return y, (x, t)
    u = _GELU_C * (x + 0.044715 * x * x * x)
    t = _tanh(u)
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_bwd(dy, cache):
    x, t = cache
    if _k.usable(dy, x):
        return _k.gelu_bwd(dy, x, t)
    du = _GELU_C * (1.0 + 3 * 0.044715 * x * x)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)


def _tanh(u):
    xp = _ns(u)
    return xp.tanh(u)


def _ns(a) -> Any:
    """The array module of `a` (numpy or cupy)."""
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        return cupy
    import numpy

    return numpy


def causal_attention_fwd(q, k, v, block: int | None = None, keep_probs: bool = True):
    """softmax(q k^T / sqrt(d) + causal mask) v; q, k, v (B, heads, S, d).

    ``block`` < S: computed in query x key blocks with an online softmax (FlashAttention),
    never holding more than a block x block tile of scores; the cache then keeps the output
    and each row's log-sum-exp instead of the S x S probabilities. ``keep_probs`` False
    (selective recompute): the cache keeps q, k, v only and the backward recomputes the
    probabilities."""
    if block is not None and block < q.shape[-2]:
        return blocked_attention_fwd(q, k, v, block)
    if not keep_probs:
        o, _ = causal_attention_fwd(q, k, v)
        return o, (q, k, v, None)
    xp = _ns(q)
    d = q.shape[-1]
    s_len = q.shape[-2]
    scale = 1.0 / math.sqrt(d)
    s = q @ k.swapaxes(-1, -2)
    if _k.usable(s) and s.flags.c_contiguous:
        p = _k.causal_softmax(s, scale)
        return p @ v, (q, k, v, p)
    s *= scale
    s += _causal_bias(xp, s_len, s.dtype)
    s -= s.max(axis=-1, keepdims=True)
    p = xp.exp(s, out=s)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v, (q, k, v, p)


_BIAS: dict = {}


def _causal_bias(xp, n: int, dtype):
    """0 on and below the diagonal, -inf above (cached per size, dtype and namespace)."""
    key = (xp.__name__, n, str(dtype))
    if key not in _BIAS:
        _BIAS[key] = xp.triu(xp.full((n, n), -xp.inf, dtype=dtype), k=1)
    return _BIAS[key]


def causal_attention_bwd(do, cache):
    if isinstance(cache[0], str):  # ("blocked", ...)
        return blocked_attention_bwd(do, cache)
    q, k, v, p = cache
    if p is None:  # selective recompute: the probabilities again, from q and k
        _, (_, _, _, p) = causal_attention_fwd(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1])
    dv = p.swapaxes(-1, -2) @ do
    dp = do @ v.swapaxes(-1, -2)
    if _k.usable(dp, p):
        ds = _k.causal_softmax_bwd(dp, p, scale)
    else:
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        ds *= scale
    dq = ds @ k
    dk = ds.swapaxes(-1, -2) @ q
    return dq, dk, dv


def blocked_attention_fwd(q, k, v, block: int):
    """Causal attention by blocks with an online softmax: for each block of queries, the key
    blocks up to the diagonal, rescaling the running output by the change of the running
    maximum (Milakov & Gimelshein 2018; Dao et al. 2022). Memory O(S d + block^2) per head.
    Returns the output and the cache ("blocked", q, k, v, o, lse, block)."""
    xp = _ns(q)
    n, d = q.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    o = xp.empty_like(q)
    lse = xp.empty(q.shape[:-1], dtype=q.dtype)
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        qi = q[..., i0:i1, :] * scale
        m = xp.full(qi.shape[:-1] + (1,), -xp.inf, dtype=q.dtype)
        den = xp.zeros_like(m)
        acc = xp.zeros(qi.shape, dtype=q.dtype)
        for j0 in range(0, i1, block):
            j1 = min(i1, j0 + block)
            s = qi @ k[..., j0:j1, :].swapaxes(-1, -2)
            if j1 > i0:  # the diagonal block: mask keys after each query
                s += _causal_tile(xp, i0, i1, j0, j1, s.dtype)
            m_new = xp.maximum(m, s.max(axis=-1, keepdims=True))
            alpha = xp.exp(m - m_new)
            pt = xp.exp(s - m_new)
            den = den * alpha + pt.sum(axis=-1, keepdims=True)
            acc = acc * alpha + pt @ v[..., j0:j1, :]
            m = m_new
        o[..., i0:i1, :] = acc / den
        lse[..., i0:i1] = (m + xp.log(den))[..., 0]
    return o, ("blocked", q, k, v, o, lse, block)


def blocked_attention_bwd(do, cache):
    """The backward of :func:`blocked_attention_fwd` by the same blocks (FlashAttention-2):
    each tile's probabilities recomputed from the saved log-sum-exp."""
    _, q, k, v, o, lse, block = cache
    xp = _ns(q)
    n, d = q.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    dq, dk, dv = xp.zeros_like(q), xp.zeros_like(k), xp.zeros_like(v)
    delta = (do * o).sum(axis=-1, keepdims=True)  # rowsum(dP * P) = rowsum(dO * O)
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        qi, doi = q[..., i0:i1, :], do[..., i0:i1, :]
        li, di = lse[..., i0:i1, None], delta[..., i0:i1, :]
        for j0 in range(0, i1, block):
            j1 = min(i1, j0 + block)
            kj, vj = k[..., j0:j1, :], v[..., j0:j1, :]
            s = (qi * scale) @ kj.swapaxes(-1, -2)
            if j1 > i0:
                s += _causal_tile(xp, i0, i1, j0, j1, s.dtype)
            p = xp.exp(s - li)
            dv[..., j0:j1, :] += p.swapaxes(-1, -2) @ doi
            ds = p * (doi @ vj.swapaxes(-1, -2) - di)
            ds *= scale
            dq[..., i0:i1, :] += ds @ kj
            dk[..., j0:j1, :] += ds.swapaxes(-1, -2) @ qi
    return dq, dk, dv


def _causal_tile(xp, i0: int, i1: int, j0: int, j1: int, dtype):
    """The causal mask of the score tile of queries [i0, i1) x keys [j0, j1)."""
    qi = xp.arange(i0, i1)[:, None]
    kj = xp.arange(j0, j1)[None, :]
    return xp.where(kj > qi, -xp.inf, 0.0).astype(dtype)


def embedding_fwd(tokens, w, lo: int = 0):
    """Rows lo..lo+len(w) of the vocabulary; tokens outside give zeros (vocab-parallel)."""
    xp = _ns(w)
    local = tokens - lo
    inside = (local >= 0) & (local < w.shape[0])
    idx = xp.where(inside, local, 0)
    out = w[idx]
    out *= inside[..., None]
    return out, (idx, inside)


def embedding_bwd(dy, cache, dw) -> None:
    """Accumulate the embedding gradient into dw (rows of the local vocabulary slice)."""
    idx, inside = cache
    h = dy.shape[-1]
    sel = inside.reshape(-1)
    rows, vals = idx.reshape(-1)[sel], dy.reshape(-1, h)[sel]
    if type(dw).__module__.startswith("cupy"):
        import cupyx

        cupyx.scatter_add(dw, rows, vals)
    else:
        import numpy

        numpy.add.at(dw, rows, vals)


def cross_entropy_fwd_local(logits, targets, lo: int, gmax):
    """exp(logits - gmax) summed over local vocab, and the target logit if it is local."""
    xp = _ns(logits)
    ex = xp.exp(logits - gmax[..., None])
    sumexp = ex.sum(axis=-1)
    local = targets - lo
    inside = (local >= 0) & (local < logits.shape[-1])
    idx = xp.where(inside, local, 0)
    tl = xp.take_along_axis(logits, idx[..., None], axis=-1)[..., 0] * inside
    return ex, sumexp, tl, (idx, inside)


def cross_entropy_bwd_local(ex, sumexp, tcache, scale):
    """d(sum of token losses * scale)/d logits on the local vocabulary slice."""
    xp = _ns(ex)
    idx, inside = tcache
    d = ex / sumexp[..., None]
    v = d.shape[-1]
    d2 = d.reshape(-1, v)
    rows = xp.arange(d2.shape[0])
    d2[rows, idx.reshape(-1)] -= inside.reshape(-1).astype(d.dtype)
    d *= scale
    return d
