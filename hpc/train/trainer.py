"""The training API: a :class:`Trainer` trains a :class:`~hpc.train.model.GPTConfig` model at
a :class:`~hpc.train.parallel_state.ParallelLayout`, one optimizer step at a time.

A step draws the global batch of (seed, step), gives each data-parallel rank its share, runs
the pipeline schedule that :func:`~hpc.train.schedules.get_forward_backward_func` returns
(forwards and backwards of every micro-batch, tensor-parallel collectives inside the model),
then Adam (:mod:`hpc.train.optimizer`). Every parameter derives from (seed, name) and every
batch from (seed, step), so the loss curve is the same at every layout (float64: to ~1e-12).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core import checks
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import node_comm
from hpc.core.runtime import as_comm
from hpc.core.memory import require_memory

from . import checkpoint
from . import kernels
from . import validate as V
from .data import EVAL_SALT, Data, global_batch, tokens_from
from .loss_scale import DynamicLossScaler
from .lr_schedule import LRSchedule
from .model import GPT, GPTConfig
from .optimizer import Adam
from .parallel_state import ParallelLayout, ParallelState, check_layout, default_schedule
from .schedules import SCHEDULES, get_forward_backward_func

#: Array back ends: name -> (array module, hpc.core.backends entry it needs).
BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "numpy"),
    "cupy": ("cupy", "cupy"),
}
DTYPES = ("float32", "float64")
WD_MAX = 10.0              # AdamW decay: p -= lr wd p; beyond 10 it is a typo
CLIP_MAX = 1e6             # gradient-norm clip: finite; 0 is off
EVAL_FRACTION_MAX = 0.5    # the held-out tail: at most half the corpus


@dataclass
class StepStats:
    """What one optimizer step did (every rank holds the same ``loss`` and ``grad_norm``)."""

    step: int                # the step's index (0-based, counting from the first step ever)
    loss: float              # mean token cross-entropy over the global batch (nats)
    grad_norm: float         # global gradient norm before clipping
    wall_s: float            # this rank's schedule, start to last send completed (s)
    busy_s: float            # forward + backward compute inside it (s)
    step_s: float            # the whole step on this rank, optimizer included (s)
    lr: float = 0.0          # the learning rate the step used (the schedule's)


def memory_per_rank(cfg: GPTConfig, layout: ParallelLayout, global_batch: int,
                    micro_batches: int, dtype: np.dtype, attention_block: int | None = None
                    ) -> int:
    """Bytes one rank needs: parameters, gradients and Adam's two moments of its tp x pp share,
    and the activations of its micro-batches in flight (an upper bound: GPipe's m; blocked
    attention keeps no S x S scores)."""
    tp, pp, dp = layout.tp, layout.pp, layout.dp or 1
    per_rank = cfg.n_params / (tp * pp) * dtype.itemsize * 4
    mbs = global_batch // (dp * micro_batches)
    act = (mbs * cfg.seq_len * (16 * cfg.hidden + 2 * cfg.vocab_padded // tp)
           + mbs * cfg.heads // tp * cfg.seq_len * min(cfg.seq_len, attention_block
                                                        or cfg.seq_len) * 2) * dtype.itemsize
    return int(per_rank + act * cfg.layers // pp * micro_batches)


def _dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, (str, np.dtype, type)):
        raise InputTypeError(f"{V.arg('dtype')} must be one of {', '.join(DTYPES)}, got "
                             f"{type(dtype).__name__}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputTypeError(f"{V.arg('dtype')} must be one of {', '.join(DTYPES)}, got "
                             f"{type(dtype).__name__}") from None
    if dt.name not in DTYPES:
        raise UsageError(f"{V.arg('dtype')} must be one of {', '.join(DTYPES)}, got {dt.name}")
    return dt


def _use_device(xp, comm: MPI.Intracomm) -> None:
    """One GPU per node-local rank."""
    xp.cuda.Device(node_comm(comm).Get_rank() % xp.cuda.runtime.getDeviceCount()).use()


class Trainer:
    """Megatron-LM style training of a GPT at any tensor x pipeline x data parallel layout.

    Tensor parallelism as Megatron-LM (Shoeybi et al. 2019), pipeline schedules GPipe, 1F1B
    and interleaved 1F1B (Narayanan et al. 2021), data parallelism with an all-reduce or ZeRO-1
    (Rajbhandari et al. 2020), sequence parallelism and activation recomputation (Korthikanti
    et al. 2022); Adam with decoupled weight decay and global gradient-norm clipping.
    Collective: every rank of ``comm`` constructs it and calls each method together.

    Parameters
    ----------
    config : GPTConfig
        The model.
    layout : ParallelLayout, optional
        tp x pp x dp (dp None: the rest of the ranks), vpp, sequence parallelism, ZeRO-1;
        default ``ParallelLayout()``: pure data parallelism over every rank of ``comm``.
    data : None, str or os.PathLike, bytes, or ndarray, optional
        The corpus: a text file's path or bytes (byte-level tokens; ``vocab`` >= 256), a 1-D
        integer array of token ids in [0, vocab) (given identically on every rank), or None
        (default) for a seeded synthetic corpus with learnable structure (2^17 tokens).
    dtype : {'float32', 'float64'}, default 'float32'
        Parameters, activations and optimizer state (float64: the loss curve equals the
        one-rank curve to ~1e-12 at every layout).
    lr : float, default 3e-3
        Adam's peak learning rate, in (0, 10] (betas 0.9, 0.95, eps 1e-8).
    lr_warmup_steps : int, default 0
        Linear warm-up of the learning rate over the first steps.
    lr_decay_style : {'constant', 'linear', 'cosine'}, default 'constant'
        Decay of the learning rate after the warm-up (:class:`~hpc.train.lr_schedule.
        LRSchedule`).
    lr_decay_steps : int, optional
        The step at which the decay reaches ``min_lr``; needed by 'linear' and 'cosine'.
    min_lr : float, default 0.0
        The floor of the decay, in [0, lr].
    weight_decay : float, default 0.0
        Decoupled weight decay (AdamW: p -= lr_t wd p), in [0, 10].
    clip_grad : float, default 1.0
        Clip the gradient norm over every parameter of the model (all of tp, pp and dp) to
        this, in [0, 1e6]; 0 turns clipping off.
    bf16 : bool, default False
        Mixed precision: every GEMM (linear layers, attention, logits, forward and backward)
        takes bfloat16 operands (rounded with ml_dtypes) and accumulates in float32; the
        master weights, gradients, Adam state, norms, softmax and reductions stay float32.
        Needs dtype float32 (numpy back end).
    fp16 : bool, default False
        Mixed precision with float16 GEMM operands (numpy: rounded on the CPU; cupy: the same
        code on a GPU), float32 master weights and everything else, and dynamic loss scaling
        (:class:`~hpc.train.loss_scale.DynamicLossScaler`): the loss gradient is scaled by
        the current scale, a step with an inf or NaN gradient is skipped and halves it,
        ``loss_scale_window`` good steps in a row double it. Needs dtype float32.
    loss_scale : float, default 65536
        The first loss scale (fp16), in [1, 2**64].
    loss_scale_window : int, default 1000
        Good steps after which the loss scale doubles (fp16).
    recompute_attention : bool, default False
        Selective recomputation (Korthikanti et al. 2022): keep no attention probabilities
        (S x S per head), recompute them from q and k in the backward.
    attention_block : int, optional
        Compute attention in blocks of this many queries and keys with an online softmax
        (FlashAttention), so its memory grows linearly with the sequence; the same results.
    overlap_param_gather : bool, default False
        Under ZeRO-1, all-gather the updated parameters per transformer layer by non-blocking
        collectives, each waited for just before the layer's next forward (Megatron's
        overlap_param_gather; numpy back end).
    overlap_grad_reduce : bool, default False
        Reduce the data-parallel gradients in buckets (one per transformer layer) by
        non-blocking all-reduces started as soon as a layer's backward passes of the step
        are done, while the backward goes on (Megatron's overlap_grad_reduce; numpy back end,
        without ZeRO-1; otherwise one all-reduce after the backward, as without it).
    eval_fraction : float, default 0.0
        Hold out this tail fraction of the corpus, in [0, 0.5], for :meth:`evaluate`; the
        steps train on the rest.
    global_batch : int, default 8
        Sequences per step over all data-parallel ranks.
    micro_batches : int, default 4
        Micro-batches per step per data-parallel rank (global_batch must be a multiple of
        dp x micro_batches).
    schedule : {'gpipe', '1f1b', 'interleaved', 'zbh1'}, optional
        Pipeline schedule (zbh1: zero-bubble ZB-H1, backward split into input and weight
        gradients); default interleaved when vpp > 1, else 1f1b. Without pipelining
        every schedule runs as GPipe's (gradient accumulation).
    recompute : bool, default False
        Activation recomputation: keep each layer's input only, recompute its forward in the
        backward.
    offload : bool, default False
        Keep transformer layers in host memory, copy each to the device while it computes.
    seed : int, default 0
        Parameters derive from (seed, name), batches from (seed, step).
    backend : {'numpy', 'cupy'}, default 'numpy'
        Array back end; cupy uses one GPU per node-local rank.
    comm : mpi4py.MPI.Intracomm, optional
        The ranks of the run; default ``MPI.COMM_WORLD``.

    Attributes
    ----------
    config : GPTConfig
        The model.
    layout : ParallelLayout
        The layout, ``dp`` resolved.
    schedule : str
        The pipeline schedule that runs.
    iteration : int
        Steps done so far: the index of the next step (set by :meth:`load`).
    state : ParallelState
        This rank's coordinates and process groups.
    model : hpc.train.model.GPT
        This rank's model chunks (its parameters and gradients).
    optimizer : hpc.train.optimizer.Adam
        Adam over this rank's parameters (its shard under ZeRO-1).
    tokens : numpy.ndarray
        The corpus as int64 token ids (all of it, the held-out tail included).
    lr_schedule : LRSchedule
        The learning rate of every step.
    history : dict of str to list
        Every step's loss, gradient norm and learning rate since step ``history_start`` (0
        unless the run continued a checkpoint without a history) (``losses``,
        ``grad_norms``, ``lrs``) and the evaluations (``eval_steps``, ``eval_losses``);
        restored by :meth:`load`.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        A layout the ranks or the model cannot take (tp x pp not dividing the ranks, heads or
        the padded vocabulary not divisible by tp, layers not divisible by pp x vpp,
        dp x micro_batches not dividing global_batch, vpp > 1 without the interleaved
        schedule, ...), a bad dtype, schedule or back end, unreadable or too short data, or
        not enough memory.

    Notes
    -----
    Cost per step: about 6 N tokens FLOPs (N parameters; 8 N with ``recompute``) over the
    ranks, a gradient all-reduce of 2 N (dp - 1) / dp / (tp pp) elements per rank, tensor-
    parallel all-reduces of the activations per layer, and pipeline bubble
    (pp - 1) / (micro_batches x vpp).

    Examples
    --------
    >>> from hpc.train import GPTConfig, ParallelLayout, Trainer
    >>> t = Trainer(GPTConfig(layers=2, hidden=32, heads=4, seq_len=32), ParallelLayout(),
    ...             dtype="float64", global_batch=8, micro_batches=2)
    >>> losses = t.fit(5)
    """

    def __init__(self, config: GPTConfig, layout: ParallelLayout | None = None, *,
                 data: Data = None, dtype: Any = "float32", lr: float = 3e-3,
                 lr_warmup_steps: int = 0, lr_decay_style: str = "constant",
                 lr_decay_steps: int | None = None, min_lr: float = 0.0,
                 weight_decay: float = 0.0, clip_grad: float = 1.0, global_batch: int = 8,
                 micro_batches: int = 4, schedule: str | None = None, recompute: bool = False,
                 offload: bool = False, seed: int = 0, backend: str = "numpy",
                 eval_fraction: float = 0.0, overlap_grad_reduce: bool = False,
                 recompute_attention: bool = False, attention_block: int | None = None,
                 bf16: bool = False, overlap_param_gather: bool = False,
                 fp16: bool = False, loss_scale: float = 2.0 ** 16,
                 loss_scale_window: int = 1000, comm: MPI.Intracomm | None = None):
        if not isinstance(config, GPTConfig):
            raise InputTypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        layout = ParallelLayout() if layout is None else layout
        if not isinstance(layout, ParallelLayout):
            raise InputTypeError(f"layout must be a ParallelLayout, got {type(layout).__name__}")
        comm = as_comm(comm)
        self.dtype = _dtype(dtype)
        self.lr_schedule = LRSchedule(lr, lr_warmup_steps, lr_decay_style, lr_decay_steps,
                                      min_lr)
        self.lr = self.lr_schedule.lr
        self.weight_decay = checks.check_real(V.arg("weight_decay"), weight_decay, 0, WD_MAX)
        self.clip_grad = checks.check_real(V.arg("clip_grad"), clip_grad, 0, CLIP_MAX)
        self.eval_fraction = checks.check_real(V.arg("eval_fraction"), eval_fraction, 0,
                                               EVAL_FRACTION_MAX)
        self.global_batch = V.integer(global_batch, "global_batch")
        self.micro_batches = V.integer(micro_batches, "micro_batches")
        self.seed = V.integer(seed, "seed", 0)
        self.recompute = V.flag(recompute, "recompute")
        self.offload = V.flag(offload, "offload")
        self.overlap_grad_reduce = V.flag(overlap_grad_reduce, "overlap_grad_reduce")
        self.recompute_attention = V.flag(recompute_attention, "recompute_attention")
        self.bf16 = V.flag(bf16, "bf16")
        self.fp16 = V.flag(fp16, "fp16")
        self.scaler = (DynamicLossScaler(loss_scale, loss_scale_window) if self.fp16
                       else None)
        self.loss_scale_init, self.loss_scale_window = loss_scale, loss_scale_window
        self.overlap_param_gather = V.flag(overlap_param_gather, "overlap_param_gather")
        self.attention_block = (None if attention_block is None else
                                checks.check_int(V.arg("attention_block"), attention_block, 1,
                                                 1 << 30))
        self.backend = V.choice(backend, "backend", tuple(BACKENDS))
        layout = layout.resolve(comm.Get_size())
        asked = default_schedule(layout) if schedule is None else V.choice(schedule, "schedule",
                                                                          SCHEDULES)
        check_layout(layout, config, self.micro_batches, self.global_batch, asked)
        if self.bf16 and (self.dtype != np.float32 or self.backend != "numpy"):
            raise UsageError(f"{V.arg('bf16')} keeps float32 master weights on the numpy back "
                             f"end: needs {V.arg('dtype')} float32 and {V.arg('backend')} numpy")
        if self.fp16 and (self.dtype != np.float32 or self.bf16):
            raise UsageError(f"{V.arg('fp16')} keeps float32 master weights: needs "
                             f"{V.arg('dtype')} float32, and not {V.arg('bf16')} too")
        if layout.zero_stage >= 2 and (self.offload or self.backend != "numpy"):
            raise UsageError(f"{V.arg('zero')} {layout.zero_stage} keeps host gradient buffers: needs "
                             f"{V.arg('backend')} numpy, without {V.arg('offload')}")
        if self.offload and asked == "zbh1" and layout.pp > 1:
            raise UsageError(f"{V.arg('schedule')} zbh1 defers weight gradients past the "
                             f"layer's stay on the device: not with {V.arg('offload')}")
        registry.require(self.backend, list(BACKENDS))
        self.xp = importlib.import_module(BACKENDS[self.backend][0])
        if self.backend == "cupy":
            _use_device(self.xp, comm)
        else:  # each step's activations reuse the last step's pages (no fault per page)
            kernels.keep_freed_memory()
        require_memory(memory_per_rank(config, layout, self.global_batch, self.micro_batches,
                                       self.dtype, self.attention_block),
                       "the model and its activations", comm)
        self.tokens = tokens_from(data, config.vocab, config.seq_len, self.seed)
        n_eval = int(self.tokens.shape[0] * self.eval_fraction)
        if self.eval_fraction > 0 and min(n_eval, self.tokens.shape[0] - n_eval) < \
                config.seq_len + 2:
            raise UsageError(f"{V.arg('eval_fraction')} {self.eval_fraction:g} of "
                             f"{self.tokens.shape[0]} tokens leaves a split shorter than "
                             f"{V.arg('seq_len')} + 2")
        self.train_tokens = self.tokens[:self.tokens.shape[0] - n_eval]
        self.eval_tokens = self.tokens[self.tokens.shape[0] - n_eval:]
        self.history: dict[str, list] = {k: [] for k in checkpoint.HISTORY}
        self.history_start = 0  # the step the history begins at (a checkpoint without one)
        self.loaded: dict[str, Any] | None = None  # what load() read, and what differs
        self.act_peak_bytes = 0  # the most activation bytes a step held (this rank)
        self._crc: int | None = None

        self.config, self.layout, self.comm = config, layout, comm
        self.state = ps = ParallelState(comm, layout)
        self.model = GPT(config, ps, self.xp, self.dtype, self.seed,
                         sequence_parallel=layout.sequence_parallel, recompute=self.recompute,
                         offload=self.offload, recompute_attention=self.recompute_attention,
                         attention_block=self.attention_block, bf16=self.bf16,
                         fp16=self.fp16)
        self.optimizer = Adam(self.model, self.lr, weight_decay=self.weight_decay,
                              clip=self.clip_grad, zero=layout.zero_stage,
                              overlap=self.overlap_grad_reduce,
                              overlap_params=self.overlap_param_gather)
        self.optimizer.check_finite = self.fp16
        if self.optimizer.overlap_params:
            self.model.param_hook = self.optimizer.wait_params
        self._forward_backward = get_forward_backward_func(asked, ps.pp, self.micro_batches,
                                                           ps.vpp, ps.pp_rank)
        self.schedule: str = self._forward_backward.kind  # type: ignore[attr-defined]
        self.micro_batch_size = self.global_batch // (ps.dp * self.micro_batches)
        self.iteration = 0
        self._scale = 1.0 / (self.global_batch * config.seq_len)  # loss: mean over the batch

    # -- training ----------------------------------------------------------------------------
    @property
    def tokens_per_step(self) -> int:
        """Tokens of one global batch (global_batch x seq_len)."""
        return self.global_batch * self.config.seq_len

    def step(self) -> StepStats:
        """One optimizer step on the global batch of step :attr:`iteration` (collective).

        Returns
        -------
        StepStats
            The step's mean loss (nats per token) and gradient norm, the same on every rank,
            and this rank's times.
        """
        model = self.model
        t0 = time.perf_counter()
        m, s = self.micro_batches, self.config.seq_len
        batch = global_batch(self.train_tokens, self.seed, self.iteration, self.global_batch, s)
        model.store.zero_grads()
        if self.optimizer.hooks_grads:  # each layer's bucket starts its reduction when done
            self.optimizer.begin_step(m)
            model.grad_hook = self.optimizer.layer_done
        loss_scale = self.scaler.scale if self.scaler is not None else 1.0
        # float16: an overflow to inf (and the NaNs after it) is the expected signal the
        # scaler acts on, not a numpy warning
        quiet = (np.errstate(over="ignore", invalid="ignore") if self.fp16
                 else contextlib.nullcontext())
        with quiet:
            try:
                fb, loss = self._run_batch(batch, loss_scale)
            finally:
                model.grad_hook = None
            lr = self.lr_schedule(self.iteration)
            self.optimizer.lr = lr
            self.optimizer.grad_scale = loss_scale
            norm = self.optimizer.step()
        if self.scaler is not None:  # a skipped step (overflow) records a norm of 0
            if not self.scaler.update(not self.optimizer.skipped):
                norm = 0.0
        stats = StepStats(self.iteration, loss, norm, fb.wall_s, fb.busy_s,
                          time.perf_counter() - t0, lr)
        for k, v in (("losses", loss), ("grad_norms", norm), ("lrs", lr)):
            self.history[k].append(v)
        self.iteration += 1
        return stats

    def _run_batch(self, batch: np.ndarray, loss_scale: float = 1.0) -> tuple[Any, float]:
        """Forward and backward of this dp rank's share of a global batch through the
        pipeline schedule (gradients accumulate, times ``loss_scale``); (the schedule's
        result, the mean loss)."""
        ps, xp = self.state, self.xp
        m, mbs = self.micro_batches, self.micro_batch_size
        share = batch[ps.dp_rank * m * mbs:(ps.dp_rank + 1) * m * mbs]
        inputs = [xp.asarray(share[i * mbs:(i + 1) * mbs, :-1]) for i in range(m)]
        targets = [xp.asarray(share[i * mbs:(i + 1) * mbs, 1:]) for i in range(m)]
        fb = self._forward_backward(self.model, inputs, targets, self._scale * loss_scale)
        self.act_peak_bytes = max(self.act_peak_bytes, fb.act_peak_bytes)
        # the loss: last-stage, tp-rank-0 ranks hold their dp share's token-loss sums
        mine = fb.loss_sum if (ps.is_last_stage and ps.tp_rank == 0) else 0.0
        return fb, ps.world.allreduce(mine, op=MPI.SUM) * self._scale

    def memory(self) -> dict[str, int]:
        """This rank's bytes of parameters, gradients (the flat buffers), optimizer state
        (Adam's moments: its shard under ZeRO-1; under ZeRO-2 the gradients are the
        shard plus the peak of the per-bucket buffers alive during a backward, and under
        ZeRO-3 the parameters the shard plus the peak of the gathered groups) and the most activations a step has held
        (forward caches, measured), and the whole model's parameter bytes for scale."""
        st, opt = self.model.store, self.optimizer
        grads = int(st.flat_g.nbytes)
        params = int(st.flat_p.nbytes)
        if opt.stage >= 2:  # the shard, and the most full-size bucket buffers alive at once
            grads = int(opt.g_shard.nbytes + st.grad_bytes_peak)
        if opt.stage == 3:  # the shard, and the most gathered (or kept) groups at once
            params = int(opt.p_shard.nbytes + st.param_bytes_peak)
        return {"params": params, "grads": grads,
                "optimizer": int(opt.m.nbytes + opt.v.nbytes),
                "activations_peak": int(self.act_peak_bytes),
                "model_params": int(self.config.n_params * self.dtype.itemsize)}

    def evaluate(self, batches: int = 4) -> float:
        """The mean loss over ``batches`` global batches of the held-out split (collective).

        The batches are the same at every call (drawn from (seed, i) with their own stream),
        so evaluations along a run are comparable; the parameters and the optimizer are not
        changed. Needs ``eval_fraction`` > 0.
        """
        batches = checks.check_int(V.arg("eval_batches"), batches, 1, 10 ** 6)
        if self.eval_tokens.shape[0] == 0:
            raise UsageError(f"evaluation needs a held-out split: {V.arg('eval_fraction')} > 0")
        total = 0.0
        for i in range(batches):
            batch = global_batch(self.eval_tokens, self.seed, i, self.global_batch,
                                 self.config.seq_len, salt=EVAL_SALT)
            # the schedule runs backwards too; their gradients are thrown away
            total += self._run_batch(batch)[1]
            self.model.store.flush_resident()
            self.model.store.zero_grads()
        loss = total / batches
        self.history["eval_steps"].append(self.iteration)
        self.history["eval_losses"].append(loss)
        return loss

    def fit(self, steps: int, callback: Callable[[StepStats], Any] | None = None) -> list[float]:
        """Run ``steps`` optimizer steps (collective).

        Parameters
        ----------
        steps : int
            Steps to run, from :attr:`iteration` on.
        callback : callable, optional
            Called with each step's :class:`StepStats` after the step.

        Returns
        -------
        list of float
            The loss of each step run (the loss history of this call).
        """
        steps = V.integer(steps, "steps")
        if callback is not None and not callable(callback):
            raise InputTypeError(f"callback must be callable, got {type(callback).__name__}")
        losses = []
        for _ in range(steps):
            st = self.step()
            losses.append(st.loss)
            if callback is not None:
                callback(st)
        return losses

    # -- checkpoints -------------------------------------------------------------------------
    def state_attrs(self) -> dict[str, Any]:
        """What a checkpoint stores besides the tensors and the history: the step (the data
        position), the seed (the only random state), the schedule, the optimizer settings
        and the data's length and CRC-32."""
        return {"step": self.iteration, "history_start": self.history_start, "seed": self.seed,
                **self.lr_schedule.attrs(),
                "weight_decay": self.weight_decay, "clip_grad": self.clip_grad,
                "global_batch": self.global_batch, "eval_fraction": self.eval_fraction,
                "data_tokens": int(self.tokens.shape[0]), "data_crc32": self.data_crc32,
                **(self.scaler.attrs() if self.scaler is not None else {})}

    @property
    def data_crc32(self) -> int:
        """CRC-32 of the corpus' token ids (int64): which data a checkpoint trained on."""
        if self._crc is None:
            self._crc = zlib.crc32(np.ascontiguousarray(self.tokens, dtype=np.int64).data)
        return self._crc

    def save(self, path: str | os.PathLike) -> None:
        """Write an HDF5 checkpoint (collective; rank 0 writes, atomically).

        Every parameter and both Adam moments are stored as full single-rank tensors, with
        the step, the schedule and the loss history, so the checkpoint loads at any layout
        and the run continues its curve. Raises ValueError when the folder is not writable.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"{V.arg('save')} must be a path, got {type(path).__name__}")
        checkpoint.check_writable(path, self.comm)
        checkpoint.save(path, self.model, self.optimizer, self.state_attrs(), self.history)

    def load(self, path: str | os.PathLike, option: str = "load") -> int:
        """Continue from a checkpoint saved at any layout (collective).

        Returns
        -------
        int
            The step it was saved at, now :attr:`iteration`.

        Raises
        ------
        ValueError
            The file cannot be opened, holds another model (sizes differ), or a field is
            corrupt (a wrong shape, a non-finite value, an impossible count); the message
            names the file and the field.

        Notes
        -----
        :attr:`loaded` afterwards lists the settings of the checkpoint's run that differ from
        this trainer's (data, schedule, batch...): the curve continues exactly only when
        there are none.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"{V.arg('load')} must be a path, got {type(path).__name__}")
        self.optimizer.finish_params()  # no gather may still write the parameters
        got = checkpoint.load(path, self.model, self.optimizer, option=option)
        self.iteration = got["step"]
        self.history = {k: list(v) for k, v in got["history"].items()}
        self.history_start = got["history_start"]
        if self.scaler is not None:  # the loss scale continues where it was
            self.scaler.set_attrs(got["attrs"])
        mine = self.state_attrs()
        self.loaded = {"path": str(path), "step": self.iteration,
                       "differs": sorted(k for k, v in mine.items()
                                         if k != "step" and k in got["attrs"]
                                         and got["attrs"][k] != v)}
        return self.iteration

    def parameters(self) -> dict[str, np.ndarray] | None:
        """Every parameter as its full single-rank tensor, on rank 0 (None elsewhere);
        collective."""
        self.optimizer.finish_params()
        full = checkpoint.gather_full(self.model)
        return None if full is None else {k: v[0] for k, v in full.items()}

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Free the process groups (collective; the trainer cannot step afterwards)."""
        self.optimizer.finish_params()
        self.state.free()

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def reference_losses(trainer: Trainer, steps: int, checkpoint_path: str | os.PathLike | None
                     = None) -> list[float]:
    """The loss curve of ``trainer``'s run without any parallelism: the same model, data,
    batch and optimizer on this process alone (``MPI.COMM_SELF``; GPipe with the same
    micro-batches, no sequence parallelism, recomputation, offload or ZeRO), ``steps`` steps
    from step 0 or from ``checkpoint_path``. Not collective: call it on one rank.

    Cost: the whole run's compute on one rank (the rank count times a rank's share).
    """
    sch = trainer.lr_schedule
    ref = Trainer(trainer.config, ParallelLayout(), data=trainer.tokens, dtype=trainer.dtype,
                  lr=sch.lr, lr_warmup_steps=sch.warmup, lr_decay_style=sch.style,
                  lr_decay_steps=sch.decay_steps, min_lr=sch.min_lr,
                  weight_decay=trainer.weight_decay, clip_grad=trainer.clip_grad,
                  global_batch=trainer.global_batch, micro_batches=trainer.micro_batches,
                  schedule="gpipe", seed=trainer.seed, backend="numpy",
                  eval_fraction=trainer.eval_fraction, bf16=trainer.bf16, fp16=trainer.fp16,
                  loss_scale=trainer.loss_scale_init,
                  loss_scale_window=trainer.loss_scale_window, comm=MPI.COMM_SELF)
    with ref:
        if checkpoint_path is not None:
            ref.load(checkpoint_path)
        return ref.fit(steps)
