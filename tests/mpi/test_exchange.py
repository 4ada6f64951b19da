"""hpc.core.exchange in-process under mpiexec (1-4 ranks): the ghost plan against the owners'
values, both transports, several dtypes and values per id, and its error handling; exscan,
node_comm and host_ids against plain collectives."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core.exchange import GhostPlan, Transfer, exscan, host_ids, node_comm, resolve_method
from hpc.core.partition import block_offsets

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD


def value_of(ids: np.ndarray) -> np.ndarray:
    """The value every owner stores for a global id (distinct, exact in float64)."""
    return 3.0 * np.asarray(ids, dtype=np.float64) + 0.25


def uneven_offsets(n: int, p: int, seed: int) -> np.ndarray:
    """A random contiguous partition (some ranks may own nothing), the same on every rank."""
    cuts = np.sort(np.random.default_rng(seed).integers(0, n + 1, p - 1))
    return np.concatenate(([0], cuts, [n])).astype(np.int64)


def random_needs(off: np.ndarray, seed: int, k: int) -> np.ndarray:
    """Up to k random ids (repeats allowed) owned by other ranks; rank 1 needs nothing."""
    r, n = comm.rank, int(off[-1])
    if r == 1 or n == 0:
        return np.empty(0, dtype=np.int64)
    ids = np.random.default_rng(seed * 97 + r).integers(0, n, k)
    return ids[(ids < off[r]) | (ids >= off[r + 1])]


def all_ok(ok: bool) -> bool:
    """Every rank's verdict (asserted together: a one-rank failure must not hang the rest)."""
    return comm.allreduce(not ok, op=MPI.LOR) is False


@pytest.mark.parametrize("method", ["neighbor", "p2p", "auto"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_ghost_equals_its_owners_value(method, seed):
    n = 40 + 7 * seed
    off = uneven_offsets(n, comm.size, seed) if seed else block_offsets(n, comm.size)
    r = comm.rank
    needs = random_needs(off, seed, 25)
    plan = GhostPlan(comm, needs, off, method=method)
    x = value_of(np.arange(off[r], off[r + 1]))
    g = plan.exchange(x)
    ok = (np.array_equal(plan.ghost_ids, np.unique(needs))
          and np.array_equal(g, value_of(plan.ghost_ids))
          and plan.n_local == off[r + 1] - off[r])
    # counts agree across ranks: what q sends me is what I receive from q
    sent_to_me = comm.alltoall(plan.send_counts.tolist())
    ok = ok and sent_to_me == plan.recv_counts.tolist()
    # a second exchange of new values reuses the buffers and requests
    g2 = plan.exchange(-x).copy()
    ok = ok and np.array_equal(g2, -value_of(plan.ghost_ids))
    plan.free()
    assert all_ok(ok)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.complex128])
def test_several_values_per_id_and_dtypes(dtype):
    n = 31
    off = block_offsets(n, comm.size)
    r = comm.rank
    plan = GhostPlan(comm, random_needs(off, 5, 12), off, method="p2p")
    ids = np.arange(off[r], off[r + 1])
    x = np.stack([ids, 2 * ids + 1, -ids], axis=1).astype(dtype).reshape(-1, 3, 1)
    g = plan.exchange(x)
    gi = plan.ghost_ids
    want = np.stack([gi, 2 * gi + 1, -gi], axis=1).astype(dtype).reshape(-1, 3, 1)
    assert all_ok(g.dtype == np.dtype(dtype) and g.shape == want.shape and np.array_equal(g, want))


def test_p2p_and_neighbor_agree_and_overlap():
    n = 57
    off = uneven_offsets(n, comm.size, 11)
    r = comm.rank
    needs = random_needs(off, 11, 40)
    x = np.random.default_rng(r).standard_normal(off[r + 1] - off[r])
    got = {}
    for m in ("p2p", "neighbor"):
        plan = GhostPlan(comm, needs, off, method=m)
        plan.start(x)
        local = float(x.sum())            # local work while the exchange is in flight
        got[m] = plan.wait().copy()
        assert local == float(x.sum())
        plan.free()
    # the reference: every rank's block, all-gathered
    full = np.concatenate(comm.allgather(x))
    want = full[np.unique(needs)]
    assert all_ok(np.array_equal(got["p2p"], got["neighbor"]) and np.array_equal(got["p2p"], want))


def test_transfer_with_own_layout():
    """Transfer alone: every rank sends rank+1 values to every other rank (a ring of all)."""
    p, r = comm.size, comm.rank
    others = [q for q in range(p) if q != r]
    send = np.repeat(float(r), (r + 1) * len(others))
    recv = np.full(sum(q + 1 for q in others), -1.0)
    for method in ("p2p", "neighbor"):
        t = Transfer(comm, others, [q + 1 for q in others], others, [r + 1] * len(others),
                     recv, send, method=method if p > 1 else "none", tag=77)
        t.run()
        want = np.concatenate([np.full(q + 1, float(q)) for q in others]) if others else recv
        ok = np.array_equal(recv, want)
        t.free()
        recv[:] = -1.0
        assert all_ok(ok)


def test_resolve_method():
    assert resolve_method("auto", 1) == "none"
    assert resolve_method("auto", 4) == "p2p" and resolve_method("auto", 5) == "neighbor"
    assert resolve_method("neighbor", 2) == "neighbor" and resolve_method("p2p", 8) == "p2p"
    with pytest.raises(ValueError, match="exchange method 'mpi'"):
        resolve_method("mpi", 2)


def test_wrong_inputs_raise_everywhere():
    p, r = comm.size, comm.rank
    off = block_offsets(10 * p, p)
    with pytest.raises(TypeError, match="comm must be an mpi4py intracommunicator"):
        GhostPlan("world", [], off)
    with pytest.raises(ValueError, match="offsets must be"):
        GhostPlan(comm, [], off[:-1])
    with pytest.raises(TypeError, match="needs must be integer ids"):
        GhostPlan(comm, np.array([0.5]), off)
    # one rank names an id it owns: every rank raises (no hang), naming that rank
    bad = [int(off[r])] if r == p - 1 else []
    with pytest.raises(ValueError, match=f"rank {p - 1} names ids it owns itself"):
        GhostPlan(comm, bad, off)
    bad = [10 * p] if r == 0 else []
    with pytest.raises(ValueError, match=r"rank 0 needs an id outside \[0, "):
        GhostPlan(comm, bad, off)
    plan = GhostPlan(comm, [], off)
    with pytest.raises(ValueError, match="x_local has shape"):
        plan.start(np.zeros(3))
    with pytest.raises(RuntimeError, match="no exchange in flight"):
        plan.wait()


def test_exscan_node_comm_host_ids():
    r, p = comm.rank, comm.size
    assert exscan(comm, 10 * (r + 1)) == sum(10 * (q + 1) for q in range(r))
    assert exscan(None, 2**40) == r * 2**40             # exact Python ints
    node = node_comm(comm)
    assert node is node_comm(comm)                         # made once, cached on comm
    assert node.Get_size() == sum(1 for h in comm.allgather(MPI.Get_processor_name())
                                  if h == MPI.Get_processor_name())
    ids = host_ids(comm)
    names = comm.allgather(MPI.Get_processor_name())
    assert len(ids) == p and ids[r] == min(q for q in range(p) if names[q] == names[r])
    sub = comm.Split(r % 2, r)                             # any communicator may be passed
    assert node_comm(sub).Get_size() <= sub.Get_size()
    assert exscan(sub, 1) == sub.Get_rank()
    sub.Free()
    with pytest.raises(TypeError, match="comm must be"):
        exscan(3, 1)
