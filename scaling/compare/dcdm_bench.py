"""DCDM against CG, Jacobi-PCG, IC-PCG and MG-PCG on poisson3d, random right-hand side.

    .venv/bin/python scaling/compare/dcdm_bench.py [--n 64] [--rtol 1e-6] [--model PATH]
    mpiexec -n 2 .venv/bin/python scaling/compare/dcdm_bench.py ...

Every solver runs in this process on the same DistCSR matrix (hpc.sparse) and the same b
(standard normal, --seed), through the public API (hpc.cg.Solver), one after the other on the
same machine. Reports iterations, matrix-vector products, network evaluations, wall time
(set-up and solve, slowest rank, best of --repeat) and the true final residual
||b - Ax|| / ||b||. IC-PCG is block
Jacobi with IC(0) blocks (one block per rank: on one rank, global IC(0)).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hpc.cg import DCDMOptions, Solver
from hpc.sparse.generators import structured

CASES = [  # label, method, pc, pc_options
    ("CG", "cg", "none", {}),
    ("Jacobi-PCG", "pcg", "jacobi", {}),
    ("IC-PCG", "pcg", "bjacobi", {"sub_pc": "icc"}),
    ("MG-PCG", "pcg", "mg", {"mg_levels": 4}),
    ("DCDM", "dcdm", "none", {}),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="grid points per side (poisson3d:N)")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--maxiter", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="timed solves per method (best kept)")
    ap.add_argument("--backend", default="numpy", help="sparse kernels (numpy, numba, native)")
    ap.add_argument("--net-backend", default="numpy", help="DCDM network kernels (numpy, numba)")
    ap.add_argument("--model", default=None, help="DCDM model file [default: the shipped one]")
    ap.add_argument("--keep", type=int, default=2,
                    help="DCDM: A-orthogonalise against this many previous directions (paper: 2)")
    ap.add_argument("--only", default=None, help="comma-separated labels to run")
    ap.add_argument("--json", default=None, help="write the table as JSON here")
    args = ap.parse_args()

    comm = MPI.COMM_WORLD
    N = args.n
    A = structured("poisson3d", N, comm, backend=args.backend)
    lo, hi = A.row_range
    b = np.random.default_rng(args.seed).standard_normal(N ** 3)[lo:hi].copy()
    dcdm = DCDMOptions(model=args.model, keep=args.keep, backend=args.net_backend)
    rows = []
    only = set(args.only.split(",")) if args.only else None
    for label, method, pc, po in CASES:
        if only and label not in only:
            continue
        best = None
        for _ in range(args.repeat):
            comm.Barrier()
            t0 = time.perf_counter()
            its = [0]

            def progress(xk):
                its[0] += 1
                if method == "dcdm" and comm.rank == 0 and its[0] % 10 == 0:
                    print(f"    dcdm iteration {its[0]} ({time.perf_counter() - t0:.0f} s)", flush=True)

            solver = Solver(A, method=method, pc=pc, rtol=args.rtol, maxiter=args.maxiter,
                            backend=args.backend, pc_options=dict(po), dcdm=dcdm)
            x, info = solver.solve(b, callback=progress)
            t = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            if best is None or t < best[0]:
                best = (t, info)
        t, info = best
        d = info.details
        rows.append({"solver": label, "iterations": info.iterations, "converged": info.converged,
                     "matvecs": info.matvecs, "network_evals": int(d.get("network_evals", 0)),
                     "time_s": t, "time_per_iter_ms": 1e3 * t / max(info.iterations, 1),
                     "final_relres": info.true_relres, "network_s": d.get("network_s")})
        if comm.rank == 0:
            print(f"  {label}: {info.iterations} iterations, {t:.2f} s", flush=True)
    if comm.rank == 0:
        cg = next((r["iterations"] for r in rows if r["solver"] == "CG"), None)
        print(f"\npoisson3d:{N} ({N ** 3} unknowns), random b (seed {args.seed}), rtol {args.rtol:g}, "
              f"{comm.size} rank(s), sparse kernels {args.backend}, network {args.net_backend}")
        print("| solver | iterations | vs CG | matvecs | network evals | time (s) | ms/iter | final relres |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            ratio = f"{r['iterations'] / cg:.3f}" if cg else "-"
            print(f"| {r['solver']} | {r['iterations']} | {ratio} | {r['matvecs']} | {r['network_evals']} | "
                  f"{r['time_s']:.2f} | {r['time_per_iter_ms']:.1f} | {r['final_relres']:.2e} |")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"n": N, "rtol": args.rtol, "ranks": comm.size,
                                                   "seed": args.seed, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
