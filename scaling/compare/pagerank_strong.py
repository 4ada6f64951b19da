"""Strong scaling of hpc.pagerank: the same problem on 1, 2, 4, ... ranks (mpiexec).

    python scaling/compare/pagerank_strong.py --generate kron:16:16 --ranks 1,2,4

Runs, per rank count: global PageRank (1D and 2D layouts, solve time to --tol), ppr-index
(walk time) and ppr with the index for a batch of --queries sources (query time). Times are
the records' (slowest rank, best of --repeat after a warm-up). The graph is generated once
and read from an HDF5 cache by every run. On a machine with fewer cores than ranks the
ranks share cores, and the table says so. --skip-ppr: global PageRank only; --mpi-env: the
MPICH progress settings (default throttle, the suite's; auto = busy polling when ranks <= cores).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]
ENV = {"OMP_NUM_THREADS": "1"}
TIMEOUT = 900   # seconds a launch may run (MPIEXEC_TIMEOUT)


def app(p: int, args: list[str], mpi_env: str = "throttle") -> dict:
    """One run of the app; mpi_env 'auto' = busy polling when p <= cores, else throttled."""
    return run_record(p, "hpc.pagerank", [*args, "--quiet"], progress=mpi_env, env=ENV,
                      timeout=TIMEOUT, cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate", default="kron:16:16",
                    help="graph generator, kron:SCALE:EDGEFACTOR (default: kron:16:16)")
    ap.add_argument("--ranks", default="1,2,4", help="comma-separated rank counts (default: 1,2,4)")
    ap.add_argument("--tol", default="1e-10", help="PageRank L1-change tolerance (default: 1e-10)")
    ap.add_argument("--queries", type=int, default=1000,
                    help="PPR batch size: random sources per ppr run (default: 1000)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed repetitions per run, best kept (default: 3)")
    ap.add_argument("--seed", default="1", help="generator and source seed (default: 1)")
    ap.add_argument("--skip-ppr", action="store_true", help="global PageRank only")
    ap.add_argument("--mpi-env", choices=("auto", "busy", "throttle"), default="throttle",
                    help="MPICH progress settings: throttle (the suite's, for oversubscribed "
                         "runs), busy (MPICH's default polling), auto (busy when ranks <= cores)")
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_strong.json"),
                    help="where the records go (default: scaling/results/pagerank_strong.json)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cache, idx = (os.path.join(d, x) for x in ("g.h5", "idx.h5"))
        src = ["--generate", a.generate, "--seed", a.seed, "--cache", cache]
        rep = ["--repeat", str(a.repeat + 1)]
        for p in [int(x) for x in a.ranks.split(",")]:
            row = {"ranks": p, "cores": os.cpu_count()}
            for layout in ("1d", "2d"):
                rec = app(p, [*src, "--tol", a.tol, "--layout", layout, *rep], a.mpi_env)
                row[f"pagerank_{layout}_s"] = rec["timings"]["solve"]["min"]
                row["iterations"] = rec["metrics"]["iterations"]
                row[f"Medges_per_s_{layout}"] = rec["metrics"]["edges_per_s"] / 1e6
            if a.skip_ppr:
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            rec = app(p, ["ppr-index", *src, "--output", idx, *rep], a.mpi_env)
            row["ppr_index_s"] = rec["timings"]["walks"]["min"]
            rec = app(p, ["ppr", *src, "--index", idx, "--sources", f"random:{a.queries}", *rep],
                      a.mpi_env)
            row["ppr_batch_s"] = rec["timings"]["query"]["min"]
            row["queries_per_s"] = rec["metrics"]["queries_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]
    cols = ["ranks", "pagerank_1d_s", "pagerank_2d_s", "Medges_per_s_1d"]
    sps = ["pagerank_1d_s"]
    if not a.skip_ppr:
        cols += ["ppr_index_s", "ppr_batch_s", "queries_per_s"]
        sps += ["ppr_index_s", "ppr_batch_s"]
    print(f"\n{a.generate}, tol {a.tol}, {a.queries} PPR queries, {os.cpu_count()} cores, "
          f"MPI env {a.mpi_env}")
    print("| " + " | ".join(cols) + " | " + " | ".join(f"speedup {c}" for c in sps) + " |")
    print("|" + "---|" * (len(cols) + len(sps)))
    for r in rows:
        sp = [base[c] / r[c] for c in sps]
        print("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols)
              + " | " + " | ".join(f"{x:.2f}" for x in sp) + " |")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"args": vars(a), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
