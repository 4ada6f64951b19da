"""float16 mixed precision with dynamic loss scaling, in process at any rank count (data
parallel over the world): an overflow skips the step on every rank (parameters and Adam
untouched) and halves the scale, good steps grow it, the scale lives in checkpoints, a short
float16 run stays near the float32 one, and the same code runs on CuPy (skipped without a
GPU)."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.train import GPTConfig, Trainer

world = MPI.COMM_WORLD
CFG = GPTConfig(vocab=100, hidden=32, heads=4, layers=2, seq_len=16)
OPTIONS = dict(dtype="float32", lr=3e-3, global_batch=12, micro_batches=1, seed=3)


def params(t: Trainer) -> np.ndarray:
    return np.asarray(t.model.store.flat_p).copy()


@pytest.mark.mpi
def test_overflow_skips_the_step_and_halves_the_scale():
    with Trainer(CFG, fp16=True, loss_scale=2.0 ** 40, **OPTIONS) as t:
        p0 = params(t)
        st = t.step()
        # 2^40 times a gradient of ~1e-2 is far beyond float16's 65504: inf, skipped
        assert t.optimizer.skipped and st.grad_norm == 0.0
        assert t.scaler.scale == 2.0 ** 39 and t.scaler.skipped == 1
        assert t.optimizer.t == 0  # Adam's step count (bias correction) untouched
        np.testing.assert_array_equal(params(t), p0)
        assert not np.any(np.asarray(t.optimizer.m)) and not np.any(np.asarray(t.optimizer.v))
        for _ in range(40):  # halving until the scaled gradients fit, then updates
            t.step()
            if not t.optimizer.skipped:
                break
        assert not t.optimizer.skipped and t.optimizer.t == 1
        assert 1.0 <= t.scaler.scale < 2.0 ** 39
        assert not np.array_equal(params(t), p0)
        # every rank took the same decisions
        assert world.allgather(t.scaler.attrs()) == [t.scaler.attrs()] * world.size


@pytest.mark.mpi
def test_scale_doubles_after_the_window_of_good_steps():
    with Trainer(CFG, fp16=True, loss_scale=2.0 ** 8, loss_scale_window=3, **OPTIONS) as t:
        for k in range(1, 8):
            t.step()
            assert not t.optimizer.skipped
            assert t.scaler.scale == 2.0 ** (8 + k // 3), k


@pytest.mark.mpi
def test_fp16_curve_stays_near_float32():
    with Trainer(CFG, **OPTIONS) as t:
        ref = t.fit(20)
    with Trainer(CFG, fp16=True, **OPTIONS) as t:
        got = t.fit(20)
        assert t.scaler.skipped == 0
    rel = np.abs(np.subtract(got, ref)) / np.abs(ref)
    assert rel.max() < 5e-3, rel
    assert ref[-1] < ref[0] - 0.05  # it trained


@pytest.mark.mpi
def test_loss_scale_in_the_checkpoint_and_the_curve_continues(tmp_path_factory):
    path = world.bcast(str(tmp_path_factory.mktemp("fp16") / "ck.h5") if world.rank == 0
                       else None)
    opts = dict(fp16=True, loss_scale=2.0 ** 22, loss_scale_window=2, **OPTIONS)
    with Trainer(CFG, **opts) as t:
        full = t.fit(6)
        scale_full = t.scaler.attrs()
    with Trainer(CFG, **opts) as t:
        t.fit(3)
        assert t.scaler.skipped > 0  # 2^22 overflowed first: the saved state is not trivial
        t.save(path)
        saved = t.scaler.attrs()
    with Trainer(CFG, **{**opts, "loss_scale": 2.0 ** 16}) as t:
        t.load(path)
        assert t.scaler.attrs() == saved
        rest = t.fit(3)
        assert t.scaler.attrs() == scale_full
    np.testing.assert_allclose(full[3:], rest, rtol=1e-12)


@pytest.mark.mpi
def test_fp16_needs_float32_master_weights():
    with pytest.raises(UsageError, match="fp16"):
        Trainer(CFG, fp16=True, **{**OPTIONS, "dtype": "float64"})
    with pytest.raises(UsageError, match="fp16"):
        Trainer(CFG, fp16=True, bf16=True, **OPTIONS)
    with pytest.raises(UsageError, match="loss_scale"):
        Trainer(CFG, fp16=True, loss_scale=0.5, **OPTIONS)


@pytest.mark.mpi
def test_fp16_on_cupy_matches_numpy():
    """The same float16 code on a GPU (CuPy): the curve equals the CPU's to float32 rounding
    of the GEMMs' summation order."""
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    with Trainer(CFG, fp16=True, loss_scale=2.0 ** 30, **OPTIONS) as t:
        cpu = t.fit(8)
        cpu_scale = t.scaler.attrs()
    with Trainer(CFG, fp16=True, loss_scale=2.0 ** 30, backend="cupy", **OPTIONS) as t:
        gpu = t.fit(8)
        assert t.scaler.attrs()["loss_scale_skipped"] == cpu_scale["loss_scale_skipped"]
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3)
