"""CuPy kernels: distance tiles by GEMM on the GPU and ΔTD as a one-hot GEMM on the GPU.

Tiles stay on the device; only the small per-candidate results (nc x (k+1)) come back to the
host for the MPI reduction. Imported only when --backend cupy is asked for.
"""
from __future__ import annotations

import cupy as cp
import numpy as np

xp = cp


def to_host(a):
    return cp.asnumpy(a) if isinstance(a, cp.ndarray) else np.asarray(a)


def _dev(a, dtype=cp.float64):
    return a if isinstance(a, cp.ndarray) else cp.asarray(a, dtype=dtype)


def dist(A, B, metric):
    A = _dev(A)
    B = _dev(B)
    if metric in ("euclidean", "sqeuclidean"):
        D = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
        cp.maximum(D, 0.0, out=D)
        return cp.sqrt(D) if metric == "euclidean" else D
    if metric == "cosine":
        na = cp.sqrt((A * A).sum(1))
        nb = cp.sqrt((B * B).sum(1))
        na[na == 0] = 1.0
        nb[nb == 0] = 1.0
        return cp.clip(1.0 - (A @ B.T) / na[:, None] / nb[None, :], 0.0, 2.0)
    if metric == "manhattan":
        out = cp.empty((A.shape[0], B.shape[0]))
        step = max(1, (1 << 24) // max(1, B.shape[0] * A.shape[1]))
        for lo in range(0, A.shape[0], step):
            out[lo:lo + step] = cp.abs(A[lo:lo + step, None, :] - B[None, :, :]).sum(axis=2)
        return out
    raise ValueError(f"unknown metric {metric}")


def colsum(D):
    return cp.asnumpy(_dev(D).sum(axis=0))


def build_gain(D, near_d):
    return cp.asnumpy(cp.minimum(_dev(D) - _dev(near_d)[:, None], 0.0).sum(axis=0))


def _cuda_kernels():
    try:
        from hpc import _cuda

        return getattr(_cuda, "kmedoids", None)
    except ImportError:
        return None


def fastpam_delta(D, near_i, near_d, seco_d, k):
    D = _dev(D)
    ck = _cuda_kernels()
    if ck is not None and D.dtype == cp.float64 and D.ndim == 2 \
            and (D.shape[1] <= 1 or D.strides[1] == 8) \
            and D.strides[0] % 8 == 0 and D.shape[0] > 0:
        # native CUDA sweep (native/cuda/kmedoids.cu): one thread per candidate column
        ni = cp.ascontiguousarray(_dev(near_i, cp.int64))
        nd = cp.ascontiguousarray(_dev(near_d))
        sd = cp.ascontiguousarray(_dev(seco_d))
        rows, cols = D.shape
        if ni.shape != (rows,) or nd.shape != (rows,) or sd.shape != (rows,):
            raise ValueError("fastpam_delta: assignment arrays do not match the tile")
        if int(ni.min()) < 0 or int(ni.max()) >= k:
            raise ValueError("fastpam_delta: near_i out of range")
        out = cp.empty((cols, k + 1))
        ld = D.strides[0] // 8 if rows > 1 else cols
        ck.fastpam_delta(D.data.ptr, max(ld, cols), rows, cols, ni.data.ptr, nd.data.ptr,
                         sd.data.ptr, int(k), out.data.ptr)
        return cp.asnumpy(out)
    nd = _dev(near_d)[:, None]
    sd = _dev(seco_d)[:, None]
    closer = D < nd
    acc = cp.where(closer, D - nd, 0.0).sum(axis=0)
    v = cp.where(closer, nd - sd, cp.where(D < sd, D - sd, 0.0))
    onehot = cp.zeros((D.shape[0], k))
    onehot[cp.arange(D.shape[0]), _dev(near_i, cp.int64)] = 1.0
    out = cp.empty((D.shape[1], k + 1))
    out[:, :k] = v.T @ onehot
    out[:, k] = acc
    return cp.asnumpy(out)


def pam_delta(D, near_i, near_d, seco_d, k):
    D = _dev(D)
    ni = _dev(near_i, cp.int64)[:, None]
    nd = _dev(near_d)[:, None]
    sd = _dev(seco_d)[:, None]
    out = cp.empty((D.shape[1], k))
    for m in range(k):
        t = cp.where(ni == m, cp.minimum(D, sd) - nd, cp.minimum(D - nd, 0.0))
        out[:, m] = t.sum(axis=0)
    return cp.asnumpy(out)


def msc_delta(D, near_i, seco_i, near_d, seco_d, third_d, k):
    from . import numpy_
    return numpy_.msc_delta(to_host(D), near_i, seco_i, near_d, seco_d, third_d, k)


def msc2_loss(D, d0, d1):
    from . import numpy_
    return numpy_.msc2_loss(to_host(D), d0, d1)


def pammedsil_gain(D, near_i, seco_i, near_d, seco_d, third_d, k, skip):
    from . import numpy_
    return numpy_.pammedsil_gain(to_host(D), near_i, seco_i, near_d, seco_d, third_d, k, skip)
