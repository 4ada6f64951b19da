"""Fused CPU kernels (numba) for the element-wise work numpy would spread over many
temporaries: layer norm, GeLU, the causal softmax (forward and backward) and the Adam update.

Transcendentals (tanh, exp) stay with numpy's SIMD ufuncs, an order of magnitude faster than
numba's scalar libm calls; numba fuses the arithmetic around them. In float32 the GeLU
forward and the causal softmax forward are native instead (hpc._core.train: one pass each
with a vectorised exp, the softmax's only over the causal half; numpy's float32 tanh was the
largest non-GEMM cost of a step). Used for numpy arrays of at
least MIN_SIZE elements when numba is importable (HPC_TRAIN_NUMBA=0 turns them off); cupy
arrays and small arrays take the plain array expressions in layers.py / optimizer.py. Results
agree with those expressions to rounding (tests/test_train_layers.py), and every layout runs
the same path, so the loss curve's layout independence is untouched."""
from __future__ import annotations

import os

import numpy as np

MIN_SIZE = 1 << 14        # smaller arrays take the plain expressions (no numba import)
OPT_MIN_SIZE = 1 << 14    # the optimizer's flat buffers (one fused pass beats numpy's ten)
ENABLED = os.environ.get("HPC_TRAIN_NUMBA", "1") != "0"
_nk = None


def _kernels():
    global _nk, ENABLED
    if _nk is None:
        try:
            from . import numba_
        except ImportError:  # pragma: no cover - numba is a dependency of the suite
            ENABLED = False
            return None
        _nk = numba_
    return _nk


def _native():
    """hpc._core.train (native/src/train_kernels.cpp: float32 GeLU and causal softmax with a
    vectorised exp), or None in a build without it."""
    global _nat
    if _nat is False:
        try:
            from hpc._core import train as nat
        except ImportError:  # pragma: no cover - the suite is built with its extension
            nat = None
        _nat = nat
    return _nat


_nat: object = False


def usable(*arrays, min_size: int | None = None) -> bool:
    """Whether the fused kernels take these arrays (numpy, large enough, numba present)."""
    if not ENABLED or not all(type(a) is np.ndarray for a in arrays):
        return False
    if arrays[0].size < (MIN_SIZE if min_size is None else max(MIN_SIZE, min_size)):
        return False
    return _kernels() is not None


def layernorm_fwd(x, g, b, eps: float):
    """(y, xhat, rstd) of a layer norm over the last axis (float64 row statistics)."""
    h = x.shape[-1]
    x2 = np.ascontiguousarray(x).reshape(-1, h)
    y = np.empty_like(x2)
    xhat = np.empty_like(x2)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    _kernels()._ln_fwd(x2, g, b, eps, y, xhat, rstd)
    return y.reshape(x.shape), xhat.reshape(x.shape), rstd.reshape(*x.shape[:-1], 1)


def layernorm_bwd(dy, xhat, rstd, g):
    h = dy.shape[-1]
    dy2 = np.ascontiguousarray(dy).reshape(-1, h)
    dx = np.empty_like(dy2)
    dg = np.zeros(h, dtype=np.float64)
    db = np.zeros(h, dtype=np.float64)
    _kernels()._ln_bwd(dy2, xhat.reshape(-1, h), rstd.reshape(-1), g, dx, dg, db)
    return dx.reshape(dy.shape), dg.astype(dy.dtype), db.astype(dy.dtype)


def gelu_fwd(x):
    """(y, tanh term) of the tanh-approximate GeLU."""
    x = np.ascontiguousarray(x)
    t = np.empty_like(x)
    if x.dtype == np.float32 and _native() is not None:
        y = np.empty_like(x)
        _native().gelu_fwd(x, y, t)
        return y, t
    _kernels()._gelu_arg(x.reshape(-1), t.reshape(-1))
    np.tanh(t, out=t)
    y = np.empty_like(x)
    _kernels()._gelu_out(x.reshape(-1), t.reshape(-1), y.reshape(-1))
    return y, t


def causal_softmax(s, scale: float):
    """softmax(scale * s + causal mask) over the last axis, in place on a contiguous s."""
    n = s.shape[-1]
    if s.dtype == np.float32 and _native() is not None:
        _native().causal_softmax(s, scale)
        return s
    s3 = s.reshape(-1, n, n)
    _kernels()._softmax_pre(s3, s.dtype.type(scale))
    np.exp(s, out=s)
    _kernels()._softmax_norm(s3)
    return s


def causal_softmax_bwd(dp, p, scale: float):
    """Gradient of the scores from the gradient of the probabilities (in place on dp)."""
    n = p.shape[-1]
    dp = np.ascontiguousarray(dp)
    _kernels()._softmax_bwd(dp.reshape(-1, n, n), p.reshape(-1, n, n), p.dtype.type(scale))
    return dp


def gelu_bwd(dy, x, t):
    dx = np.empty_like(x)
    _kernels()._gelu_bwd(np.ascontiguousarray(dy).reshape(-1), x.reshape(-1), t.reshape(-1),
                         dx.reshape(-1))
    return dx


def sumsq_weighted(g, w) -> float:
    return float(_kernels()._sumsq_weighted(g, w))


def adam(p, g, m, v, coef, b1, b2, c1, c2, lr, eps, wd) -> None:
    """p, m, v updated in place; g scaled by coef on the fly (not written)."""
    T = p.dtype.type
    args = (T(coef), T(b1), T(b2), T(1 - b1), T(1 - b2), T(1 / c1), T(1 / c2), T(lr), T(eps))
    if wd:
        _kernels()._adamw(p, g, m, v, *args, T(wd))
    else:
        _kernels()._adam(p, g, m, v, *args)


_HEAP_KEPT = False


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks in the process heap rather than hand them back to the
    kernel (mallopt: a fixed 32 MiB mmap threshold, a 1 GiB trim threshold); True if set.

    A CPU step allocates and frees its activations afresh; with glibc's default thresholds
    the freed heap top is trimmed and every step faults the pages in again (measured, 4 x 256
    model, float32: 18 700 minor faults and 44 ms of system time per 0.37 s step; PyTorch
    ~1 000). Kept, the next step reuses them. Once per process, numpy back end only;
    HPC_TRAIN_KEEP_HEAP=0 leaves the allocator alone."""
    global _HEAP_KEPT
    if _HEAP_KEPT or os.environ.get("HPC_TRAIN_KEEP_HEAP", "1") == "0":
        return _HEAP_KEPT
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
        _HEAP_KEPT = bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
                          and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # pragma: no cover - glibc always has mallopt
        return False
    return _HEAP_KEPT
