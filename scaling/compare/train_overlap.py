"""Data-parallel step time of hpc.train: dp = 1 against dp = 2 at the same per-rank batch,
with one blocking all-reduce after the backward and with --overlap-grad-reduce (per-layer
buckets reduced by non-blocking all-reduces while the backward goes on). Rounds alternate
the three runs; the table gives the median step time of each and the ratios of medians, with
the load average beside them. Target (issue 20): dp = 2 with overlap at most 1.1x dp = 1, on a
model large enough for the reduction to matter.

    .venv/bin/python scaling/compare/train_overlap.py [--rounds 3] [--steps 6] \
        [--model "--layers 4 --hidden 256 --heads 8 --seq-len 128"] [--progress auto]

--progress: MPICH's progress settings for the launches (hpc.core.launch): 'auto' polls when
the ranks have a core each (a quiet machine) and yields when oversubscribed; 'throttle'
always yields (default: shared machines).

Needs 2 free cores for dp = 2 to mean anything: on a shared machine the ranks' time slicing
is measured instead (the load is printed for that reason).
"""
from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from hpc.core.launch import PROGRESS_MODES, run_record

ROOT = Path(__file__).resolve().parents[2]


def step_time(dp: int, overlap: bool, steps: int, model: list[str], batch: int,
              progress: str = "throttle") -> float:
    """The slowest rank's mean step time after the first step (the app's step_time_s)."""
    rec = run_record(dp, "hpc.train", ["--dp", dp, "--global-batch", batch * dp,
                                       "--micro-batches", "2", "--steps", steps,
                                       "--threads", "1", "--reference", "off", "--quiet",
                                       *(["--overlap-grad-reduce"] if overlap else []),
                                       *model],
                     progress=progress, env={"OMP_NUM_THREADS": "1"}, timeout=1200, cwd=ROOT)
    return float(rec["metrics"]["step_time_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4, help="sequences per data-parallel rank")
    ap.add_argument("--model", default="--layers 4 --hidden 256 --heads 8 --seq-len 128")
    ap.add_argument("--progress", choices=PROGRESS_MODES, default="throttle")
    a = ap.parse_args()
    model = a.model.split()
    runs = {"dp1": (1, False), "dp2": (2, False), "dp2-overlap": (2, True)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    loads = []
    for _ in range(a.rounds):
        for name, (dp, ov) in runs.items():  # alternate: load drifts hit all three alike
            loads.append(os.getloadavg()[0])
            times[name].append(step_time(dp, ov, a.steps, model, a.batch, a.progress))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"model: {a.model}; {a.batch} sequences per rank; {a.rounds} rounds; load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    for k, v in med.items():
        print(f"{k:<14} median step {v * 1e3:9.1f} ms   ratio to dp1 {v / med['dp1']:.2f}")
    print(f"overlap / blocking at dp 2: {med['dp2-overlap'] / med['dp2']:.2f}")


if __name__ == "__main__":
    main()
