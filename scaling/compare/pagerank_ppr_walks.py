"""PPR index walk rules side by side: uniform walks against walks by degree (ppr-index
--walk-rule), the same least --walks and --keep, the replicated native engine.

    python scaling/compare/pagerank_ppr_walks.py --graphs kron:16:16 --queries 4000

Per graph, in one process (1 rank, 1 OpenMP thread): both indexes are built (reported apart,
with their walk counts), then the batch of --queries sources runs through each index's engine
ALTERNATING, --repeat times (median queries/s of each, their ratio, the 1-minute load before
and after), and --check-queries of the sources are compared with exact PPR: precision@20
ties-aware and strict, worst source, and the mean over the sources that reach more than 20
vertices (a dangling source's PPR is itself: exact for any estimate).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from hpc.core.atomic import write_json

# the sibling script (its directory is the script's, first on the path when run as a script)
from pagerank_compare import ROOT, _fmt, load

RULES = ("uniform", "degree")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", default="kron:16:16")
    ap.add_argument("--queries", type=int, default=4000)
    ap.add_argument("--walks", type=int, default=200, help="least walks per vertex")
    ap.add_argument("--keep", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=1e-3)
    ap.add_argument("--push-rule", choices=("mass", "per-edge"), default="per-edge")
    ap.add_argument("--combine-rel", type=float, default=2e-3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--check-queries", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_ppr_walks.json"))
    args = ap.parse_args()

    from hpc.core import backends
    from hpc.pagerank.ppr import (build_fingerprints, exact_ppr, native_engine, native_query,
                                  precision_summary, walks_per_vertex)

    backends.set_threads(1)
    d, per_edge = 0.85, args.push_rule == "per-edge"
    rows = []
    for spec in args.graphs.split(","):
        g, A = load(spec, args.seed)
        row: dict = {"graph": spec, "vertices": g.n, "edges": g.m}
        engines = {}
        for rule in RULES:
            t0 = time.perf_counter()
            fp = build_fingerprints(g, np.arange(g.n), args.walks, d, args.seed, keep=args.keep,
                                    batch=max(64, 4096 * 1000 // args.walks), rule=rule)
            row[f"index_s_{rule}"] = time.perf_counter() - t0
            row[f"walks_{rule}"] = int(walks_per_vertex(g, args.walks, rule).sum())
            engines[rule] = native_engine(g, fp, d)
        verts = np.sort(np.random.default_rng(args.seed).choice(g.n, args.queries, replace=False))
        ts: dict = {r: [] for r in RULES}
        row["load_1min_before"] = os.getloadavg()[0]
        for _ in range(args.repeat):            # alternating: both see the same load
            for rule in RULES:
                t0 = time.perf_counter()
                _, st = native_query(g, engines[rule], verts, args.iterations, args.threshold,
                                     20, per_edge, args.combine_rel)
                ts[rule].append(time.perf_counter() - t0)
                row[f"combined_per_query_{rule}"] = st.combined_entries / args.queries
        row["load_1min_after"] = os.getloadavg()[0]
        for rule in RULES:
            row[f"queries_per_s_{rule}"] = args.queries / float(np.median(ts[rule]))
        row["speed_degree_over_uniform"] = float(np.median(ts["uniform"]) /
                                                 np.median(ts["degree"]))
        chk = verts[:min(args.check_queries, args.queries)]
        ex = exact_ppr(A, chk, d)
        for rule in RULES:
            ans, _ = native_query(g, engines[rule], chk, args.iterations, args.threshold, 20,
                                  per_edge, args.combine_rel)
            pk = precision_summary(ans.topk_ids, ex, 20)
            row["nontrivial_sources"] = pk["nontrivial_sources"]
            row.update({f"precision_{k}_{rule}": pk[k]
                        for k in ("mean", "min", "strict_mean", "nontrivial_mean")})
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["graph", "walks_uniform", "walks_degree", "queries_per_s_uniform",
            "queries_per_s_degree", "speed_degree_over_uniform", "precision_mean_uniform",
            "precision_mean_degree", "precision_min_uniform", "precision_min_degree",
            "precision_nontrivial_mean_uniform", "precision_nontrivial_mean_degree",
            "load_1min_before", "load_1min_after"]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    write_json(args.json, {"args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
