"""hpc.train: Megatron-LM style tensor x pipeline x data parallel training of a GPT.

The API, usable from a script (one rank, or unchanged under ``mpiexec -n N``)::

    from hpc.train import GPTConfig, ParallelLayout, Trainer

    cfg = GPTConfig(layers=2, hidden=32, heads=4, seq_len=32)
    with Trainer(cfg, ParallelLayout(tp=2), data="input.txt", dtype="float64",
                 global_batch=8, micro_batches=2) as t:
        losses = t.fit(20)          # one loss per step, the same on every rank
        t.save("ck.h5")             # loads at any other layout: Trainer(...).load("ck.h5")

- :class:`GPTConfig`: the model (vocab, hidden, heads, layers, seq_len).
- :class:`ParallelLayout`: tp x pp x dp (dp None: the rest of the ranks), vpp,
  sequence parallelism, ZeRO stage 1, 2 or 3.
- :class:`Trainer`: ``step()``, ``fit(steps)``, ``evaluate()``, ``save(path)``,
  ``load(path)`` (the whole state: the run continues its curve at any layout),
  ``memory()``; learning-rate warm-up and decay, AdamW, global-norm clipping, bfloat16
  GEMMs, float16 GEMMs with dynamic loss scaling, blocked attention, selective recomputation, overlapped data-parallel reduction,
  the zero-bubble ZB-H1 schedule.
- :class:`LRSchedule`: the learning rate of every step.
- :func:`reference_losses`: the same run without parallelism, on one rank.
- :func:`model_flops_per_step`: Megatron's FLOP count, for MFU.

``python -m hpc.train`` is the command line over this API. Papers: Shoeybi et al. 2019
(Megatron-LM), Narayanan et al. 2021 (pipeline schedules), Korthikanti et al. 2022 (sequence
parallelism, recomputation), Rajbhandari et al. 2020 (ZeRO).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "GPTConfig": ".model",
    "LRSchedule": ".lr_schedule",
    "model_flops_per_step": ".model",
    "ParallelLayout": ".parallel_state",
    "SCHEDULES": ".schedules",
    "BACKENDS": ".trainer",
    "StepStats": ".trainer",
    "Trainer": ".trainer",
    "reference_losses": ".trainer",
})
__all__ = ["GPTConfig", "ParallelLayout", "Trainer", "StepStats", "LRSchedule",
           "reference_losses", "model_flops_per_step", "BACKENDS", "SCHEDULES"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .lr_schedule import LRSchedule
    from .model import GPTConfig, model_flops_per_step
    from .parallel_state import ParallelLayout
    from .schedules import SCHEDULES
    from .trainer import BACKENDS, StepStats, Trainer, reference_losses
