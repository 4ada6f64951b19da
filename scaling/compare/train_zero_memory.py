"""Per-rank memory of hpc.train's parameters, gradients and Adam state against dp, for ZeRO
stages 0-3 (the record's memory_bytes_per_rank: the largest rank's bytes, the sharded ones
measured as the most buffers alive at once). Not a timing: each run is one short step, and
the table gives, per (dp, stage), the bytes and their ratio to the whole unsharded state
(parameters + gradients + two moments), beside the issue's ZeRO-3 bound: 1/dp of the whole
plus one layer, that layer counted as the whole is (its parameters, gradients and two
moments: 4 x its parameter bytes; the embedding/head groups, gathered whole, are added
apart). Stage "3p" is ZeRO-3 with --overlap-param-gather: the next layer's parameters are
gathered while a layer computes, so two layers' parameters and one layer's gradients are
alive at once (3 layers' bytes of the 4 the bound allows).

    .venv/bin/python scaling/compare/train_zero_memory.py [--dp 1 2 3] \
        [--model "--layers 8 --hidden 128 --heads 4 --seq-len 64"]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]


def memory(dp: int, stage: str, model: list[str]) -> dict[str, int]:
    extra = ["--overlap-param-gather"] if stage == "3p" else []
    rec = run_record(dp, "hpc.train", ["--dp", dp, "--global-batch", 4 * dp, *extra,
                                       "--micro-batches", "2", "--steps", "1", "--zero",
                                       stage[0],
                                       "--threads", "1", "--reference", "off", "--quiet",
                                       *model],
                     progress="throttle", env={"OMP_NUM_THREADS": "1"}, timeout=1200, cwd=ROOT)
    return rec["metrics"]["memory_bytes_per_rank"]


def layer_bytes(model: list[str], item: int = 4) -> tuple[int, int]:
    """(one transformer layer's parameter bytes, the embedding + head bytes) of the model."""
    opt = dict(zip(model[0::2], model[1::2]))
    h = int(opt.get("--hidden", 128))
    s = int(opt.get("--seq-len", 64))
    v = -(-int(opt.get("--vocab", 256)) // 128) * 128  # padded as hpc.train pads it
    layer = 12 * h * h + 13 * h
    return layer * item, (v * h + s * h + 2 * h) * item


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dp", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--model", default="--layers 8 --hidden 128 --heads 4 --seq-len 64")
    a = ap.parse_args()
    model = a.model.split()
    layer, rest = layer_bytes(model)
    print(f"model: {a.model}; float32; one layer {layer / 2**20:.2f} MiB, embedding+head "
          f"{rest / 2**20:.2f} MiB; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"{'dp':>3} {'zero':>4} {'params MiB':>11} {'grads MiB':>10} {'adam MiB':>9} "
          f"{'sum/whole':>10} {'1/dp+layer':>11}")
    for dp in a.dp:
        for stage in ("0", "1", "2", "3", "3p"):
            m = memory(dp, stage, model)
            whole = 4 * m["model_params"]  # parameters, gradients, two moments
            total = m["params"] + m["grads"] + m["optimizer"]
            bound = (whole / dp + 4 * layer + 2 * rest) / whole
            print(f"{dp:>3} {stage:>4} {m['params'] / 2**20:>11.2f} {m['grads'] / 2**20:>10.2f} "
                  f"{m['optimizer'] / 2**20:>9.2f} {total / whole:>10.3f} {bound:>11.3f}")


if __name__ == "__main__":
    main()
