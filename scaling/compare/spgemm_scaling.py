"""Strong scaling of hpc.spgemm: 1D (Alltoallv of B rows) against 2D Sparse SUMMA.

Runs the app under mpiexec for every rank count and layout on one fixed problem and prints
one row per run: multiply (local compute, slowest rank), communicate (time and volume), the
whole distributed product, GFLOP/s, and the speedup over 1 rank. 2D runs only at square rank
counts.

    python scaling/compare/spgemm_scaling.py                          # rmat:13:16, ranks 1 2 4
    python scaling/compare/spgemm_scaling.py --generate rmat:16:16 --ranks 1 4 9 16 --repeat 3
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]


def run(ranks: int, layout: str, args) -> dict:
    argv = ["--generate", args.generate, "--layout", layout, "--repeat", args.repeat,
            "--threads", args.threads, "--backend", args.backend, "--quiet"]
    return run_record(ranks, "hpc.spgemm", argv, progress="throttle",
                      env={"OMP_NUM_THREADS": "1"}, timeout=900, cwd=ROOT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generate", default="rmat:13:16")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backend", default="native")
    a = p.parse_args()
    print(f"# hpc.spgemm --generate {a.generate}, back end {a.backend}, {a.threads} thread(s)/rank, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; best of {a.repeat} (first dropped)")
    print(f"{'layout':<7}{'ranks':>6}{'multiply_s':>12}{'comm_s':>10}{'comm_MB':>10}{'total_s':>10}"
          f"{'GFLOP/s':>9}{'speedup':>9}")
    for layout in ("1d", "2d"):
        base = None
        for n in a.ranks:
            if layout == "2d" and math.isqrt(n) ** 2 != n:
                continue
            rec = run(n, layout, a)
            m = rec["metrics"]
            tot = m["spgemm_s"]
            base = base or tot
            print(f"{layout:<7}{n:>6}{m['multiply_s']:>12.4f}{m['communicate_s']:>10.4f}"
                  f"{m['comm_bytes'] / 1e6:>10.2f}{tot:>10.4f}{m['gflops']:>9.3f}{base / tot:>9.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
