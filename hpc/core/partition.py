"""Block partitions and process topologies shared by every workload.

Block partition of n items over p ranks: rank r owns [offsets[r], offsets[r+1]); the first
n % p ranks hold one extra item. Works for n < p (some ranks own nothing).
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI


def block_offsets(n: int, p: int) -> np.ndarray:
    """Start offsets of every rank's block, length p + 1 (int64)."""
    if n < 0 or p < 1:
        raise ValueError(f"bad partition: n={n}, p={p}")
    r = np.arange(p + 1, dtype=np.int64)
    return r * (n // p) + np.minimum(r, n % p)


def block_range(n: int, p: int, r: int) -> tuple[int, int]:
    """Half-open index range owned by rank r."""
    base, extra = divmod(n, p)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def block_counts(n: int, p: int) -> np.ndarray:
    """Number of items on every rank (int64)."""
    return np.diff(block_offsets(n, p))


def block_owner(idx: np.ndarray | int, n: int, p: int) -> np.ndarray:
    """Owning rank of global indices (vectorised)."""
    off = block_offsets(n, p)
    return np.searchsorted(off, np.asarray(idx, dtype=np.int64), side="right") - 1


def exchange_by_owner(comm, dest: np.ndarray, arrays) -> list[np.ndarray]:
    """Send item i of every array to rank dest[i] (one Alltoallv per array); return what
    this rank receives, grouped by source rank in the order each source sent. Collective.

    The one "route each item to its owner" pattern: file readers, transposes, graph builders.
    (The repeated exchange of ghost values is :class:`hpc.core.exchange.GhostPlan`.)
    """
    size = comm.Get_size()
    arrays = [np.asarray(a) for a in arrays]
    if size == 1:
        return [a.copy() for a in arrays]
    dest = np.asarray(dest, dtype=np.int64)
    order = np.argsort(dest, kind="stable")
    scount = np.bincount(dest, minlength=size).astype(np.int64)
    rcount = np.empty(size, dtype=np.int64)
    comm.Alltoall(scount, rcount)
    sdisp = np.zeros(size, dtype=np.int64)
    np.cumsum(scount[:-1], out=sdisp[1:])
    rdisp = np.zeros(size, dtype=np.int64)
    np.cumsum(rcount[:-1], out=rdisp[1:])
    out = []
    for a in arrays:
        sbuf = np.ascontiguousarray(a[order])
        tail = a.shape[1:]
        width = int(np.prod(tail, dtype=np.int64)) if tail else 1
        rbuf = np.empty((int(rcount.sum()), *tail), dtype=a.dtype)
        t = MPI._typedict[a.dtype.char]
        comm.Alltoallv([sbuf, (scount * width, sdisp * width), t],
                       [rbuf, (rcount * width, rdisp * width), t])
        out.append(rbuf)
    return out


def cart_create(comm, ndims: int, periodic: bool = True, dims: list[int] | None = None,
                reorder: bool = False):
    """A Cartesian communicator over all of comm, with MPI_Dims_create choosing free dims."""
    dims = MPI.Compute_dims(comm.Get_size(), dims if dims is not None else [0] * ndims)
    return comm.Create_cart(dims, periods=[periodic] * ndims, reorder=reorder)


def grid_2d(p: int) -> tuple[int, int]:
    """The squarest pr x pc factorisation of p (pr <= pc)."""
    pr = int(np.sqrt(p))
    while p % pr:
        pr -= 1
    return pr, p // pr
