"""hpc.train: Megatron-LM style tensor x pipeline x data parallel training of a GPT.

A GPT (token and position embeddings, pre-LayerNorm blocks with causal self-attention and a
GeLU MLP, final LayerNorm, output layer tied to the embedding) with hand-written forward and
backward passes on numpy (CPU) or cupy (GPU), trained with Adam and global gradient-norm
clipping on byte-level tokens. Communication is explicit over mpi4py:

  tensor parallel (--tp)    column-parallel QKV / fc1, row-parallel proj / fc2, f/g operators,
                            vocab-parallel embedding and cross-entropy, --sequence-parallel
  pipeline parallel (--pp)  --schedule gpipe | 1f1b | interleaved (--vpp chunks per rank)
  data parallel (--dp)      gradient all-reduce, or --zero1 (reduce-scatter, shard, all-gather)

Ranks are ordered as Megatron orders them: tp fastest, then dp, then pp
(rank = tp_rank + tp * (dp_rank + dp * pp_rank)). Every parameter's full tensor derives from
(seed, name) and each step's global batch from (seed, step), so the loss curve does not depend
on the layout (float64: equal to ~1e-12). Validation: the losses are finite and fall, and, for
models small enough, rank 0 retrains the single-rank reference model and compares curves.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import App, h5io, make_parser, nonneg_int, positive_float, positive_int, run

from . import checkpoint, schedules
from .model import GPTConfig, model_flops_per_step
from .parallel_state import ParallelLayout, default_schedule
from .schedules import SCHEDULES
from .trainer import StepStats, Trainer, reference_losses
from .validate import cli_names

# Default per-rank peak (TFLOP/s) for MFU when --peak-tflops is not given: one CPU core with
# AVX-512 FMA at ~3 GHz (fp32: 2 FMA units x 16 lanes x 2 flops), half that in fp64; on a GPU
# the H100/H200 SXM non-tensor-core peak (fp32 67, fp64 34 TFLOP/s).
DEFAULT_PEAK_TFLOPS = {("numpy", "float32"): 0.192, ("numpy", "float64"): 0.096,
                       ("cupy", "float32"): 67.0, ("cupy", "float64"): 34.0}
REFERENCE_MAX_WORK = 2e10   # auto reference: params x tokens x steps below this


def parser():
    p = make_parser("train", __doc__, backends=["numpy", "cupy"], default_backend="numpy",
                    epilog="--output writes /losses and /grad_norms (one per step, HDF5); "
                           "--repeat is not used (the --steps are the repetitions). "
                           "Metrics: losses, tokens_per_s, mfu (Megatron's model FLOPs "
                           "72 B s l h^2 (1 + s/6h + V/12lh) per step over the peak), "
                           "bubble_fraction (measured) and bubble_fraction_formula.")
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
    g.add_argument("--recompute", action="store_true",
                   help="activation recomputation: keep only each layer's input, recompute "
                        "its forward during the backward")
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
    m.add_argument("--steps", type=positive_int, default=10, help="optimizer steps to run")
    m.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate")
    m.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay")
    m.add_argument("--clip-grad", type=float, default=1.0,
                   help="clip the global gradient norm to this (0: no clipping)")
    m.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="parameter, activation and optimizer precision")
    m.add_argument("--data", metavar="PATH",
                   help="text file trained on as bytes [default: a seeded synthetic corpus]")
    m.add_argument("--save", metavar="PATH", help="write an HDF5 checkpoint after the last step")
    m.add_argument("--load", metavar="PATH", help="continue from an HDF5 checkpoint (any layout)")
    m.add_argument("--reference", choices=["auto", "on", "off"], default="auto",
                   help="retrain the single-rank model on rank 0 and compare loss curves "
                        f"(auto: when params x tokens x steps <= {REFERENCE_MAX_WORK:g})")
    m.add_argument("--peak-tflops", type=positive_float, default=None,
                   help="peak TFLOP/s per rank for MFU [default: numpy fp32 0.192, fp64 0.096 "
                        "(one AVX-512 core); cupy fp32 67, fp64 34 (H100/H200 SXM, no tensor "
                        "cores)]")
    m.add_argument("--warmup-steps", type=nonneg_int, default=1,
                   help="first steps left out of tokens/s, MFU and the bubble")
    return p


def set_up(app: App, args: argparse.Namespace) -> Trainer:
    """The Trainer of the command line's model, layout and data, at the --load checkpoint's
    step when given (collective). Fills the record's dp and schedule with their values."""
    cfg = GPTConfig(args.vocab, args.hidden, args.heads, args.layers, args.seq_len)
    layout = ParallelLayout(args.tp, args.pp, args.dp, args.vpp,
                            sequence_parallel=args.sequence_parallel, zero1=args.zero1)
    if args.save:  # fail before training, not after
        checkpoint.check_writable(args.save, app.comm)
    with app.timer.phase("setup"):
        trainer = Trainer(cfg, layout, data=args.data, dtype=args.dtype, lr=args.lr,
                          weight_decay=args.weight_decay, clip_grad=args.clip_grad,
                          global_batch=args.global_batch, micro_batches=args.micro_batches,
                          schedule=args.schedule, recompute=args.recompute,
                          offload=args.offload, seed=args.seed, backend=args.backend,
                          comm=app.comm)
    args.dp = trainer.layout.dp
    args.schedule = args.schedule or default_schedule(trainer.layout)
    if args.load:
        with app.timer.phase("load"):
            try:
                trainer.load(args.load)
            except BaseException:
                trainer.close()
                raise
    lay = trainer.layout
    app.say(f"hpc.train: GPT {cfg.layers} layers x hidden {cfg.hidden} x {cfg.heads} heads, "
            f"seq {cfg.seq_len}, vocab {cfg.vocab} (padded {cfg.vocab_padded}), "
            f"{cfg.n_params / 1e6:.3f} M params, {args.dtype}, back end {args.backend}")
    app.say(f"layout tp {lay.tp} x dp {lay.dp} x pp {lay.pp} (vpp {lay.vpp}, {trainer.schedule}), "
            f"global batch {trainer.global_batch} = dp {lay.dp} x {trainer.micro_batches} "
            f"micro-batches x {trainer.micro_batch_size}; start at step {trainer.iteration}"
            + (", sequence parallel" if trainer.model.sp else "")
            + (", ZeRO-1" if trainer.optimizer.zero else "")
            + (", recompute" if args.recompute else "") + (", offload" if args.offload else ""))
    return trainer


def train(app: App, trainer: Trainer, steps: int) -> list[StepStats]:
    """Run the steps, one progress line each; every step's stats."""
    stats: list[StepStats] = []

    def report(st: StepStats) -> None:
        stats.append(st)
        app.progress(f"step {st.step + 1:5d}  loss {st.loss:.6f}  grad-norm {st.grad_norm:.4f}"
                     f"  {st.step_s * 1e3:8.1f} ms")

    trainer.fit(steps, callback=report)
    return stats


def performance(app: App, trainer: Trainer, args: argparse.Namespace,
                stats: list[StepStats], start: int) -> None:
    """The record's metrics: losses, tokens/s and MFU over the steps after warm-up (the
    slowest rank's step time), the measured and the formula's pipeline bubble."""
    size = app.size
    losses = [s.loss for s in stats]
    timed = stats[args.warmup_steps:] or stats
    step_s = app.comm.allreduce(sum(s.step_s for s in timed), op=MPI.MAX) / len(timed)
    tokens_per_step = trainer.tokens_per_step
    flops = model_flops_per_step(trainer.config, trainer.global_batch)
    peak = args.peak_tflops or DEFAULT_PEAK_TFLOPS[(args.backend, args.dtype)]
    wall = sum(s.wall_s for s in timed)
    busy = sum(s.busy_s for s in timed)
    bubble = app.comm.allreduce((wall - busy) / busy if busy > 0 else 0.0, op=MPI.SUM) / size
    lay = trainer.layout
    app.metrics.update({
        "losses": losses,
        "grad_norms": [s.grad_norm for s in stats],
        "tokens_per_s": tokens_per_step / step_s,
        "step_time_s": step_s,
        "model_tflops_per_step": flops / 1e12,
        "mfu": flops / step_s / (peak * 1e12 * size),
        "peak_tflops_per_rank": peak,
        "bubble_fraction": bubble,
        "bubble_fraction_formula": schedules.bubble_formula(trainer.schedule, lay.pp,
                                                            trainer.micro_batches, lay.vpp),
        "params": trainer.config.n_params,
        "first_step": start,
    })
    if args.recompute:
        app.metrics["hfu"] = model_flops_per_step(trainer.config, trainer.global_batch,
                                                  True) / step_s / (peak * 1e12 * size)
    if args.offload:
        app.metrics["offload_h2d_bytes"] = app.comm.allreduce(trainer.model.store.bytes_h2d)
        app.metrics["offload_d2h_bytes"] = app.comm.allreduce(trainer.model.store.bytes_d2h)
    app.say(f"tokens/s {tokens_per_step / step_s:.1f}, MFU {app.metrics['mfu'] * 100:.2f}% "
            f"(peak {peak} TFLOP/s/rank), bubble {bubble:.3f} (formula "
            f"{app.metrics['bubble_fraction_formula']:.3f})")


def validate(app: App, trainer: Trainer, args: argparse.Namespace,
             losses: list[float]) -> tuple[bool, dict]:
    """The losses are finite and fall; for small enough runs (or --reference on) rank 0
    retrains the single-rank reference and the curves must agree (float64 1e-9, float32 1e-4
    relative)."""
    finite = all(math.isfinite(x) for x in losses)
    validation: dict = {"losses_finite": finite}
    passed = finite
    if len(losses) >= 2:
        validation["loss_first"] = losses[0]
        validation["loss_last"] = losses[-1]
        validation["loss_decreased"] = losses[-1] < losses[0]
        passed = passed and losses[-1] < losses[0]
    work = trainer.config.n_params * trainer.tokens_per_step * len(losses)
    want_ref = args.reference == "on" or (args.reference == "auto" and work <= REFERENCE_MAX_WORK
                                          and args.backend == "numpy")
    if want_ref:
        t0 = time.perf_counter()
        ref = reference_losses(trainer, len(losses), args.load) if app.rank == 0 else None
        ref = app.comm.bcast(ref, root=0)
        rel = max(abs(a - b) / abs(b) for a, b in zip(losses, ref))
        tol = 1e-9 if trainer.dtype == np.float64 else 1e-4
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
            stats = train(app, trainer, args.steps)
            performance(app, trainer, args, stats, start)
            passed, validation = validate(app, trainer, args, [s.loss for s in stats])
            write_outputs(app, trainer, args, start)
    return app.finish(passed, validation)


if __name__ == "__main__":
    run(main)
