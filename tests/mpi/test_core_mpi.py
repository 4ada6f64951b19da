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


def _shared_tmp(tmp_path_factory):
    """One folder every rank sees (rank 0's pytest temporary folder)."""
    return comm.bcast(str(tmp_path_factory.mktemp("shared")) if comm.rank == 0 else None)


@pytest.mark.mpi
def test_hdf5_write_to_a_device_is_refused_on_every_rank():
    from hpc.core import h5io

    with pytest.raises(UsageError, match="character device"):
        h5io.write("/dev/null", comm, {"/x": h5io.Distributed(np.arange(3.0))})


@pytest.mark.mpi
def test_hdf5_distributed_write_leaves_only_the_file(tmp_path_factory):
    import os

    import h5py

    from hpc.core import h5io

    d = _shared_tmp(tmp_path_factory)
    path = os.path.join(d, "x.h5")
    local = np.arange(comm.rank * 10, comm.rank * 10 + 3 + comm.rank, dtype=np.float64)
    for _ in range(2):  # the second write replaces the first
        h5io.write(path, comm, {"/x": h5io.Distributed(local), "/n": np.int64(comm.size)})
    want = np.concatenate(comm.allgather(local))
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["/x"][...], want) and int(f["/n"][()]) == comm.size
    comm.Barrier()
    assert sorted(os.listdir(d)) == ["x.h5"]


@pytest.mark.mpi
def test_memory_check_raises_the_same_message_on_every_rank():
    from hpc.core.memory import require_memory

    with pytest.raises(UsageError) as err:
        require_memory(2.0**60, "a huge thing", comm)
    msgs = comm.allgather(str(err.value))
    assert len(set(msgs)) == 1 and "a huge thing" in msgs[0]
