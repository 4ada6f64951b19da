"""What periodic checkpoints cost hpc.train: the median time per step (the training loop's
wall time, checkpoints included, over the steps) with no checkpoints, with
--save-every 1 written by the background thread (training waits only for the gather), and
with --no-background-save (training waits for the file too), alternating rounds; the
record's checkpoint_stall_s (time training waited) and checkpoint_write_s (time writing
took) per checkpoint, with the load average beside them.

    .venv/bin/python scaling/compare/train_checkpoint.py [--rounds 3] [--steps 6] [--ranks 2] \
        [--model "--layers 4 --hidden 256 --heads 8 --seq-len 64"]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]


def run(ranks: int, mode: str, steps: int, model: list[str], folder: str) -> dict:
    extra = {"none": [], "background": ["--save-dir", folder, "--save-every", "1"],
             "blocking": ["--save-dir", folder, "--save-every", "1", "--no-background-save"]}
    rec = run_record(ranks, "hpc.train", ["--steps", steps, "--global-batch", 4 * ranks,
                                          "--micro-batches", "2", "--threads", "1",
                                          "--reference", "off", "--quiet", "--keep", "1",
                                          "--warmup-steps", "1", *extra[mode], *model],
                     progress="throttle", env={"OMP_NUM_THREADS": "1"}, timeout=1200, cwd=ROOT)
    return rec["metrics"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--model", default="--layers 4 --hidden 256 --heads 8 --seq-len 64")
    a = ap.parse_args()
    model = a.model.split()
    modes = ("none", "background", "blocking")
    step: dict[str, list[float]] = {m: [] for m in modes}
    stall: dict[str, list[float]] = {m: [] for m in modes}
    write: dict[str, list[float]] = {m: [] for m in modes}
    loads = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.rounds):
            for mode in modes:
                loads.append(os.getloadavg()[0])
                m = run(a.ranks, mode, a.steps, model, str(Path(d) / mode))
                step[mode].append(m["train_wall_s"] / a.steps)  # checkpoints included
                n = max(1, len(m["checkpoints"]))
                stall[mode].append(m["checkpoint_stall_s"] / n)
                write[mode].append(m["checkpoint_write_s"] / n)
    print(f"model: {a.model}; {a.ranks} ranks; {a.rounds} rounds; load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    base = statistics.median(step["none"])
    for mode in modes:
        s = statistics.median(step[mode])
        print(f"{mode:<11} median step {s * 1e3:9.1f} ms ({s / base:.2f}x none); per "
              f"checkpoint: training waited {statistics.median(stall[mode]) * 1e3:8.1f} ms, "
              f"writing took {statistics.median(write[mode]) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
