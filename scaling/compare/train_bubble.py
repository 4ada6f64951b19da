"""Pipeline bubble per schedule: Megatron's formula, the schedule simulator (exact), and the
bubble measured in real hpc.train runs ((schedule wall time - forward/backward compute time)
/ compute time, averaged over ranks, after a warm-up step).

    .venv/bin/python scaling/compare/train_bubble.py [--pp 2] [--micro-batches 2 4 8] [--steps 4]

Measured runs use pp ranks with one thread each; keep pp <= cores, or the ranks' time slicing
is measured instead of the bubble.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc.core.launch import run_record
from hpc.train.schedules import bubble_formula, build, simulate

ROOT = Path(__file__).resolve().parents[2]


def measured(pp: int, m: int, kind: str, v: int, steps: int, model: list[str]) -> float:
    """The bubble fraction `python -m hpc.train` measures on pp ranks (waiting ranks yield)."""
    rec = run_record(pp, "hpc.train", ["--pp", pp, "--vpp", v, "--schedule", kind,
                                       "--micro-batches", m, "--global-batch", m, "--steps", steps,
                                       "--threads", "1", "--reference", "off", "--quiet", *model],
                     progress="throttle", env={"OMP_NUM_THREADS": "1"}, timeout=600, cwd=ROOT)
    return rec["metrics"]["bubble_fraction"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pp", type=int, default=2)
    ap.add_argument("--micro-batches", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--no-run", action="store_true", help="formula and simulator only")
    ap.add_argument("--model", default="--layers 4 --hidden 192 --heads 4 --seq-len 128",
                    help="hpc.train model options of the measured runs")
    a = ap.parse_args()
    p = a.pp
    print(f"{'schedule':<14}{'p':>3}{'v':>3}{'m':>4}{'formula':>10}{'simulated':>11}"
          f"{'measured':>10}")
    for kind, v in (("gpipe", 1), ("1f1b", 1), ("interleaved", 2), ("zbh1", 1)):
        for m in a.micro_batches:
            if kind == "interleaved" and m % p:
                continue
            f = bubble_formula(kind, p, m, v)
            s = simulate(build(kind, p, m, v), p, v).bubble
            meas = "" if a.no_run else f"{measured(p, m, kind, v, a.steps, a.model.split()):10.3f}"
            print(f"{kind:<14}{p:>3}{v:>3}{m:>4}{f:>10.3f}{s:>11.3f}{meas:>10}", flush=True)


if __name__ == "__main__":
    main()
