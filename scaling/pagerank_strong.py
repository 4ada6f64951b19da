"""Strong scaling of hpc.pagerank: the same problem on 1, 2, 4, ... ranks (mpiexec).

    python scaling/pagerank_strong.py --generate kron:16:16 --ranks 1,2,4

Runs, per rank count: global PageRank (1D and 2D layouts, solve time to --tol), ppr-index
(walk time) and ppr with the index for a batch of --queries sources (query time). Times are
the records' (slowest rank, best of --repeat after a warm-up). The graph is generated once
and read from an HDF5 cache by every run. On a machine with fewer cores than ranks the
ranks share cores, and the table says so.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {"MPIR_CVAR_POLLS_BEFORE_YIELD": "1", "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "true",
       "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1", "OMP_NUM_THREADS": "1",
       "MPIEXEC_TIMEOUT": "900"}


def app(p: int, args: list[str], js: str) -> dict:
    cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(p), sys.executable, "-m",
           "hpc.pagerank", *args, "--json", js, "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ENV})
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{r.stderr[-2000:]}")
    with open(js) as f:
        return json.load(f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate", default="kron:16:16")
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--tol", default="1e-10")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_strong.json"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cache, idx, js = (os.path.join(d, x) for x in ("g.h5", "idx.h5", "r.json"))
        src = ["--generate", a.generate, "--seed", a.seed, "--cache", cache]
        rep = ["--repeat", str(a.repeat + 1)]
        for p in [int(x) for x in a.ranks.split(",")]:
            row = {"ranks": p, "cores": os.cpu_count()}
            for layout in ("1d", "2d"):
                rec = app(p, [*src, "--tol", a.tol, "--layout", layout, *rep], js)
                row[f"pagerank_{layout}_s"] = rec["timings"]["solve"]["min"]
                row["iterations"] = rec["metrics"]["iterations"]
                row[f"Medges_per_s_{layout}"] = rec["metrics"]["edges_per_s"] / 1e6
            rec = app(p, ["ppr-index", *src, "--output", idx, *rep], js)
            row["ppr_index_s"] = rec["timings"]["walks"]["min"]
            rec = app(p, ["ppr", *src, "--index", idx, "--sources", f"random:{a.queries}", *rep], js)
            row["ppr_batch_s"] = rec["timings"]["query"]["min"]
            row["queries_per_s"] = rec["metrics"]["queries_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]
    cols = ["ranks", "pagerank_1d_s", "pagerank_2d_s", "Medges_per_s_1d", "ppr_index_s",
            "ppr_batch_s", "queries_per_s"]
    print(f"\n{a.generate}, tol {a.tol}, {a.queries} PPR queries, {os.cpu_count()} cores")
    print("| " + " | ".join(cols) + " | speedup 1d | speedup index | speedup ppr |")
    print("|" + "---|" * (len(cols) + 3))
    for r in rows:
        sp = [base["pagerank_1d_s"] / r["pagerank_1d_s"], base["ppr_index_s"] / r["ppr_index_s"],
              base["ppr_batch_s"] / r["ppr_batch_s"]]
        print("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols)
              + " | " + " | ".join(f"{x:.2f}" for x in sp) + " |")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"args": vars(a), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
