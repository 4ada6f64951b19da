"""Halo exchange time per method and transport, and weak scaling of the exchange.

Runs `mpiexec -n P python -m hpc.halo` (which validates every ghost cell each run) and
prints exchange_us (per exchange, slowest rank, best repetition) per method x transport:

    .venv/bin/python scaling/compare/halo_exchange.py methods [--ranks 4] [--grid 48 48 48] [-q 2] [-r 2]
    .venv/bin/python scaling/compare/halo_exchange.py weak [--ranks 1 2 4 8] [--local 24] [-q 2] [-r 2]

`weak` keeps the local block at --local^3 cells per rank (the global grid grows with
MPI_Dims_create's process grid) and reports exchange_us and its efficiency against the
smallest rank count (ideal: constant time once every rank has its 26 neighbours off-rank).
Methods run: datatype, pack, auto (auto uses the cached model, see `python -m hpc.halo
measure`). On an oversubscribed machine (more ranks than cores) absolute times mostly
measure the scheduler; compare methods within one table, not across machines.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from mpi4py import MPI

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]


def run(p: int, args: list[str]) -> dict:
    """One validated ``python -m hpc.halo`` run on p ranks (MPICH told to yield), its record."""
    threads = {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": "1"}
    return run_record(p, "hpc.halo", [*args, "--quiet"], progress="throttle", env=threads,
                      timeout=600, cwd=ROOT)


def methods(a: argparse.Namespace) -> None:
    p = a.ranks[0]
    print(f"exchange time per method: {p} ranks, grid {' x '.join(map(str, a.grid))}, "
          f"R={a.radius}, Q={a.q}, {a.iterations} exchanges x {a.repeat} repetitions")
    print(f"{'method':>9} {'p2p us':>10} {'alltoallw us':>13} {'pack GB/s':>10} "
          f"{'MPI_Pack GB/s':>14}  strategy")
    for m in a.methods:
        rec = run(p, ["--grid", *map(str, a.grid), "--radius", str(a.radius), "--quantities",
                      str(a.q), "--method", m, "--iterations", str(a.iterations), "--repeat",
                      str(a.repeat)])
        x = rec["metrics"]
        assert rec["validation"]["passed"]
        print(f"{m:>9} {x['exchange_us_p2p']:>10.1f} {x['exchange_us_alltoallw']:>13.1f} "
              f"{x['pack_GBps']:>10.2f} {x['pack_GBps_mpi']:>14.2f}  {x['strategy']}", flush=True)


def weak(a: argparse.Namespace) -> None:
    print(f"weak scaling: {a.local}^3 cells per rank, R={a.radius}, Q={a.q}, method {a.method}")
    print(f"{'ranks':>5} {'grid':>14} {'p2p us':>10} {'alltoallw us':>13} {'eff p2p':>8}")
    base = None
    for p in a.ranks:
        dz, dy, dx = MPI.Compute_dims(p, [0, 0, 0])
        grid = [dx * a.local, dy * a.local, dz * a.local]
        rec = run(p, ["--grid", *map(str, grid), "--radius", str(a.radius), "--quantities",
                      str(a.q), "--method", a.method, "--iterations", str(a.iterations),
                      "--repeat", str(a.repeat)])
        x = rec["metrics"]
        assert rec["validation"]["passed"]
        base = base or x["exchange_us_p2p"]
        print(f"{p:>5} {'x'.join(map(str, grid)):>14} {x['exchange_us_p2p']:>10.1f} "
              f"{x['exchange_us_alltoallw']:>13.1f} {base / x['exchange_us_p2p']:>8.2f}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", choices=["methods", "weak"])
    ap.add_argument("--ranks", type=int, nargs="+", default=None)
    ap.add_argument("--grid", type=int, nargs=3, default=[48, 48, 48])
    ap.add_argument("--local", type=int, default=24, help="weak: cells per rank per dimension")
    ap.add_argument("-r", "--radius", type=int, default=2)
    ap.add_argument("-q", type=int, default=2)
    ap.add_argument("--method", default="pack", help="weak: the method scaled")
    ap.add_argument("--methods", nargs="+", default=["datatype", "pack", "auto"])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    if a.ranks is None:
        a.ranks = [4] if a.study == "methods" else [1, 2, 4, 8]
    (methods if a.study == "methods" else weak)(a)


if __name__ == "__main__":
    main()
