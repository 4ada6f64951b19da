"""All-to-all shuffles of row-aligned arrays: the one communication pattern the graph
builder and the walkers need (send each item to the rank that owns it)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _mpi_type(dtype: np.dtype):
    from mpi4py import MPI

    return MPI._typedict[np.dtype(dtype).char]


def exchange(comm, dest: np.ndarray, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Send item i of every array to rank dest[i]; return what this rank receives.

    Items arrive grouped by source rank, in the order each source sent them. Collective.
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
        t = _mpi_type(a.dtype)
        comm.Alltoallv([sbuf, (scount * width, sdisp * width), t],
                       [rbuf, (rcount * width, rdisp * width), t])
        out.append(rbuf)
    return out


def exscan_sum(comm, value: int) -> int:
    """Sum of value over lower ranks (0 on rank 0)."""
    from mpi4py import MPI

    r = comm.exscan(int(value), op=MPI.SUM)
    return 0 if r is None or comm.Get_rank() == 0 else int(r)
