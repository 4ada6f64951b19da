"""PowerWalk PPR throughput: a batch of --queries sources answered with the fingerprint
index, against exact power iteration run query by query, at the accuracy reached.

    python scaling/pagerank_ppr.py --graphs email,gnutella,kron:16:16 --queries 1000 --ranks 2

Per graph (1 rank in-process, then --ranks under mpiexec):
- index: ppr-index time (--walks per vertex, top --keep entries stored);
- batch: the decomposition + combination for all queries at once (best of --repeat);
- baseline: networkx's iteration for personalization={s: 1} (teleport and dangling mass to s),
  one query at a time to an L1 change of 1e-10, on --baseline-queries of the sources; its mean
  time per query x queries is the baseline batch time;
- accuracy on --check-queries of the sources against exact PPR: precision@20 (ties-aware)
  and L1 error.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pagerank_compare import ALIASES, ENV, ROOT, _fmt, load  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", default="email,gnutella,kron:16:16")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--walks", type=int, default=100)
    ap.add_argument("--keep", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=1e-2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-queries", type=int, default=30)
    ap.add_argument("--check-queries", type=int, default=200)
    ap.add_argument("--ranks", default="2")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_ppr.json"))
    args = ap.parse_args()

    import scipy.sparse as sp

    from hpc.core import backends
    from hpc.pagerank.ppr import (build_fingerprints, combine, decompose, exact_ppr,
                                  power_iteration_ppr, precision_at_k)

    backends.set_threads(1)
    d = 0.85
    rows = []
    for spec in args.graphs.split(","):
        g, A = load(spec, args.seed)
        n = g.n
        row = {"graph": spec, "vertices": n, "edges": g.m, "queries": args.queries}
        t0 = time.perf_counter()
        fp = build_fingerprints(g, np.arange(n), args.walks, d, args.seed, keep=args.keep)
        row["index_s"] = time.perf_counter() - t0
        verts = np.sort(np.random.default_rng(args.seed).choice(n, args.queries, replace=False))
        ts, ans = [], None
        for _ in range(args.repeat):
            fp.cache.clear()                         # no cached matrices between repeats
            g.info.pop(("push", d), None)
            t0 = time.perf_counter()
            dec = decompose(g, verts, d, args.iterations, args.threshold)
            ans = combine(g, dec, fp, verts.size, 20)
            ts.append(time.perf_counter() - t0)
        row["batch_s"] = min(ts)
        row["queries_per_s"] = args.queries / min(ts)
        # baseline: one query at a time
        deg = np.asarray(A.sum(axis=1)).ravel()
        inv = np.zeros(n)
        np.divide(1.0, deg, out=inv, where=deg > 0)
        PT = sp.csr_matrix(A.multiply(inv[:, None])).T.tocsr()
        base = verts[:args.baseline_queries]
        t0 = time.perf_counter()
        for s in base:
            power_iteration_ppr(PT, deg == 0, int(s), d, tol=1e-10)
        per_q = (time.perf_counter() - t0) / base.size
        row["baseline_per_query_s"] = per_q
        row["baseline_queries_per_s"] = 1.0 / per_q
        row["speedup"] = per_q * args.queries / row["batch_s"]
        chk = np.arange(min(args.check_queries, args.queries))
        ex = exact_ppr(A, verts[chk], d)
        prec = [precision_at_k(ans.topk_ids[i], ex[i], 20) for i in chk]
        row["precision_at_20_mean"] = float(np.mean(prec))
        row["precision_at_20_min"] = float(np.min(prec))
        with tempfile.TemporaryDirectory() as tmp:
            cache, idx = os.path.join(tmp, "g.h5"), os.path.join(tmp, "idx.h5")
            src = ["--generate", spec, "--seed", str(args.seed)] if spec.startswith("kron:") else \
                ["--graph", str(ALIASES.get(spec, spec))]
            mpiexec = str(Path(sys.executable).parent / "mpiexec")
            for p in [int(r) for r in args.ranks.split(",") if r]:
                js = os.path.join(tmp, "r.json")
                base_cmd = [mpiexec, "-n", str(p), sys.executable, "-m", "hpc.pagerank"]
                r = subprocess.run(base_cmd + ["ppr-index", *src, "--cache", cache, "--output", idx,
                                              "--walks", str(args.walks), "--keep", str(args.keep),
                                              "--json", js, "--quiet"],
                                   capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ENV})
                if r.returncode:
                    raise RuntimeError(r.stderr[-2000:])
                row[f"index_{p}ranks_s"] = json.load(open(js))["timings"]["walks"]["min"]
                r = subprocess.run(base_cmd + ["ppr", *src, "--cache", cache, "--index", idx,
                                              "--sources", f"random:{args.queries}",
                                              "--iterations", str(args.iterations),
                                              "--threshold", str(args.threshold),
                                              "--repeat", str(args.repeat + 1), "--json", js, "--quiet"],
                                   capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ENV})
                if r.returncode:
                    raise RuntimeError(r.stderr[-2000:])
                row[f"queries_per_s_{p}ranks"] = json.load(open(js))["metrics"]["queries_per_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["graph", "vertices", "edges", "index_s", "batch_s", "queries_per_s",
            "baseline_queries_per_s", "speedup", "precision_at_20_mean", "precision_at_20_min"] + \
        [f"index_{p}ranks_s" for p in args.ranks.split(",") if p] + \
        [f"queries_per_s_{p}ranks" for p in args.ranks.split(",") if p]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
