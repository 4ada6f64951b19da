"""HDF5 results through h5py, written atomically (:mod:`hpc.core.atomic`).

pip's h5py has no MPI, so by default rank 0 writes: distributed arrays are streamed to it rank
by rank in bounded chunks (never the whole array in one message). When h5py is built with MPI
(``h5py.get_config().mpi``), every rank writes its own slice collectively with the mpio driver.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import atomic
from .runtime import collective

CHUNK_BYTES = 64 << 20


@dataclass
class Distributed:
    """A row-block distributed array: every rank's `local` rows, concatenated in rank order."""

    local: np.ndarray


def _mpi_h5py() -> bool:
    import h5py

    return bool(h5py.get_config().mpi) and not os.environ.get("HPC_H5_SERIAL")


def write(path: str | os.PathLike, comm, datasets: Mapping[str, Any],
          attrs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Write datasets (name -> array on rank 0, or Distributed) and attrs (object -> dict).

    Collective. Plain arrays are taken from rank 0. Group paths are created as needed.
    """
    rank = comm.Get_rank()
    with ExitStack() as stack:
        # Rank 0 creates the private temporary (hpc.core.atomic: O_EXCL, a random name,
        # removed on failure or SIGTERM, renamed only over a regular file); every rank learns
        # its name, or every rank raises the same UsageError.
        tmp = None
        with collective(comm):
            if rank == 0:
                tmp = str(stack.enter_context(atomic.atomic_path(path)))
        tmp = comm.bcast(tmp, root=0)
        _write_tmp(tmp, comm, datasets, attrs)
        comm.Barrier()  # every rank has finished writing before rank 0 renames
    comm.Barrier()  # the file exists under its name for every rank on return


def _write_tmp(tmp: str, comm, datasets: Mapping[str, Any],
               attrs: Mapping[str, Mapping[str, Any]] | None) -> None:
    import h5py

    rank, size = comm.Get_rank(), comm.Get_size()
    # Shapes and dtypes of distributed arrays, known to all ranks.
    meta = {}
    for name, d in datasets.items():
        if isinstance(d, Distributed):
            loc = np.ascontiguousarray(d.local)
            rows = np.array(comm.allgather(loc.shape[0]), dtype=np.int64)
            meta[name] = (loc, rows, loc.shape[1:], loc.dtype)
    if size > 1 and _mpi_h5py():
        with h5py.File(tmp, "w", driver="mpio", comm=comm) as f:
            for name, d in datasets.items():
                if isinstance(d, Distributed):
                    loc, rows, tail, dt = meta[name]
                    ds = f.create_dataset(name, shape=(int(rows.sum()), *tail), dtype=dt)
                    start = int(rows[:rank].sum())
                    with ds.collective:
                        ds[start:start + loc.shape[0]] = loc
                else:
                    f.create_dataset(name, data=np.asarray(comm.bcast(np.asarray(d) if rank == 0 else None)))
            _attrs(f, attrs)
        return
    # Serial h5py: rank 0 writes; an exception aborts the job (hpc.core.runtime), and the
    # temporary is removed by atomic_path on the way out.
    f = h5py.File(tmp, "w") if rank == 0 else None
    try:
        for name, d in datasets.items():
            if isinstance(d, Distributed):
                _gather_write(f, name, comm, *meta[name])
            elif rank == 0:
                f.create_dataset(name, data=np.asarray(d))
        if rank == 0:
            _attrs(f, attrs)
    finally:
        if f is not None:
            f.close()


def _attrs(f, attrs: Mapping[str, Mapping[str, Any]] | None) -> None:
    for obj, kv in (attrs or {}).items():
        g = f[obj] if obj in f else f.require_group(obj)
        for k, v in kv.items():
            g.attrs[k] = v


def _gather_write(f, name: str, comm, loc: np.ndarray, rows: np.ndarray, tail: tuple, dt) -> None:
    """Stream every rank's rows to rank 0 in chunks of at most CHUNK_BYTES."""
    rank = comm.Get_rank()
    row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * np.dtype(dt).itemsize)
    step = max(1, CHUNK_BYTES // row_bytes)
    if rank == 0:
        ds = f.create_dataset(name, shape=(int(rows.sum()), *tail), dtype=dt)
        start = 0
        for r, n in enumerate(rows):
            for lo in range(0, int(n), step):
                hi = min(int(n), lo + step)
                if r == 0:
                    ds[start + lo:start + hi] = loc[lo:hi]
                else:
                    buf = np.empty((hi - lo, *tail), dtype=dt)
                    comm.Recv(buf, source=r, tag=77)
                    ds[start + lo:start + hi] = buf
            start += int(n)
    else:
        for lo in range(0, loc.shape[0], step):
            comm.Send(np.ascontiguousarray(loc[lo:lo + step]), dest=0, tag=77)

