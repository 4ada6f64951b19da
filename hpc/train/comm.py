"""Communication on arrays of either namespace: numpy goes to MPI directly, cupy through host
memory unless the MPI library takes device pointers (hpc.core.envinfo.cuda_aware: asked of the
library, HPC_CUDA_AWARE=0|1 overrides)."""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from hpc.core.envinfo import cuda_aware

_CUDA_AWARE = cuda_aware()


def is_device(a) -> bool:
    return type(a).__module__.startswith("cupy")


def to_host(a) -> np.ndarray:
    if is_device(a):
        return a.get()
    return a


def _like(h: np.ndarray, ref):
    if is_device(ref):
        import cupy

        return cupy.asarray(h)
    return h


def allreduce(group, x, op=None):
    """Sum (or op) of x over group; returns a (new or the same) array in x's namespace."""
    op = MPI.SUM if op is None else op
    if group.Get_size() == 1:
        return x
    if is_device(x) and not _CUDA_AWARE:
        h = np.ascontiguousarray(x.get())
        group.Allreduce(MPI.IN_PLACE, h, op=op)
        return _like(h, x)
    x = x if x.flags.c_contiguous else x.copy()
    if is_device(x):
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    group.Allreduce(MPI.IN_PLACE, x, op=op)
    return x


def allreduce_inplace(group, x, op=None) -> None:
    """In-place sum over group of a contiguous array (a view into a flat buffer is fine)."""
    if group.Get_size() == 1:
        return
    y = allreduce(group, x, op)
    if y is not x:
        x[...] = y


def allgather_seq(group, x):
    """Concatenate every rank's (B, s, ...) along axis 1, in rank order."""
    n = group.Get_size()
    if n == 1:
        return x
    h = np.ascontiguousarray(to_host(x))
    buf = np.empty((n, *h.shape), dtype=h.dtype)
    group.Allgather(h, buf)
    out = np.moveaxis(buf, 0, 1).reshape(h.shape[0], n * h.shape[1], *h.shape[2:])
    return _like(np.ascontiguousarray(out), x)


def reduce_scatter_seq(group, x):
    """Sum over ranks of (B, S, ...) and keep this rank's block of S/n along axis 1."""
    n = group.Get_size()
    if n == 1:
        return x
    h = to_host(x)
    b, s = h.shape[:2]
    blocks = np.ascontiguousarray(np.moveaxis(h.reshape(b, n, s // n, *h.shape[2:]), 1, 0))
    out = np.empty(blocks.shape[1:], dtype=h.dtype)
    group.Reduce_scatter_block(blocks, out)
    return _like(out, x)


def reduce_scatter_flat(group, flat, shard_out) -> None:
    """ZeRO-1: shard_out = this rank's 1/n of the sum of flat over group."""
    h = np.ascontiguousarray(to_host(flat))
    out = np.empty(shard_out.shape, dtype=h.dtype)
    group.Reduce_scatter_block(h, out)
    shard_out[...] = _like(out, shard_out)


def allgather_flat(group, flat) -> None:
    """ZeRO-1: every rank's shard (its 1/n of flat, in place) gathered into flat."""
    if is_device(flat):
        h = flat.get()
        group.Allgather(MPI.IN_PLACE, h)
        flat[...] = _like(h, flat)
    else:
        group.Allgather(MPI.IN_PLACE, flat)
