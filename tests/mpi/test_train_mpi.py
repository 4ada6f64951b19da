"""hpc.train in process at any rank count (tools/run_tests.sh runs this at 1..4 ranks): the
Megatron rank order of every group, the sequence-parallel collectives, and every
tensor x pipeline x data factorisation of the world reproducing the single-rank parameters."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from mpi4py import MPI

from hpc.train import GPTConfig, ParallelLayout, Trainer
from hpc.train import comm as C
from hpc.train.checkpoint import gather_full
from hpc.train.parallel_state import ParallelState

world = MPI.COMM_WORLD


def factorisations(n: int):
    for tp, pp in itertools.product((1, 2, 4), (1, 2, 3, 4)):
        if n % (tp * pp) == 0:
            yield tp, pp, n // (tp * pp)


@pytest.mark.mpi
@pytest.mark.parametrize("tp,pp,dp", list(factorisations(world.size)))
def test_groups_follow_megatron_order(tp, pp, dp):
    lay = ParallelLayout(tp, pp, dp)
    ps = ParallelState(world, lay)
    t, d, p = ps.tp_rank, ps.dp_rank, ps.pp_rank
    assert world.rank == t + tp * (d + dp * p)
    assert ps.tp_group.allgather(world.rank) == [lay.rank_of(r, d, p) for r in range(tp)]
    assert ps.dp_group.allgather(world.rank) == [lay.rank_of(t, r, p) for r in range(dp)]
    assert ps.pp_group.allgather(world.rank) == [lay.rank_of(t, d, r) for r in range(pp)]
    if pp > 1 and p in (0, pp - 1):
        assert ps.embedding_group.allgather(world.rank) == [lay.rank_of(t, d, 0),
                                                            lay.rank_of(t, d, pp - 1)]
    ps.free()


@pytest.mark.mpi
def test_sequence_parallel_collectives():
    n, r = world.size, world.rank
    rng = np.random.default_rng(r)
    x = rng.standard_normal((2, 3, 5))
    full = world.allgather(x)
    np.testing.assert_array_equal(C.allgather_seq(world, x), np.concatenate(full, axis=1))
    y = np.random.default_rng(100 + r).standard_normal((2, 3 * n, 4))
    total = sum(world.allgather(y))
    np.testing.assert_allclose(C.reduce_scatter_seq(world, y), total[:, 3 * r:3 * r + 3],
                               rtol=1e-13, atol=1e-14)  # MPI may sum in another order


CFG = GPTConfig(vocab=100, hidden=16, heads=4, layers=12, seq_len=8)
OPTIONS = dict(global_batch=24, micro_batches=2, dtype="float64", lr=1e-2, seed=3,
               schedule="1f1b")


def _train(comm, layout: ParallelLayout, recompute: bool = False, steps: int = 2):
    with Trainer(CFG, layout, recompute=recompute, comm=comm, **OPTIONS) as t:
        losses = t.fit(steps)
        full = gather_full(t.model, t.optimizer)
    return losses, full


@pytest.fixture(scope="module")
def reference():
    return _train(MPI.COMM_SELF, ParallelLayout()) if world.rank == 0 else None


@pytest.mark.mpi
@pytest.mark.parametrize("tp,pp,dp", list(factorisations(world.size)))
@pytest.mark.parametrize("extra", [False, True], ids=["plain", "sp-zero1-recompute"])
def test_every_factorisation_matches_single_rank(reference, tp, pp, dp, extra):
    lay = ParallelLayout(tp, pp, dp, sequence_parallel=extra, zero1=extra)
    losses, full = _train(world, lay, recompute=extra)
    if world.rank == 0:
        ref_losses, ref_full = reference
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
        assert set(full) == set(ref_full)
        for name, arrs in full.items():
            for a, b in zip(arrs, ref_full[name]):  # parameter, Adam m, Adam v
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13, err_msg=name)
