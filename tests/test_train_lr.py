"""hpc.train's learning-rate schedules against PyTorch's schedulers (LinearLR warm-up, then
CosineAnnealingLR or LinearLR decay), and their argument checks."""
from __future__ import annotations

import math

import pytest

from hpc.core.errors import UsageError
from hpc.train.lr_schedule import LRSchedule


@pytest.mark.parametrize("style", ["constant", "linear", "cosine"])
@pytest.mark.parametrize("warmup", [0, 1, 4])
def test_schedule_equals_torch_schedulers(style, warmup):
    torch = pytest.importorskip("torch")
    from hpc.train.torch_ref import scheduler

    decay = None if style == "constant" else 20
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=0.3)
    ref = scheduler(opt, warmup, style, decay, 0.01)
    ours = LRSchedule(0.3, warmup, style, decay, 0.01)
    for step in range(21):
        assert ours(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        opt.step()
        ref.step()


def test_schedule_closed_form_and_floor():
    s = LRSchedule(1.0, 2, "cosine", 10, 0.1)
    assert [s(0), s(1)] == [0.5, 1.0]
    assert s(6) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert s(10) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)
    lin = LRSchedule(1.0, 0, "linear", 4, 0.0)
    assert [lin(k) for k in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert LRSchedule.from_attrs(s.attrs()) == s


@pytest.mark.parametrize("kwargs,msg", [
    (dict(lr=0.0), "lr must be"), (dict(lr=float("nan")), "lr must be"),
    (dict(lr=1e400), "lr must be"), (dict(lr=1.0, min_lr=2.0), "min_lr must be"),
    (dict(lr=1.0, style="cosine"), "needs lr_decay_steps"),
    (dict(lr=1.0, warmup=5, style="linear", decay_steps=5), "lr_decay_steps must be"),
    (dict(lr=1.0, style="exp"), "lr_decay_style must be one of"),
    (dict(lr=1.0, warmup=-1), "lr_warmup_steps must be")])
def test_schedule_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(UsageError, match=msg):
        LRSchedule(**kwargs)
