"""Learning-rate schedules: linear warm-up, then constant, cosine or linear decay to a floor.

The schedule is a pure function of the step (Megatron's OptimizerParamScheduler without its
state): the learning rate of step ``s`` (0-based) is

- ``lr (s + 1) / warmup`` for ``s < warmup`` (the first step already moves the weights);
- then, with ``r = (s - warmup) / (decay_steps - warmup)`` clipped to [0, 1],
  ``constant``: ``lr``; ``linear``: ``lr - r (lr - min_lr)``;
  ``cosine``: ``min_lr + (lr - min_lr) (1 + cos(pi r)) / 2``.

Because it depends only on the step and its five numbers, its whole state is those numbers:
a checkpoint stores them (:meth:`LRSchedule.attrs`) and a resumed run continues the same
schedule at the saved step.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from hpc.core import checks
from hpc.core.errors import UsageError

from .validate import arg

DECAY_STYLES = ("constant", "linear", "cosine")
LR_MAX = 10.0          # Adam steps larger than this are a typo, not a schedule
STEPS_MAX = 10 ** 12   # warm-up and decay lengths: finite, below any real run


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate of every step.

    Parameters
    ----------
    lr : float
        Peak learning rate, in (0, 10].
    warmup : int, default 0
        Steps of linear warm-up from lr / warmup to lr.
    style : {'constant', 'linear', 'cosine'}, default 'constant'
        Decay after the warm-up.
    decay_steps : int, optional
        The step at which the decay reaches ``min_lr`` (it stays there afterwards); needed
        for 'linear' and 'cosine', and larger than ``warmup``.
    min_lr : float, default 0.0
        The floor of the decay, in [0, lr].
    """

    lr: float
    warmup: int = 0
    style: str = "constant"
    decay_steps: int | None = None
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        checks.check_real(arg("lr"), self.lr, 0, LR_MAX, lo_open=True)
        checks.check_int(arg("lr_warmup_steps"), self.warmup, 0, STEPS_MAX)
        checks.check_choice(arg("lr_decay_style"), self.style, DECAY_STYLES)
        checks.check_real(arg("min_lr"), self.min_lr, 0, self.lr)
        if self.style != "constant":
            if self.decay_steps is None:
                raise UsageError(f"{arg('lr_decay_style')} {self.style} needs "
                                 f"{arg('lr_decay_steps')}")
            checks.check_int(arg("lr_decay_steps"), self.decay_steps, self.warmup + 1,
                             STEPS_MAX)
        elif self.decay_steps is not None:
            checks.check_int(arg("lr_decay_steps"), self.decay_steps, 0, STEPS_MAX)

    def __call__(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based)."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.style == "constant":
            return self.lr
        assert self.decay_steps is not None
        r = min(1.0, max(0.0, (step - self.warmup) / (self.decay_steps - self.warmup)))
        if self.style == "linear":
            return self.lr - r * (self.lr - self.min_lr)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * r))

    def attrs(self) -> dict[str, Any]:
        """The schedule as HDF5 attributes (``lr_*``; decay_steps -1 for None)."""
        d = asdict(self)
        d["decay_steps"] = -1 if self.decay_steps is None else self.decay_steps
        return {f"lr_{k}" if not k.startswith("lr") else k: v for k, v in d.items()}

    @classmethod
    def from_attrs(cls, attrs: Any) -> "LRSchedule":
        """The schedule :meth:`attrs` wrote (KeyError when one is missing)."""
        ds = int(attrs["lr_decay_steps"])
        return cls(float(attrs["lr"]), int(attrs["lr_warmup"]), str(attrs["lr_style"]),
                   None if ds < 0 else ds, float(attrs["lr_min_lr"]))
