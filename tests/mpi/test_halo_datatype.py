"""hpc.halo.datatype.fast between ranks (run at 1-4 ranks by tools/run_tests.sh).

A ring exchange of a struct of vectors (and an irregular indexed type): what ``fast(dt)``
sends and receives must land exactly where the library's own ``Send``/``Recv`` of the same
datatype puts it, for blocking and non-blocking calls and for a type the library packs.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpi4py import MPI

from hpc.halo.datatype import FallbackWarning, fast

comm = MPI.COMM_WORLD


def _types():
    D = MPI.DOUBLE
    vec = D.Create_vector(4, 2, 5)
    s = MPI.Datatype.Create_struct([1, 3, 1], [0, 200, 232], [vec, MPI.INT, D]).Commit()
    idx = D.Create_indexed([3, 1, 2], [7, 0, 12]).Commit()  # out of order, irregular
    vec.Free()
    return [s, idx]


@pytest.mark.mpi
@pytest.mark.parametrize("blocking", [True, False])
def test_ring_exchange_equals_the_library(blocking):
    rank, size = comm.Get_rank(), comm.Get_size()
    right, left = (rank + 1) % size, (rank - 1) % size
    for t in _types():
        ft = fast(t)
        assert ft.canonical, ft.reason
        _, ext = t.Get_extent()
        count = 3
        src = np.random.default_rng(rank).integers(0, 256, count * ext, dtype=np.uint8)
        ours, lib = np.zeros_like(src), np.zeros_like(src)
        if blocking:
            r = comm.Irecv([lib, count, t], left, 1)
            comm.Send([src, count, t], right, 1)
            r.Wait()
            rq = ft.irecv(comm, [ours, count], left, 2)
            ft.send(comm, [src, count], right, 2)
            rq.Wait()
        else:
            reqs = [comm.Irecv([lib, count, t], left, 3), ft.irecv(comm, [ours, count], left, 4),
                    comm.Isend([src, count, t], right, 3), ft.isend(comm, [src, count], right, 4)]
            for q in reqs[::-1]:
                q.Wait()
        assert np.array_equal(ours, lib) and lib.any()
        t.Free()


@pytest.mark.mpi
def test_a_fallback_type_still_travels():
    rank, size = comm.Get_rank(), comm.Get_size()
    right, left = (rank + 1) % size, (rank - 1) % size
    t = MPI.DOUBLE_INT.Create_contiguous(3).Commit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        ft = fast(t)
    assert not ft.canonical
    _, ext = t.Get_extent()
    src = np.random.default_rng(rank + 10).integers(0, 256, 2 * ext, dtype=np.uint8)
    got, lib = np.zeros_like(src), np.zeros_like(src)
    rq = ft.irecv(comm, [got, 2], left, 6)
    ft.send(comm, [src, 2], right, 6)
    rq.Wait()
    r = comm.Irecv([lib, 2, t], left, 7)
    comm.Send([src, 2, t], right, 7)
    r.Wait()
    assert np.array_equal(got, lib)
    t.Free()
