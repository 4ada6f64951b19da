"""In-process runtime tests at any rank count (run by tools/run_tests.sh under mpiexec -n 1..4)."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import UsageError, collective, partition
from hpc.core.timers import PhaseTimer

comm = MPI.COMM_WORLD


@pytest.mark.mpi
def test_block_partition_agrees_with_allgather():
    n = 101
    lo, hi = partition.block_range(n, comm.size, comm.rank)
    parts = comm.allgather(np.arange(lo, hi))
    assert np.array_equal(np.concatenate(parts), np.arange(n))


@pytest.mark.mpi
def test_phase_timer_reports_slowest_rank():
    t = PhaseTimer(comm)
    for i in range(3):
        t.add("work", 0.01 * (comm.rank + 1) + i)
    s = t.summary()
    # first sample dropped; each sample is the slowest rank's
    assert s["work"]["n"] == 2
    assert s["work"]["min"] == pytest.approx(0.01 * comm.size + 1)
    assert s["work"]["max"] == pytest.approx(0.01 * comm.size + 2)


@pytest.mark.mpi
def test_collective_spreads_one_ranks_error():
    with pytest.raises(UsageError, match="saw nothing"):
        with collective(comm):
            if comm.rank == comm.size - 1:
                raise UsageError(f"rank 0 saw nothing; rank {comm.rank} did")
    with collective(comm):  # no error anywhere: passes
        pass


@pytest.mark.mpi
def test_cartesian_communicator_covers_all_ranks():
    cart = partition.cart_create(comm, 3)
    assert int(np.prod(cart.Get_topo()[0])) == comm.size
    cart.Free()
