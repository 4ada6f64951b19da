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

import math
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from hpc.core import App, UsageError, make_parser, nonneg_int, positive_float, positive_int, run
from hpc.core import backends as registry
from hpc.core.memory import require_memory
from hpc.core.runtime import agree

from . import checkpoint, data, schedules
from .model import GPT, GPTConfig, param_specs
from .optimizer import Adam
from .parallel_state import Layout, ParallelState, check_layout
from .trainer import Trainer

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
    g.add_argument("--schedule", choices=schedules.SCHEDULES, default=None,
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


def model_flops_per_step(cfg: GPTConfig, batch: int, recompute: bool = False) -> float:
    """Megatron's formula (Narayanan et al. 2021, eq. 3): 72 B s l h^2 (1 + s/6h + V/12lh)
    per step without recomputation (96 and V/16lh with full recomputation)."""
    B, s, l, h, V = batch, cfg.seq_len, cfg.layers, cfg.hidden, cfg.vocab_padded
    if recompute:
        return 96.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))
    return 72.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h))


def build(cfg, layout, comm, args, xp, dtype, tokens):
    ps = ParallelState(comm, layout)
    model = GPT(cfg, ps, xp, dtype, args.seed, sequence_parallel=args.sequence_parallel,
                recompute=args.recompute, offload=args.offload)
    opt = Adam(model, args.lr, weight_decay=args.weight_decay, clip=args.clip_grad,
               zero=args.zero1)
    trainer = Trainer(model, opt, tokens, args.seed, args.global_batch, args.micro_batches,
                      args.schedule)
    return ps, model, opt, trainer


def reference_losses(cfg, args, dtype, tokens, start: int, steps: int) -> list[float]:
    """Single-rank, no tp/pp/dp, no recompute/offload/ZeRO: the model without parallelism."""
    import numpy
    from mpi4py import MPI

    class A:  # the reference's own options
        pass

    ra = A()
    ra.__dict__.update(vars(args))
    ra.sequence_parallel = ra.recompute = ra.offload = ra.zero1 = False
    ra.schedule = "gpipe"
    ps, model, opt, tr = build(cfg, Layout(), MPI.COMM_SELF, ra, numpy, dtype, tokens)
    if args.load:
        checkpoint.load(args.load, model, opt)
    out = [tr.step(start + k).loss for k in range(steps)]
    ps.free()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    registry.require(args.backend, ["numpy", "cupy"])
    app = App("train", args)
    size = app.size
    tp, pp = args.tp, args.pp
    if args.dp is None:
        if size % (tp * pp):
            raise UsageError(f"{size} rank(s) are not divisible by --tp {tp} x --pp {pp}")
        args.dp = size // (tp * pp)
    if args.schedule is None:
        args.schedule = "interleaved" if args.vpp > 1 else "1f1b"
    if args.hidden % args.heads:
        raise UsageError(f"--hidden {args.hidden} is not divisible by --heads {args.heads}")
    cfg = GPTConfig(args.vocab, args.hidden, args.heads, args.layers, args.seq_len)
    layout = Layout(tp, pp, args.dp, args.vpp)
    check_layout(layout, size, args.layers, args.heads, args.micro_batches, args.global_batch,
                 args.schedule, args.seq_len, args.sequence_parallel, cfg.vocab_padded)
    if args.backend == "cupy":
        import cupy as xp

        from mpi4py import MPI

        local = app.comm.Split_type(MPI.COMM_TYPE_SHARED)  # one GPU per node-local rank
        xp.cuda.Device(local.Get_rank() % xp.cuda.runtime.getDeviceCount()).use()
        local.Free()
    else:
        xp = np
    dtype = np.dtype(args.dtype)

    n_params = sum(int(np.prod(s.shape)) for s in param_specs(cfg))
    per_rank = n_params / (tp * pp) * dtype.itemsize * 4  # params, grads, Adam m and v
    mbs = args.global_batch // (args.dp * args.micro_batches)
    act = (mbs * args.seq_len * (16 * args.hidden + 2 * cfg.vocab_padded // tp)
           + mbs * args.heads // tp * args.seq_len ** 2 * 2) * dtype.itemsize
    require_memory(int(per_rank + act * args.layers // pp * args.micro_batches),
                   "the model and its activations", app.comm)

    if args.save:
        parent = Path(args.save).resolve().parent
        while not parent.exists():
            parent = parent.parent
        ok = parent.is_dir() and os.access(parent, os.W_OK)
        agree(app.comm, None if app.rank != 0 or ok else
              f"--save {args.save}: {parent} is not a writable folder")
    if args.data:
        tokens = data.load_text(args.data, args.vocab)
    else:
        tokens = data.synthetic(args.seed, args.vocab)
    if tokens.shape[0] < args.seq_len + 2:
        raise UsageError(f"--data {args.data}: {tokens.shape[0]} tokens, fewer than --seq-len + 2")

    with app.timer.phase("setup"):
        ps, model, opt, trainer = build(cfg, layout, app.comm, args, xp, dtype, tokens)
    start = 0
    if args.load:
        with app.timer.phase("load"):
            start = checkpoint.load(args.load, model, opt)
    app.say(f"hpc.train: GPT {args.layers} layers x hidden {args.hidden} x {args.heads} heads, "
            f"seq {args.seq_len}, vocab {args.vocab} (padded {cfg.vocab_padded}), "
            f"{n_params / 1e6:.3f} M params, {args.dtype}, back end {args.backend}")
    app.say(f"layout tp {tp} x dp {args.dp} x pp {pp} (vpp {args.vpp}, {trainer.kind}), "
            f"global batch {args.global_batch} = dp {args.dp} x {args.micro_batches} "
            f"micro-batches x {mbs}; start at step {start}"
            + (", sequence parallel" if model.sp else "") + (", ZeRO-1" if opt.zero else "")
            + (", recompute" if args.recompute else "") + (", offload" if args.offload else ""))

    losses, norms, stats = [], [], []
    for k in range(args.steps):
        st = trainer.step(start + k)
        losses.append(st.loss)
        norms.append(st.grad_norm)
        stats.append(st)
        app.progress(f"step {start + k + 1:5d}  loss {st.loss:.6f}  grad-norm {st.grad_norm:.4f}"
                     f"  {st.step_s * 1e3:8.1f} ms")
    end_step = start + args.steps

    # throughput over the steps after warm-up (slowest rank's step time)
    from mpi4py import MPI

    timed = stats[args.warmup_steps:] or stats
    step_s = app.comm.allreduce(sum(s.step_s for s in timed), op=MPI.MAX) / len(timed)
    tokens_per_step = args.global_batch * args.seq_len
    flops = model_flops_per_step(cfg, args.global_batch)
    peak = args.peak_tflops or DEFAULT_PEAK_TFLOPS[(args.backend, args.dtype)]
    wall = sum(s.wall_s for s in timed)
    busy = sum(s.busy_s for s in timed)
    bubble = app.comm.allreduce((wall - busy) / busy if busy > 0 else 0.0, op=MPI.SUM) / size
    app.metrics.update({
        "losses": losses,
        "grad_norms": norms,
        "tokens_per_s": tokens_per_step / step_s,
        "step_time_s": step_s,
        "model_tflops_per_step": flops / 1e12,
        "mfu": flops / step_s / (peak * 1e12 * size),
        "peak_tflops_per_rank": peak,
        "bubble_fraction": bubble,
        "bubble_fraction_formula": schedules.bubble_formula(trainer.kind, pp, args.micro_batches,
                                                            args.vpp),
        "params": n_params,
        "first_step": start,
    })
    if args.recompute:
        app.metrics["hfu"] = model_flops_per_step(cfg, args.global_batch, True) / step_s / (
            peak * 1e12 * size)
    if args.offload:
        app.metrics["offload_h2d_bytes"] = app.comm.allreduce(model.store.bytes_h2d)
        app.metrics["offload_d2h_bytes"] = app.comm.allreduce(model.store.bytes_d2h)
    app.say(f"tokens/s {tokens_per_step / step_s:.1f}, MFU {app.metrics['mfu'] * 100:.2f}% "
            f"(peak {peak} TFLOP/s/rank), bubble {bubble:.3f} (formula "
            f"{app.metrics['bubble_fraction_formula']:.3f})")

    # validation
    finite = all(math.isfinite(x) for x in losses)
    validation: dict = {"losses_finite": finite}
    passed = finite
    if len(losses) >= 2:
        validation["loss_first"] = losses[0]
        validation["loss_last"] = losses[-1]
        validation["loss_decreased"] = losses[-1] < losses[0]
        passed = passed and losses[-1] < losses[0]
    work = n_params * tokens_per_step * args.steps
    want_ref = args.reference == "on" or (args.reference == "auto" and work <= REFERENCE_MAX_WORK
                                          and args.backend == "numpy")
    if want_ref:
        t0 = time.perf_counter()
        ref = None
        if app.rank == 0:
            ref = reference_losses(cfg, args, dtype, tokens, start, args.steps)
        ref = app.comm.bcast(ref, root=0)
        rel = max(abs(a - b) / abs(b) for a, b in zip(losses, ref))
        tol = 1e-9 if dtype == np.float64 else 1e-4
        validation.update({"reference_losses": ref, "reference_max_rel_diff": rel,
                           "reference_tolerance": tol})
        passed = passed and rel <= tol
        app.say(f"single-rank reference: max relative loss difference {rel:.3g} "
                f"(tolerance {tol:g}, {time.perf_counter() - t0:.1f} s)")
    if args.output:
        from hpc.core import h5io

        h5io.write(args.output, app.comm, {"/losses": np.array(losses),
                                           "/grad_norms": np.array(norms)},
                   attrs={"/": {"first_step": start, "tp": tp, "pp": pp, "dp": args.dp,
                                "vpp": args.vpp, "schedule": trainer.kind}})
    if args.save:  # after the reference, which may read the --load file this overwrites
        with app.timer.phase("save"):
            checkpoint.save(args.save, model, opt, end_step, args.seed)
    ps.free()
    return app.finish(passed, validation)


if __name__ == "__main__":
    run(main)
