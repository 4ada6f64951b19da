"""PowerWalk PPR throughput: a batch of --queries sources answered with the fingerprint
index, against exact power iteration run query by query, at the accuracy reached.

    python scaling/compare/pagerank_ppr.py --graphs email,gnutella,kron:15:16 --queries 1000

Per graph, in one process (1 rank, --threads OpenMP threads for the native engine):
- index: building the fingerprints (--walks per vertex, top --keep entries stored), reported
  apart (offline); engine: copying graph and index into the native engine (once per index,
  like loading the index file), also reported apart;
- batch: every query of the batch through the native engine: T = --iterations pushes with
  --threshold (--push-rule), the combination with the fingerprints (--combine-rel), top 20,
  results back in NumPy arrays (best of --repeat);
- scipy: the same decomposition by the SciPy sparse-product path (ppr.decompose + combine,
  the `--backend numpy` of the app), once, for reference;
- baseline: networkx's iteration for personalization={s: 1} (teleport and dangling mass to s),
  one query at a time with SciPy's SpMV to an L1 change of 1e-10, on --baseline-queries of
  the sources; its mean time per query x queries is the baseline batch time;
- accuracy on --check-queries of the sources against exact PPR (ppr.exact_ppr, residual
  < 1e-13): precision@20 ties-aware (an id counts when its exact score reaches the 20th less
  1e-12) and strict (one exact top 20, ties broken by id), and the L1 error of the whole
  estimated vector.
With --ranks, the app itself (ppr-index, then ppr --index, native back end) under mpiexec, for
each of --engines (replicated / partitioned), the engines alternating --repeat times (median
queries/s), with the engine's graph + index bytes per rank from the record.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hpc.core.atomic import write_json
from hpc.core.launch import run_record

# the sibling script (its directory is the script's, first on the path when run as a script)
from pagerank_compare import ALIASES, ENV, ROOT, TIMEOUT, _fmt, load


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", default="email,gnutella,kron:15:16")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--walks", type=int, default=4000, help="walks per vertex in the index")
    ap.add_argument("--keep", type=int, default=256, help="index entries per vertex")
    ap.add_argument("--walk-rule", choices=("degree", "uniform"), default="degree",
                    help="walks per vertex of the index (ppr-index --walk-rule): --walks x "
                         "ceil(outdeg / mean outdeg), or --walks from every vertex")
    ap.add_argument("--iterations", type=int, default=2, help="push iterations T")
    ap.add_argument("--threshold", type=float, default=1e-3)
    ap.add_argument("--push-rule", choices=("mass", "per-edge"), default="per-edge")
    ap.add_argument("--combine-rel", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1, help="OpenMP threads of the engine")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-queries", type=int, default=30)
    ap.add_argument("--check-queries", type=int, default=200)
    ap.add_argument("--no-scipy", action="store_true", help="skip the SciPy-path reference run")
    ap.add_argument("--ranks", default="", help="also run the app under mpiexec at these counts")
    ap.add_argument("--engines", default="replicated",
                    help="native engines of the app runs (--ranks), alternating: replicated, "
                         "partitioned or both (comma-separated); each run's record gives the "
                         "engine's graph + index bytes per rank")
    ap.add_argument("--mpi-only", action="store_true",
                    help="only the app runs of --ranks (index built by ppr-index on the ranks; "
                         "no 1-process index, baseline or SciPy run); precision@20 from one "
                         "extra `ppr --check` run on --check-queries of the sources")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--index-dir", default=None,
                    help="--ranks runs: keep the graph cache and the index built by ppr-index "
                         "in this directory (one file per graph, walks, keep, walk rule, seed "
                         "and rank count) and reuse them when present, instead of building "
                         "them in a temporary directory on every run")
    ap.add_argument("--json", default=str(ROOT / "scaling" / "results" / "pagerank_ppr.json"))
    args = ap.parse_args()
    if args.mpi_only and not args.ranks:
        ap.error("--mpi-only needs --ranks")

    import scipy.sparse as sp

    from hpc.core import backends
    from hpc.pagerank.ppr import (build_fingerprints, combine, decompose, exact_ppr,
                                  native_engine, native_query, power_iteration_ppr,
                                  precision_summary)

    backends.set_threads(args.threads)
    d = 0.85
    per_edge = args.push_rule == "per-edge"
    rows = []
    for spec in args.graphs.split(","):
        if args.mpi_only:
            row = {"graph": spec, "queries": args.queries, "load_1min": os.getloadavg()[0]}
            _mpi_rows(row, spec, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        g, A = load(spec, args.seed)
        n = g.n
        row = {"graph": spec, "vertices": n, "edges": g.m, "queries": args.queries,
               "load_1min": os.getloadavg()[0]}
        t0 = time.perf_counter()
        fp = build_fingerprints(g, np.arange(n), args.walks, d, args.seed, keep=args.keep,
                                batch=max(64, 4096 * 1000 // args.walks), rule=args.walk_rule)
        row["index_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        eng = native_engine(g, fp, d)
        row["engine_s"] = time.perf_counter() - t0
        verts = np.sort(np.random.default_rng(args.seed).choice(n, args.queries, replace=False))
        ts, ans, st = [], None, None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ans, st = native_query(g, eng, verts, args.iterations, args.threshold, 20, per_edge,
                                   args.combine_rel, threads=args.threads)
            ts.append(time.perf_counter() - t0)
        row["batch_s"] = min(ts)
        row["queries_per_s"] = args.queries / min(ts)
        row["residual_entries_per_query"] = st.residual_entries / args.queries
        row["combined_entries_per_query"] = st.combined_entries / args.queries
        if not args.no_scipy:
            fp.cache.pop("K", None)
            t0 = time.perf_counter()
            dec = decompose(g, verts, d, args.iterations, args.threshold, per_edge=per_edge)
            combine(g, dec, fp, verts.size, 20)
            row["scipy_queries_per_s"] = args.queries / (time.perf_counter() - t0)
        # baseline: one query at a time
        deg = np.asarray(A.sum(axis=1)).ravel()
        inv = np.zeros(n)
        np.divide(1.0, deg, out=inv, where=deg > 0)
        PT = sp.csr_matrix(A.multiply(inv[:, None])).T.tocsr()
        dangling = np.flatnonzero(deg == 0)
        base = verts[:args.baseline_queries]
        t0 = time.perf_counter()
        for s in base:
            power_iteration_ppr(PT, dangling, int(s), d, tol=1e-10)
        per_q = (time.perf_counter() - t0) / base.size
        row["baseline_per_query_s"] = per_q
        row["baseline_queries_per_s"] = 1.0 / per_q
        row["speedup"] = per_q * args.queries / row["batch_s"]
        chk = verts[:min(args.check_queries, args.queries)]
        ex = exact_ppr(A, chk, d)
        a2, _ = native_query(g, eng, chk, args.iterations, args.threshold, 20, per_edge,
                             args.combine_rel, want_full=True, threads=args.threads)
        l1 = []
        for i in range(chk.size):
            assert np.array_equal(a2.topk_ids[i], ans.topk_ids[i])
            dense = np.zeros(n)
            dense[a2.full[i][0]] = a2.full[i][1]
            l1.append(float(np.abs(dense - ex[i]).sum()))
        pk = precision_summary(a2.topk_ids, ex, 20)
        row.update({f"precision_at_20_{k}": pk[k] for k in ("mean", "min", "strict_mean",
                                                            "strict_min", "nontrivial_mean")})
        row["nontrivial_sources"] = pk["nontrivial_sources"]
        row["l1_err_mean"] = float(np.mean(l1))
        if args.ranks:
            _mpi_rows(row, spec, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["graph", "vertices", "edges", "index_s", "engine_s", "batch_s", "queries_per_s",
            "scipy_queries_per_s", "baseline_queries_per_s", "speedup", "precision_at_20_mean",
            "precision_at_20_min", "precision_at_20_strict_mean", "precision_at_20_strict_min",
            "precision_at_20_nontrivial_mean", "l1_err_mean", "load_1min"] + \
        [f"queries_per_s_{p}ranks_{e}" for p in args.ranks.split(",") if p
         for e in args.engines.split(",")] + \
        [f"bytes_max_x_p_over_replicated_{p}ranks" for p in args.ranks.split(",") if p
         and "partitioned" in args.engines] + \
        [f"partitioned_over_replicated_{p}ranks" for p in args.ranks.split(",") if p
         and "partitioned" in args.engines and "replicated" in args.engines]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, _merged(args, rows) if args.mpi_only else
               {"args": vars(args), "rows": rows})
    return 0


def _merged(args, rows: list) -> dict:
    """--mpi-only measures only the app runs: their fields update the rows of the same graph
    already in --json (the 1-process figures stay), other graphs are appended; the run's
    arguments join the file's list of them; the file's other keys stay."""
    try:
        with open(args.json) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return {"args": [vars(args)], "rows": rows}
    runs = old.get("args", [])
    runs = (runs if isinstance(runs, list) else [runs]) + [vars(args)]
    kept = list(old.get("rows", []))
    for row in rows:
        same = [r for r in kept if r.get("graph") == row["graph"]]
        if same:
            same[0].update(row)
        else:
            kept.append(row)
    return {**old, "args": runs, "rows": kept}


def _mpi_rows(row: dict, spec: str, args) -> None:
    """ppr-index then ppr --index under mpiexec at every count of --ranks."""
    with tempfile.TemporaryDirectory() as tmp:
        keep_dir = args.index_dir or tmp
        os.makedirs(keep_dir, exist_ok=True)
        tag = spec.replace(":", "_").replace("/", "_")
        cache = os.path.join(keep_dir, f"{tag}-seed{args.seed}.h5")
        src = ["--generate", spec, "--seed", str(args.seed)] if spec.startswith("kron:") else \
            ["--graph", str(ALIASES.get(spec, spec))]
        for p in [int(r) for r in args.ranks.split(",") if r]:
            idx = os.path.join(keep_dir, f"{tag}-seed{args.seed}-w{args.walks}-k{args.keep}-"
                                         f"{args.walk_rule}-{p}ranks.idx.h5")
            if args.index_dir and os.path.exists(idx):
                row[f"index_{p}ranks_s"] = None   # reused (--index-dir)
            else:
                rec = run_record(p, "hpc.pagerank",
                                 ["ppr-index", *src, "--cache", cache, "--output", idx,
                                  "--walks", args.walks, "--keep", args.keep,
                                  "--walk-rule", args.walk_rule,
                                  "--batch", max(64, 4096 * 1000 // args.walks), "--quiet"],
                                 env=ENV, timeout=TIMEOUT, cwd=ROOT)
                row[f"index_{p}ranks_s"] = rec["timings"]["walks"]["min"]
            engines = args.engines.split(",")
            rates: dict = {e: [] for e in engines}
            for _ in range(max(1, args.repeat)):      # alternating engines, each best of 2
                for e in engines:
                    rec = run_record(p, "hpc.pagerank",
                                     ["ppr", *src, "--cache", cache, "--index", idx,
                                      "--sources", f"random:{args.queries}",
                                      "--iterations", args.iterations,
                                      "--threshold", args.threshold,
                                      "--push-rule", args.push_rule,
                                      "--combine-rel", args.combine_rel, "--engine", e,
                                      "--threads", args.threads, "--repeat", 2, "--quiet"],
                                     env=ENV, timeout=TIMEOUT, cwd=ROOT)
                    m = rec["metrics"]
                    rates[e].append(m["queries_per_s"])
                    row[f"engine_bytes_per_rank_{p}ranks_{e}"] = m["engine_bytes_per_rank"]
                    row[f"replicated_engine_bytes_{p}ranks"] = m["replicated_engine_bytes"]
                    if e == "partitioned":
                        row[f"bytes_max_x_p_over_replicated_{p}ranks"] = \
                            m["engine_bytes_max_times_p_over_replicated"]
            for e in engines:   # median of the alternating runs
                row[f"queries_per_s_{p}ranks_{e}"] = float(np.median(rates[e]))
            if "partitioned" in rates and "replicated" in rates:
                # the engines' ratio run by run (each partitioned run against the replicated
                # run next to it), median: steadier than the ratio of medians under load
                row[f"partitioned_over_replicated_{p}ranks"] = float(np.median(
                    [a / b for a, b in zip(rates["partitioned"], rates["replicated"])]))
            row[f"load_1min_{p}ranks"] = os.getloadavg()[0]
            if args.mpi_only and args.check_queries > 0:   # accuracy: exact PPR on rank 0
                rec = run_record(p, "hpc.pagerank",
                                 ["ppr", *src, "--cache", cache, "--index", idx,
                                  "--sources", f"random:{min(args.check_queries, args.queries)}",
                                  "--iterations", args.iterations,
                                  "--threshold", args.threshold, "--push-rule", args.push_rule,
                                  "--combine-rel", args.combine_rel, "--engine", engines[-1],
                                  "--check", "--min-precision", 0, "--quiet"],
                                 env=ENV, timeout=TIMEOUT, cwd=ROOT)
                row["precision_at_20_mean"] = rec["metrics"]["precision_at_20"]
                row["precision_at_20_min"] = rec["validation"]["precision_at_20_min"]
                for k in ("strict_mean", "strict_min", "nontrivial_mean"):
                    row[f"precision_at_20_{k}"] = rec["validation"][f"precision_at_20_{k}"]
                row["nontrivial_sources"] = rec["validation"]["nontrivial_sources"]


if __name__ == "__main__":
    sys.exit(main())
