"""ZeRO-2 (sharded gradients) in process at any rank count: the float64 curve of dp and mixed
tp x pp x dp layouts equals the one-rank curve, checkpoints cross layouts, and the gradient
memory a rank holds is its 1/dp shard plus the bucket buffers of one layer and the
embedding/head groups."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.train import GPTConfig, ParallelLayout, Trainer

world = MPI.COMM_WORLD
N = world.Get_size()

CFG = GPTConfig(vocab=100, hidden=16, heads=4, layers=8, seq_len=8)
OPTIONS = dict(dtype="float64", lr=1e-2, global_batch=48, micro_batches=4, seed=5)
STEPS = 3


@pytest.fixture(scope="module")
def one_rank():
    with Trainer(CFG, comm=MPI.COMM_SELF, **OPTIONS) as t:
        losses = t.fit(STEPS)
        return losses, t.parameters()


def layouts(n: int, stage: int) -> list[ParallelLayout]:
    out = [ParallelLayout(dp=n, zero=stage)]
    if n % 2 == 0:  # mixed: tp 2 with sequence parallelism, or pp 2 (1F1B, tied embedding)
        out.append(ParallelLayout(tp=2, sequence_parallel=True, zero=stage))
        out.append(ParallelLayout(pp=2, zero=stage))
    if n == 4:
        out.append(ParallelLayout(tp=2, pp=2, zero=stage))
    return out


def lid(lay: ParallelLayout) -> str:
    return (f"tp{lay.tp}-pp{lay.pp}-dp{lay.dp}" + ("-sp" if lay.sequence_parallel else "")
            + f"-zero{lay.zero}")


@pytest.mark.mpi
@pytest.mark.parametrize("overlap", [False, True], ids=["blocking", "overlap"])
@pytest.mark.parametrize("layout", layouts(N, 2), ids=lid)
def test_zero2_curve_equals_one_rank(one_rank, layout, overlap):
    with Trainer(CFG, layout, overlap_grad_reduce=overlap, **OPTIONS) as t:
        losses = t.fit(STEPS)
        params = t.parameters()
        assert t.optimizer.stage == (2 if t.layout.dp > 1 else 0)
    np.testing.assert_allclose(losses, one_rank[0], rtol=1e-12)
    if world.rank == 0:
        for name, a in params.items():
            np.testing.assert_allclose(a, one_rank[1][name], rtol=1e-9, atol=1e-13)


@pytest.mark.mpi
@pytest.mark.parametrize("schedule", ["gpipe", "zbh1"])
def test_zero2_pipeline_schedules_equal_one_rank(one_rank, schedule):
    if N % 2:
        pytest.skip("needs an even rank count")
    with Trainer(CFG, ParallelLayout(pp=2, zero=2), schedule=schedule, **OPTIONS) as t:
        np.testing.assert_allclose(t.fit(STEPS), one_rank[0], rtol=1e-12)


@pytest.mark.mpi
def test_zero2_checkpoint_continues_at_another_layout(tmp_path_factory, one_rank):
    path = world.bcast(str(tmp_path_factory.mktemp("z2") / "ck.h5") if world.rank == 0
                       else None)
    with Trainer(CFG, ParallelLayout(dp=N, zero=2), **OPTIONS) as t:
        losses = t.fit(2)
        t.save(path)
    with Trainer(CFG, comm=MPI.COMM_SELF, **OPTIONS) as t:  # one rank, no ZeRO
        t.load(path)
        losses2 = t.fit(STEPS - 2)
    np.testing.assert_allclose(losses + losses2, one_rank[0], rtol=1e-12)
    ck = world.bcast(str(tmp_path_factory.mktemp("z2b") / "ck.h5") if world.rank == 0
                     else None)
    if world.rank == 0:
        with Trainer(CFG, comm=MPI.COMM_SELF, **OPTIONS) as t:
            t.fit(2)
            t.save(ck)
    world.Barrier()
    with Trainer(CFG, ParallelLayout(dp=N, zero=2), **OPTIONS) as t:  # and back into ZeRO-2
        t.load(ck)
        np.testing.assert_allclose(t.fit(STEPS - 2), one_rank[0][2:], rtol=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("overlap", [False, True], ids=["blocking", "overlap"])
def test_zero2_gradient_memory_is_a_shard_plus_one_bucket(overlap):
    """Each layer's gradient is reduce-scattered after each of its backward passes (four
    micro-batches here), so a rank holds its 1/dp of the gradients, the embedding/head groups'
    buffers (alive through the whole backward: the tied embedding is used first and last) and
    one layer's buffer (two with overlap: one reducing while the next computes)."""
    if N == 1:
        pytest.skip("needs 2 or more ranks")
    opts = OPTIONS
    with Trainer(CFG, ParallelLayout(dp=N, zero=2), overlap_grad_reduce=overlap, **opts) as t:
        t.fit(2)
        mem = t.memory()
        st = t.model.store
        spans = st.grad_spans
    item = 8
    layer = max(hi - lo for g, (lo, hi) in spans.items() if g.startswith("layers.")) * item
    rest = sum(hi - lo for g, (lo, hi) in spans.items() if not g.startswith("layers.")) * item
    whole = st.numel * item
    shard = -(-st.numel // N) * item
    bound = shard + rest + (2 if overlap else 1) * layer
    assert mem["grads"] <= bound, (mem, bound)
    assert mem["grads"] < whole  # and really below the unsharded buffer
    assert st.flat_g.nbytes == 0 and st.grad_bytes == 0  # nothing left between steps
    assert mem["optimizer"] == 2 * shard
    with Trainer(CFG, ParallelLayout(dp=N, zero=1), **opts) as t:  # ZeRO-1: the whole
        t.fit(1)
        assert t.memory()["grads"] >= whole


@pytest.mark.mpi
def test_zero_stage_checked():
    with pytest.raises(ValueError, match="zero"):
        ParallelLayout(zero=4)
    with pytest.raises(TypeError, match="zero"):
        ParallelLayout(zero=1.5)
    if N > 1:
        with pytest.raises(ValueError, match="zero"):
            Trainer(CFG, ParallelLayout(dp=N, zero=2), offload=True, **OPTIONS)
        with pytest.raises(ValueError, match="zero"):
            Trainer(CFG, ParallelLayout(dp=N, zero=3), backend="cupy", **OPTIONS)


# -- ZeRO-3 ----------------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("overlap", [False, True], ids=["blocking", "overlap"])
@pytest.mark.parametrize("layout", layouts(N, 3), ids=lid)
def test_zero3_curve_equals_one_rank(one_rank, layout, overlap):
    with Trainer(CFG, layout, overlap_grad_reduce=overlap, **OPTIONS) as t:
        losses = t.fit(STEPS)
        params = t.parameters()
        assert t.optimizer.stage == (3 if t.layout.dp > 1 else 0)
    np.testing.assert_allclose(losses, one_rank[0], rtol=1e-12)
    if world.rank == 0:
        for name, a in params.items():
            np.testing.assert_allclose(a, one_rank[1][name], rtol=1e-9, atol=1e-13)


@pytest.mark.mpi
@pytest.mark.parametrize("extra", [dict(schedule="zbh1"), dict(recompute=True),
                                   dict(schedule="interleaved", vpp=2)],
                         ids=["zbh1", "recompute", "interleaved"])
def test_zero3_schedules_and_recompute_equal_one_rank(one_rank, extra):
    if N % 2:
        pytest.skip("needs an even rank count")
    extra = dict(extra)
    lay = ParallelLayout(pp=2, vpp=extra.pop("vpp", 1), zero=3)
    with Trainer(CFG, lay, **extra, **OPTIONS) as t:
        np.testing.assert_allclose(t.fit(STEPS), one_rank[0], rtol=1e-12)


@pytest.mark.mpi
def test_zero3_checkpoint_continues_at_another_layout(tmp_path_factory, one_rank):
    path = world.bcast(str(tmp_path_factory.mktemp("z3") / "ck.h5") if world.rank == 0
                       else None)
    with Trainer(CFG, ParallelLayout(dp=N, zero=3), **OPTIONS) as t:
        losses = t.fit(2)
        t.save(path)
        losses += t.fit(STEPS - 2)  # and the run goes on after saving
    np.testing.assert_allclose(losses, one_rank[0], rtol=1e-12)
    with Trainer(CFG, comm=MPI.COMM_SELF, **OPTIONS) as t:  # one rank, no ZeRO
        t.load(path)
        np.testing.assert_allclose(t.fit(STEPS - 2), one_rank[0][2:], rtol=1e-12)
    lay = ParallelLayout(tp=2, zero=3) if N % 2 == 0 else ParallelLayout(dp=N, zero=2)
    with Trainer(CFG, lay, **OPTIONS) as t:  # another layout reads it back
        t.load(path)
        np.testing.assert_allclose(t.fit(STEPS - 2), one_rank[0][2:], rtol=1e-12)


@pytest.mark.mpi
def test_zero3_memory_is_a_shard_plus_one_layer():
    """Parameters + gradients + optimizer state per rank: at most 1/dp of the whole model's
    (parameters, gradients, two Adam moments) plus one layer's parameters and gradients,
    beside the embedding/head groups (gathered apart from the layers; their gradient lives
    through the backward) (four micro-batches, no pipeline, blocking)."""
    if N == 1:
        pytest.skip("needs 2 or more ranks")
    opts = OPTIONS
    with Trainer(CFG, ParallelLayout(dp=N, zero=3), **opts) as t:
        t.fit(2)
        mem = t.memory()
        st = t.model.store
        spans = st.grad_spans
        assert st.param_bytes == sum(b.nbytes for b in st._pbufs.values())
        assert not st._pbufs and st.param_bytes == 0  # every gather freed after use
    item = 8
    layer = max(hi - lo for g, (lo, hi) in spans.items() if g.startswith("layers.")) * item
    rest = sum(hi - lo for g, (lo, hi) in spans.items() if not g.startswith("layers.")) * item
    whole = st.numel * item
    shard = -(-st.numel // N) * item
    total = mem["params"] + mem["grads"] + mem["optimizer"]
    bound = 4 * whole / N + 4 * item * N + max(rest, layer) + rest + layer
    assert total <= bound, (mem, bound)
    assert mem["params"] <= shard + max(rest, layer)  # one group gathered at a time
    with Trainer(CFG, ParallelLayout(dp=N, zero=1), **opts) as t:  # ZeRO-1 holds much more
        t.fit(1)
        m1 = t.memory()
    assert total < m1["params"] + m1["grads"] + m1["optimizer"]
