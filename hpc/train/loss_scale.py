"""Dynamic loss scaling for float16 mixed precision (Micikevicius et al. 2018; PyTorch's
GradScaler, Megatron's DynamicGradScaler).

The loss gradient is multiplied by ``scale`` before the backward pass, so small gradients stay
above float16's underflow; the optimizer divides it out again (in its one fused pass, before
clipping). A step whose gradients hold an inf or a NaN (float16's overflow, 65504) is skipped:
no update, the scale halves. After ``growth_interval`` good steps in a row the scale doubles.
Backend-generic: the checks are a reduction and a comparison on the gradient buffers (numpy
or cupy alike). The state (scale, good steps in a row, steps skipped) goes into checkpoints.
"""
from __future__ import annotations

from typing import Any

from hpc.core import checks

from . import validate as V

SCALE_MAX = 2.0 ** 64


class DynamicLossScaler:
    """The loss scale of float16 training and its update rule.

    Parameters
    ----------
    init_scale : float, default 2**16
        The first scale, in [1, 2**64].
    growth_interval : int, default 1000
        Good steps in a row after which the scale doubles, at least 1.
    backoff : float, default 0.5
        Factor applied on an overflow, in (0, 1).
    min_scale : float, default 1.0
        The scale never drops below this.
    """

    def __init__(self, init_scale: float = 2.0 ** 16, growth_interval: int = 1000,
                 backoff: float = 0.5, min_scale: float = 1.0):
        self.scale = checks.check_real(V.arg("loss_scale"), init_scale, 1.0, SCALE_MAX)
        self.growth_interval = V.integer(growth_interval, "loss_scale_window")
        self.backoff = float(backoff)
        self.min_scale = float(min_scale)
        self.good_steps = 0  # good steps in a row since the last change
        self.skipped = 0     # steps skipped for an overflow, over the run

    def update(self, finite: bool) -> bool:
        """After a step's gradients were checked: adjust the scale; returns ``finite``."""
        if finite:
            self.good_steps += 1
            if self.good_steps >= self.growth_interval:
                self.scale = min(SCALE_MAX, self.scale * 2.0)
                self.good_steps = 0
        else:
            self.scale = max(self.min_scale, self.scale * self.backoff)
            self.good_steps = 0
            self.skipped += 1
        return finite

    def attrs(self) -> dict[str, Any]:
        """The state a checkpoint keeps."""
        return {"loss_scale": self.scale, "loss_scale_good_steps": self.good_steps,
                "loss_scale_skipped": self.skipped}

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Take the state from a checkpoint's attributes (those present)."""
        if "loss_scale" in attrs:
            self.scale = checks.check_real("checkpoint loss_scale", float(attrs["loss_scale"]),
                                           self.min_scale, SCALE_MAX)
            self.good_steps = int(attrs.get("loss_scale_good_steps", 0))
            self.skipped = int(attrs.get("loss_scale_skipped", 0))
