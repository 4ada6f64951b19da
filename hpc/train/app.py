"""hpc.train: Megatron-LM style tensor x pipeline x data parallel training of a GPT.

A GPT (token and position embeddings, pre-LayerNorm blocks with causal self-attention and a
GeLU MLP, final LayerNorm, output layer tied to the embedding) with hand-written forward and
backward passes on numpy (CPU) or cupy (GPU), trained with Adam and global gradient-norm
clipping on byte-level tokens. Communication is explicit over mpi4py:

  tensor parallel (--tp)    column-parallel QKV / fc1, row-parallel proj / fc2, f/g operators,
                            vocab-parallel embedding and cross-entropy, --sequence-parallel
  pipeline parallel (--pp)  --schedule gpipe | 1f1b | interleaved (--vpp chunks per rank)
  data parallel (--dp)      gradient all-reduce, or --zero 1|2|3 (optimizer state, gradients,
                            parameters sharded over dp)

Runs that survive time limits: --save-every N writes a checkpoint of the whole state (step,
parameters, Adam moments, schedule, loss history) into --save-dir every N steps, atomically
and from a background thread, keeping the newest --keep; SIGTERM or SIGUSR1 (what SLURM sends
before a time limit with --signal) makes every rank finish its step, write a checkpoint and
exit 0; --resume auto continues from the newest checkpoint in --save-dir, and --steps is then
the run's total (the same command line finishes the run however often it is requeued).
Learning rate: --lr-warmup-steps, then --lr-decay-style constant | linear | cosine down to
--min-lr at --lr-decay-steps; AdamW --weight-decay; --clip-grad on the global norm over every
rank. --eval-every N: the loss on a held-out tail of the corpus (--eval-fraction).

Ranks are ordered as Megatron orders them: tp fastest, then dp, then pp
(rank = tp_rank + tp * (dp_rank + dp * pp_rank)). Every parameter's full tensor derives from
(seed, name) and each step's global batch from (seed, step), so the loss curve does not depend
on the layout (float64: equal to ~1e-12). Validation: the losses are finite and fall, and, for
models small enough, rank 0 retrains the single-rank reference model and compares curves.
"""
from __future__ import annotations

import argparse
import math
import signal
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import App, checks, h5io, make_parser, positive_int, run
from hpc.core.cli import mark_outputs
from hpc.core.runtime import agree

from . import checkpoint, schedules
from .lr_schedule import DECAY_STYLES, LR_MAX, STEPS_MAX
from .model import GPTConfig, model_flops_per_step
from .parallel_state import ParallelLayout, default_schedule
from .schedules import SCHEDULES
from .trainer import CLIP_MAX, EVAL_FRACTION_MAX, WD_MAX, StepStats, Trainer, reference_losses
from .validate import cli_names

# Default per-rank peak (TFLOP/s) for MFU when --peak-tflops is not given: one CPU core with
# AVX-512 FMA at ~3 GHz (fp32: 2 FMA units x 16 lanes x 2 flops), half that in fp64; on a GPU
# the H100/H200 SXM non-tensor-core peak (fp32 67, fp64 34 TFLOP/s).
DEFAULT_PEAK_TFLOPS = {("numpy", "float32"): 0.192, ("numpy", "float64"): 0.096,
                       ("cupy", "float32"): 67.0, ("cupy", "float64"): 34.0}
REFERENCE_MAX_WORK = 2e10   # auto reference: params x tokens x steps below this
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
STEPS = checks.integer(1, STEPS_MAX)
EVERY = checks.integer(0, STEPS_MAX)


def parser():
    p = make_parser("train", __doc__, backends=["numpy", "cupy"], default_backend="numpy",
                    epilog="--output writes /losses and /grad_norms (one per step, HDF5); "
                           "--repeat is not used (the --steps are the repetitions). "
                           "Metrics: losses, lrs, eval_steps / eval_losses, tokens_per_s, mfu "
                           "(Megatron's model FLOPs 72 B s l h^2 (1 + s/6h + V/12lh) per step "
                           "over the peak), bubble_fraction (measured) and "
                           "bubble_fraction_formula, checkpoint_stall_s / checkpoint_write_s.")
    g = p.add_argument_group("parallel layout")
    g.add_argument("--tp", type=positive_int, default=1, help="tensor-parallel degree")
    g.add_argument("--pp", type=positive_int, default=1, help="pipeline-parallel degree")
    g.add_argument("--dp", type=positive_int, default=None,
                   help="data-parallel degree [default: ranks / (tp x pp)]")
    g.add_argument("--vpp", type=positive_int, default=1,
                   help="model chunks per pipeline rank (interleaved schedule)")
    g.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="pipeline schedule [default: interleaved when --vpp > 1, else 1f1b]")
    g.add_argument("--sequence-parallel", action="store_true",
                   help="split layer norms and residuals along the sequence over tp ranks")
    g.add_argument("--zero1", action="store_true",
                   help="ZeRO-1 distributed optimizer over the data-parallel group")
    g.add_argument("--zero", type=int, choices=(0, 1, 2, 3), default=0, metavar="STAGE",
                   help="ZeRO stage: 1 shards the optimizer state (as --zero1), 2 the "
                        "gradients too (reduce-scattered per layer bucket), 3 the parameters "
                        "too (gathered per layer for its forward and backward) [default: 0]")
    g.add_argument("--overlap-grad-reduce", action="store_true",
                   help="reduce data-parallel gradients per layer by non-blocking all-reduces "
                        "while the backward goes on (not with --zero1)")
    g.add_argument("--overlap-param-gather", action="store_true",
                   help="with --zero 1 or 2: gather the updated parameters per layer by "
                        "non-blocking all-gathers, each waited for at the layer's forward; "
                        "with --zero 3: start the next layer's gather as a layer begins "
                        "(forward and backward)")
    g.add_argument("--recompute", action="store_true",
                   help="activation recomputation: keep only each layer's input, recompute "
                        "its forward during the backward")
    g.add_argument("--recompute-activations", action="store_true",
                   help="selective recomputation: keep no attention probabilities, recompute "
                        "them in the backward")
    g.add_argument("--attention-block", type=checks.integer(1, 1 << 30), default=None,
                   help="attention in blocks of this many tokens with an online softmax "
                        "(memory linear in --seq-len)")
    g.add_argument("--offload", action="store_true",
                   help="keep transformer layers in host memory and copy each to the device "
                        "only while it computes (Superpipeline-style; meant for GPUs)")
    m = p.add_argument_group("model and training")
    m.add_argument("--layers", type=positive_int, default=4, help="transformer layers")
    m.add_argument("--hidden", type=positive_int, default=64, help="hidden size")
    m.add_argument("--heads", type=positive_int, default=4, help="attention heads")
    m.add_argument("--seq-len", type=positive_int, default=64, help="tokens per sequence")
    m.add_argument("--vocab", type=positive_int, default=256,
                   help="vocabulary size (byte-level: 256; padded once to a multiple of 64)")
    m.add_argument("--global-batch", type=positive_int, default=8,
                   help="sequences per step over all data-parallel ranks")
    m.add_argument("--micro-batches", type=positive_int, default=4,
                   help="micro-batches per step per data-parallel rank")
    m.add_argument("--steps", type=STEPS, default=10,
                   help="optimizer steps to run (with --resume: the run's total, counted "
                        "from step 0)")
    m.add_argument("--lr", type=checks.real(0, LR_MAX, lo_open=True), default=3e-3,
                   help=f"peak Adam learning rate, in (0, {LR_MAX:g}]")
    m.add_argument("--lr-warmup-steps", type=EVERY, default=0,
                   help="linear learning-rate warm-up over the first steps")
    m.add_argument("--lr-decay-style", choices=DECAY_STYLES, default="constant",
                   help="learning-rate decay after the warm-up")
    m.add_argument("--lr-decay-steps", type=STEPS, default=None,
                   help="step at which the decay reaches --min-lr [default: --steps, "
                        "at least --lr-warmup-steps + 1]")
    m.add_argument("--min-lr", type=checks.real(0, LR_MAX), default=0.0,
                   help="floor of the learning-rate decay, in [0, --lr]")
    m.add_argument("--weight-decay", type=checks.real(0, WD_MAX), default=0.0,
                   help=f"AdamW decoupled weight decay, in [0, {WD_MAX:g}]")
    m.add_argument("--clip-grad", type=checks.real(0, CLIP_MAX), default=1.0,
                   help=f"clip the global gradient norm (over tp, pp and dp) to this, in "
                        f"[0, {CLIP_MAX:g}] (0: no clipping)")
    m.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="parameter, activation and optimizer precision")
    m.add_argument("--bf16", action="store_true",
                   help="mixed precision: bfloat16 GEMM operands, float32 accumulation, "
                        "master weights and optimizer (with --dtype float32)")
    m.add_argument("--fp16", action="store_true",
                   help="mixed precision: float16 GEMM operands (CPU: rounded; cupy: on the "
                        "GPU), float32 master weights, dynamic loss scaling: a step with an "
                        "inf/NaN gradient is skipped and halves the scale")
    m.add_argument("--loss-scale", type=checks.real(1.0, 2.0 ** 64), default=2.0 ** 16,
                   metavar="S", help="the first loss scale of --fp16 (default: 65536)")
    m.add_argument("--loss-scale-window", type=checks.integer(1, STEPS_MAX), default=1000,
                   metavar="N", help="--fp16: double the scale after N good steps in a row "
                                     "(default: 1000)")
    m.add_argument("--data", metavar="PATH",
                   help="text file trained on as bytes [default: a seeded synthetic corpus]")
    m.add_argument("--save", metavar="PATH", help="write an HDF5 checkpoint after the last step")
    m.add_argument("--plot", metavar="PATH",
                   help="draw the loss curve (PNG, SVG or PDF; needs matplotlib)")
    m.add_argument("--load", metavar="PATH",
                   help="continue from an HDF5 checkpoint (any layout) for --steps more steps")
    c = p.add_argument_group("checkpoints and evaluation")
    c.add_argument("--save-dir", metavar="DIR",
                   help="folder of the periodic checkpoints (step_NNNNNNNN.h5)")
    c.add_argument("--save-every", type=EVERY, default=0, metavar="N",
                   help="checkpoint into --save-dir every N steps, and after the last (0: "
                        "only after the last step and on SIGTERM / SIGUSR1)")
    c.add_argument("--keep", type=checks.integer(1, 10 ** 6), default=3, metavar="K",
                   help="periodic checkpoints kept (the newest)")
    c.add_argument("--resume", metavar="auto|PATH",
                   help="continue from a checkpoint (auto: the newest in --save-dir; none "
                        "there: start at step 0); --steps is then the total")
    c.add_argument("--no-background-save", dest="background_save", action="store_false",
                   help="write periodic checkpoints on the training thread [default: a "
                        "background thread writes them while training goes on]")
    c.add_argument("--eval-every", type=EVERY, default=0, metavar="N",
                   help="evaluate on the held-out split every N steps and after the last")
    c.add_argument("--eval-fraction", type=checks.real(0, EVAL_FRACTION_MAX, lo_open=True),
                   default=None, metavar="F",
                   help=f"tail of the corpus held out for evaluation, in (0, "
                        f"{EVAL_FRACTION_MAX:g}] [default: 0.1 with --eval-every, else none]")
    c.add_argument("--eval-batches", type=checks.integer(1, 10 ** 6), default=4, metavar="N",
                   help="global batches per evaluation")
    m.add_argument("--reference", choices=["auto", "on", "off"], default="auto",
                   help="retrain the single-rank model on rank 0 and compare loss curves "
                        f"(auto: when params x tokens x steps <= {REFERENCE_MAX_WORK:g})")
    m.add_argument("--peak-tflops", type=checks.real(0, 1e6, lo_open=True), default=None,
                   help="peak TFLOP/s per rank for MFU [default: numpy fp32 0.192, fp64 0.096 "
                        "(one AVX-512 core); cupy fp32 67, fp64 34 (H100/H200 SXM, no tensor "
                        "cores)]")
    m.add_argument("--warmup-steps", type=checks.integer(0, STEPS_MAX), default=1,
                   help="first steps left out of tokens/s, MFU and the bubble")
    mark_outputs(p, "--save", "--plot")  # checked before any work (hpc.core.atomic.check_output)
    mark_outputs(p, "--save-dir", directory=True)
    return p


def resume_path(args: argparse.Namespace) -> str | None:
    """The checkpoint --resume names (auto: the newest complete one in --save-dir, None when
    the folder has none yet); rank 0 looks, the others are told."""
    if args.resume is None:
        return None
    if args.resume != "auto":
        return args.resume
    found = checkpoint.newest(args.save_dir)
    return None if found is None else str(found)


def check_options(app: App, args: argparse.Namespace) -> None:
    """Option combinations, before any work (exit 2 on every rank)."""
    err = None
    if args.resume is not None and args.load is not None:
        err = "--resume and --load are exclusive (--load: --steps more steps; --resume: " \
              "up to step --steps)"
    elif args.resume == "auto" and not args.save_dir:
        err = "--resume auto needs --save-dir (the folder it resumes from)"
    elif args.save_every and not args.save_dir:
        err = "--save-every needs --save-dir"
    elif args.eval_fraction is not None and not args.eval_every:
        err = "--eval-fraction needs --eval-every"
    elif args.min_lr > args.lr:
        err = f"--min-lr {args.min_lr:g} is above --lr {args.lr:g}"
    agree(app.comm, err)  # (--save, --save-dir: checked by the parser, hpc.core.cli outputs)


def set_up(app: App, args: argparse.Namespace) -> Trainer:
    """The Trainer of the command line's model, layout and data, at the --load (or --resume)
    checkpoint's step when given (collective). Fills the record's dp and schedule with their
    values."""
    check_options(app, args)
    cfg = GPTConfig(args.vocab, args.hidden, args.heads, args.layers, args.seq_len)
    layout = ParallelLayout(args.tp, args.pp, args.dp, args.vpp,
                            sequence_parallel=args.sequence_parallel, zero1=args.zero1,
                            zero=args.zero)
    decay_steps = args.lr_decay_steps
    if decay_steps is None and args.lr_decay_style != "constant":
        decay_steps = max(args.steps, args.lr_warmup_steps + 1)
    eval_fraction = (args.eval_fraction or 0.1) if args.eval_every else 0.0
    with app.timer.phase("setup"):
        trainer = Trainer(cfg, layout, data=args.data, dtype=args.dtype, lr=args.lr,
                          lr_warmup_steps=args.lr_warmup_steps,
                          lr_decay_style=args.lr_decay_style, lr_decay_steps=decay_steps,
                          min_lr=args.min_lr, weight_decay=args.weight_decay,
                          clip_grad=args.clip_grad, global_batch=args.global_batch,
                          micro_batches=args.micro_batches, schedule=args.schedule,
                          recompute=args.recompute, offload=args.offload, seed=args.seed,
                          backend=args.backend, eval_fraction=eval_fraction,
                          overlap_grad_reduce=args.overlap_grad_reduce,
                          recompute_attention=args.recompute_activations,
                          attention_block=args.attention_block, bf16=args.bf16,
                          overlap_param_gather=args.overlap_param_gather, fp16=args.fp16,
                          loss_scale=args.loss_scale,
                          loss_scale_window=args.loss_scale_window, comm=app.comm)
    args.dp = trainer.layout.dp
    args.schedule = args.schedule or default_schedule(trainer.layout)
    src = args.load
    if args.resume is not None:
        src = app.comm.bcast(resume_path(args) if app.rank == 0 else None, root=0)
        if src is None:
            app.say(f"--resume auto: no checkpoint in {args.save_dir} yet, starting at step 0")
    args.resumed_from = src
    if src:
        with app.timer.phase("load"):
            try:
                trainer.load(src, option="resume" if args.resume is not None else "load")
            except BaseException:
                trainer.close()
                raise
        differs = trainer.loaded["differs"] if trainer.loaded else []
        app.say(f"continuing from {src} at step {trainer.iteration}"
                + (f" (the checkpoint's run had other {', '.join(differs)})" if differs else ""))
    lay = trainer.layout
    app.say(f"hpc.train: GPT {cfg.layers} layers x hidden {cfg.hidden} x {cfg.heads} heads, "
            f"seq {cfg.seq_len}, vocab {cfg.vocab} (padded {cfg.vocab_padded}), "
            f"{cfg.n_params / 1e6:.3f} M params, {args.dtype}"
            + (" (bfloat16 GEMMs)" if args.bf16 else "")
            + (" (float16 GEMMs, dynamic loss scale)" if args.fp16 else "")
            + f", back end {args.backend}")
    app.say(f"layout tp {lay.tp} x dp {lay.dp} x pp {lay.pp} (vpp {lay.vpp}, {trainer.schedule}), "
            f"global batch {trainer.global_batch} = dp {lay.dp} x {trainer.micro_batches} "
            f"micro-batches x {trainer.micro_batch_size}; start at step {trainer.iteration}"
            + (", sequence parallel" if trainer.model.sp else "")
            + (f", ZeRO-{trainer.optimizer.stage}" if trainer.optimizer.zero else "")
            + (", overlapped dp reduction" if trainer.optimizer.overlap else "")
            + (", overlapped parameter gather" if trainer.optimizer.overlap_params else "")
            + (", next layer's parameters prefetched" if trainer.optimizer.prefetch else "")
            + (", recompute" if args.recompute else "") + (", offload" if args.offload else "")
            + (", selective recompute" if args.recompute_activations else "")
            + (f", attention blocks of {args.attention_block}" if args.attention_block else ""))
    return trainer


@contextmanager
def stop_signals() -> Iterator[dict]:
    """SIGTERM and SIGUSR1 set ``flag["signal"]`` instead of killing the process (the loop
    checks it after each step); the previous handlers come back on exit."""
    flag: dict = {"signal": 0}

    def handler(signum, frame):  # noqa: ARG001 - the signal module's signature
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train(app: App, trainer: Trainer, args: argparse.Namespace, steps: int
          ) -> tuple[list[StepStats], dict]:
    """Run the steps, one progress line each, evaluating, checkpointing and watching for
    SIGTERM / SIGUSR1 as asked; every step's stats and what happened (checkpoints, signal)."""
    from mpi4py import MPI

    stats: list[StepStats] = []
    info: dict = {"signal": None, "checkpoints": [], "stall_s": 0.0, "write_s": 0.0}
    ck = (checkpoint.Checkpointer(args.save_dir, args.keep, app.comm,
                                  background=args.background_save)
          if args.save_dir else None)
    last = trainer.iteration + steps
    t0 = time.perf_counter()
    with stop_signals() as flag:
        for _ in range(steps):
            st = trainer.step()
            stats.append(st)
            step = trainer.iteration  # steps done
            line = (f"step {step:5d}  loss {st.loss:.6f}  grad-norm {st.grad_norm:.4f}  "
                    f"lr {st.lr:.3e}  {st.step_s * 1e3:8.1f} ms")
            if args.eval_every and (step % args.eval_every == 0 or step == last):
                line += f"  eval-loss {trainer.evaluate(args.eval_batches):.6f}"
            app.progress(line)
            # one small collective a step: every rank stops at the same step
            sig = app.comm.allreduce(int(flag["signal"]), op=MPI.MAX)
            if sig:
                info["signal"] = signal.Signals(sig).name
                break
            if ck is not None and args.save_every and step % args.save_every == 0 \
                    and step != last:
                ck.save(trainer.model, trainer.optimizer, trainer.state_attrs(),
                        trainer.history)
    if ck is not None:
        path = None
        if stats:
            path = ck.save(trainer.model, trainer.optimizer, trainer.state_attrs(),
                           trainer.history, wait=True)
        ck.close()
        info.update(checkpoints=ck.saved, stall_s=ck.stall_s, write_s=ck.write_s,
                    checkpoint=str(path) if path else None)
    info["wall_s"] = time.perf_counter() - t0
    return stats, info


def performance(app: App, trainer: Trainer, args: argparse.Namespace,
                stats: list[StepStats], start: int, info: dict) -> None:
    """The record's metrics: losses, learning rates and evaluations, tokens/s and MFU over
    the steps after warm-up (the slowest rank's step time), the measured and the formula's
    pipeline bubble, and what checkpointing cost the training (stall) and took (write)."""
    size = app.size
    hist = trainer.history
    lay = trainer.layout
    app.metrics.update({
        "losses": [s.loss for s in stats],
        "grad_norms": [s.grad_norm for s in stats],
        "lrs": [s.lr for s in stats],
        "eval_steps": list(hist["eval_steps"]),
        "eval_losses": list(hist["eval_losses"]),
        "params": trainer.config.n_params,
        "first_step": start,
        "last_step": trainer.iteration,
        "stopped_by_signal": info["signal"],
        "checkpoints": info["checkpoints"],
        "checkpoint_stall_s": info["stall_s"],
        "checkpoint_write_s": info["write_s"],
        # the whole loop, evaluations and checkpoints included (slowest rank)
        "train_wall_s": app.comm.allreduce(info["wall_s"], op=MPI.MAX),
    })
    if not stats:
        return
    mem = trainer.memory()  # the largest rank's of each
    app.metrics["memory_bytes_per_rank"] = {k: app.comm.allreduce(v, op=MPI.MAX)
                                            for k, v in mem.items()}
    app.metrics["zero_stage"] = trainer.optimizer.stage  # 0 at dp 1: nothing to shard
    if trainer.optimizer.prefetch:  # ZeRO-3: layers whose gather a prefetch had done
        app.metrics["param_prefetch_hits"] = app.comm.allreduce(
            trainer.model.store.prefetch_hits, op=MPI.MIN)
    if trainer.scaler is not None:  # float16: the loss scale now, the steps skipped
        app.metrics["loss_scale"] = trainer.scaler.scale
        app.metrics["loss_scale_skipped_steps"] = trainer.scaler.skipped
    timed = stats[args.warmup_steps:] or stats
    step_s = app.comm.allreduce(sum(s.step_s for s in timed), op=MPI.MAX) / len(timed)
    tokens_per_step = trainer.tokens_per_step
    flops = model_flops_per_step(trainer.config, trainer.global_batch)
    peak = args.peak_tflops or DEFAULT_PEAK_TFLOPS[(args.backend, args.dtype)]
    wall = sum(s.wall_s for s in timed)
    busy = sum(s.busy_s for s in timed)
    bubble = app.comm.allreduce((wall - busy) / busy if busy > 0 else 0.0, op=MPI.SUM) / size
    app.metrics.update({
        "tokens_per_s": tokens_per_step / step_s,
        "step_time_s": step_s,
        "model_tflops_per_step": flops / 1e12,
        "mfu": flops / step_s / (peak * 1e12 * size),
        "peak_tflops_per_rank": peak,
        "bubble_fraction": bubble,
        "bubble_fraction_formula": schedules.bubble_formula(trainer.schedule, lay.pp,
                                                            trainer.micro_batches, lay.vpp),
    })
    if args.recompute:
        app.metrics["hfu"] = model_flops_per_step(trainer.config, trainer.global_batch,
                                                  True) / step_s / (peak * 1e12 * size)
    if args.offload:
        app.metrics["offload_h2d_bytes"] = app.comm.allreduce(trainer.model.store.bytes_h2d)
        app.metrics["offload_d2h_bytes"] = app.comm.allreduce(trainer.model.store.bytes_d2h)
    app.say(f"tokens/s {tokens_per_step / step_s:.1f}, MFU {app.metrics['mfu'] * 100:.2f}% "
            f"(peak {peak} TFLOP/s/rank), bubble {bubble:.3f} (formula "
            f"{app.metrics['bubble_fraction_formula']:.3f})"
            + (f", checkpoints stalled training {info['stall_s']:.3f} s (written in "
               f"{info['write_s']:.3f} s)" if info["checkpoints"] else ""))


# A resumed run's first loss continues the saved curve when it is within this of the saved
# last loss (relative, plus an absolute slack for batch-to-batch noise); a run that lost its
# state jumps back towards ln(vocab).
CONTINUE_REL, CONTINUE_ABS = 0.25, 0.1
# A run from step 0 must lower the loss when it has at least this many steps.
MIN_FALL_STEPS = 10


def validate(app: App, trainer: Trainer, args: argparse.Namespace,
             losses: list[float], start: int, info: dict) -> tuple[bool, dict]:
    """A run from step 0: the losses are finite and, over MIN_FALL_STEPS steps or more,
    fall. A resumed run is validated against
    its checkpoint instead (a short window need not fall): finite losses, the saved curve is
    finite and the first resumed loss continues it. Both: for small enough runs (or
    --reference on) rank 0 retrains the single-rank reference from the same start and the
    curves must agree (float64 1e-9, float32 1e-4, bfloat16 GEMMs 1e-2 relative)."""
    finite = all(math.isfinite(x) for x in losses)
    validation: dict = {"losses_finite": finite}
    passed = finite
    saved = trainer.history["losses"][:start - trainer.history_start] if start else []
    if start:
        validation["resumed_from"] = args.resumed_from
        validation["resumed_at_step"] = start
        if trainer.loaded and trainer.loaded["differs"]:
            validation["checkpoint_settings_differ"] = trainer.loaded["differs"]
        if saved:  # a format-2 checkpoint: its curve since step 0
            ok_saved = all(math.isfinite(x) for x in saved)
            validation["checkpoint_losses_finite"] = ok_saved
            passed = passed and ok_saved
            if losses:
                gap = abs(losses[0] - saved[-1])
                cont = gap <= CONTINUE_REL * abs(saved[-1]) + CONTINUE_ABS
                validation.update({"checkpoint_last_loss": saved[-1],
                                   "first_resumed_loss": losses[0],
                                   "continues_checkpoint_curve": cont})
                passed = passed and cont
    elif len(losses) >= 2:
        validation["loss_first"] = losses[0]
        validation["loss_last"] = losses[-1]
        validation["loss_decreased"] = losses[-1] < losses[0]
        # a few steps (a warm-up, a run a signal stopped early) need not show the fall: it
        # is required from MIN_FALL_STEPS steps on; shorter runs rest on the reference
        if len(losses) >= MIN_FALL_STEPS and not info["signal"]:
            passed = passed and losses[-1] < losses[0]
    if info["signal"]:
        written = bool(info.get("checkpoint") or args.save)
        validation["checkpoint_written_on_signal"] = written
    work = trainer.config.n_params * trainer.tokens_per_step * len(losses)
    want_ref = args.reference == "on" or (args.reference == "auto" and work <= REFERENCE_MAX_WORK
                                          and args.backend == "numpy" and not info["signal"])
    if want_ref and losses:
        t0 = time.perf_counter()
        ref = (reference_losses(trainer, len(losses), args.resumed_from) if app.rank == 0
               else None)
        ref = app.comm.bcast(ref, root=0)
        rel = max(abs(a - b) / abs(b) for a, b in zip(losses, ref))
        # bfloat16 operands: one rounding flip (2^-8) moves a layout's curve off the
        # reference by more than float32's rounding does
        tol = (1e-9 if trainer.dtype == np.float64 else
               1e-2 if trainer.bf16 or trainer.fp16 else 1e-4)
        validation.update({"reference_losses": ref, "reference_max_rel_diff": rel,
                           "reference_tolerance": tol})
        passed = passed and rel <= tol
        app.say(f"single-rank reference: max relative loss difference {rel:.3g} "
                f"(tolerance {tol:g}, {time.perf_counter() - t0:.1f} s)")
    return passed, validation


def write_outputs(app: App, trainer: Trainer, args: argparse.Namespace, start: int) -> None:
    """--output (losses and gradient norms per step) and --save (the checkpoint)."""
    if args.output:
        lay = trainer.layout
        h5io.write(args.output, app.comm, {"/losses": np.array(app.metrics["losses"]),
                                           "/grad_norms": np.array(app.metrics["grad_norms"])},
                   attrs={"/": {"first_step": start, "tp": lay.tp, "pp": lay.pp, "dp": lay.dp,
                                "vpp": lay.vpp, "schedule": trainer.schedule}})
    if args.save:  # after the reference, which may read the --load file this overwrites
        with app.timer.phase("save"):
            trainer.save(args.save)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    app = App("train", args)
    with cli_names():  # API errors name the options (--heads, not heads)
        trainer = set_up(app, args)
        with trainer:
            start = trainer.iteration
            # --resume: --steps is the run's total; --load: more steps from the checkpoint
            steps = max(0, args.steps - start) if args.resume is not None else args.steps
            stats, info = train(app, trainer, args, steps)
            performance(app, trainer, args, stats, start, info)
            passed, validation = validate(app, trainer, args, [s.loss for s in stats], start,
                                          info)
            write_outputs(app, trainer, args, start)
            if info["signal"]:
                where = info.get("checkpoint") or args.save
                app.say(f"{info['signal']}: stopped after step {trainer.iteration}, "
                        + (f"checkpoint written to {where}" if where else
                           "no checkpoint (neither --save-dir nor --save)"))
    status = app.finish(passed, validation)
    if args.plot and app.rank == 0:
        from hpc.report import plot_history

        plot_history(app.last_record, args.plot)
    return status


if __name__ == "__main__":
    run(main)
