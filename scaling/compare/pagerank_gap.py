"""Global PageRank solve time against GAP's ``pr`` (the GAP Benchmark Suite, Beamer et al.),
the same directed graph given to both, side by side and alternating.

    python scaling/compare/pagerank_gap.py --graphs kron:17,email,gnutella \
        --configs 1x1,1x2,2x1 --repeat 5 --tol 1e-10

GAP is built by this script from ../shared/refs/gapbs.tar.gz (read, never copied into the
checkout) with the compiler the suite was built with (build/dev/CMakeCache.txt, else c++) and
``-O3 -fopenmp``, into a cache outside the checkout ($XDG_CACHE_HOME/hpc/, keyed by the
tarball's hash and the compiler), once.

Graphs: ``kron:S`` is GAP's own Kronecker graph (``converter -g S -e``: symmetrized, so every
edge is there in both directions, self-loops and duplicates removed), ``email``/``gnutella``
the real graphs (deduplicated, self-loops dropped, as GAP's builder would). Both read one
file: GAP the edge list, this suite the same edges as Matrix Market with GAP's vertex count
(isolated vertices included), read through ``--cache`` so only the first run parses it.

Configurations ``RxT``: this suite on R ranks x T OpenMP threads, GAP on R*T threads (equal
cores). Each repeat runs every configuration of GAP and of the suite in turn (alternating,
so machine load hits both alike). Times are solve only: GAP's "Trial Time" (its PageRank
loop; graph already built), the suite's ``solve`` phase (slowest rank). Both stop at the
first sweep whose L1 change is below --tol (GAP: Gauss-Seidel sweeps in float32 without the
dangling term; the suite: networkx's iteration in float64, --sweep jacobi or gauss-seidel,
with --relax on by default: where the change settles at the rate d, one relaxed Jacobi step
removes a periodic component's tail, each step's Jacobi change still the stop; --relax off
gives networkx's own iterates). Reported: median times, GAP / suite (> 1: the suite is
faster), iterations (and the suite's relaxed steps), the suite's fixed-point residual, each configuration's speedup over 1x1 (the suite's, and GAP's on as
many threads), and the load average around the runs (os.getloadavg()).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
TARBALL = SHARED / "refs" / "gapbs.tar.gz"
DATA = SHARED / "data" / "graphs"
ALIASES = {"email": DATA / "email-Eu-core.txt", "gnutella": DATA / "p2p-Gnutella08.txt"}


def compiler() -> str:
    cache = ROOT / "build" / "dev" / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", cache.read_text(), re.M)
        if m:
            return m.group(1).strip()
    return shutil.which("c++") or "c++"


def build_gap() -> Path:
    """GAP's pr and converter, built once into the user's cache (not the checkout)."""
    cxx = compiler()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(TARBALL.read_bytes() + cxx.encode() + version.encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hpc" / f"gapbs-{key}"
    if (base / "gapbs" / "pr").exists() and (base / "gapbs" / "converter").exists():
        return base / "gapbs"
    base.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "xzf", str(TARBALL), "-C", str(base)], check=True)
    subprocess.run(["make", "-C", str(base / "gapbs"), f"CXX={cxx}", "pr", "converter"],
                   check=True, capture_output=True, timeout=900)
    return base / "gapbs"


def prepare(spec: str, gap: Path, work: Path) -> tuple[Path, Path, int, int]:
    """(edge list for GAP, Matrix Market for the suite, n, m) of one graph."""
    el, mtx = work / f"{spec.replace(':', '_')}.el", work / f"{spec.replace(':', '_')}.mtx"
    if spec.startswith("kron:"):
        subprocess.run([str(gap / "converter"), "-g", spec.split(":")[1], "-e", str(el)],
                       check=True, capture_output=True, timeout=900)
        e = np.loadtxt(el, dtype=np.int64).reshape(-1, 2)
    else:
        raw = np.loadtxt(ALIASES.get(spec, spec), dtype=np.int64, comments=["#", "%"]).reshape(-1, 2)
        ids, inv = np.unique(raw, return_inverse=True)
        e = inv.reshape(-1, 2)
        e = e[e[:, 0] != e[:, 1]]
        e = np.unique(e, axis=0)
        np.savetxt(el, e, fmt="%d")
    n = int(e.max()) + 1
    with open(mtx, "w") as f:
        f.write(f"%%MatrixMarket matrix coordinate pattern general\n{n} {n} {len(e)}\n")
        np.savetxt(f, e + 1, fmt="%d")
    return el, mtx, n, len(e)


def run_gap(gap: Path, el: Path, threads: int, tol: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_PROC_BIND": "false"}
    out = subprocess.run([str(gap / "pr"), "-f", str(el), "-t", str(tol), "-i", "10000",
                          "-n", "1", "-l"], capture_output=True, text=True, env=env, check=True,
                         timeout=900).stdout
    t = float(re.search(r"Trial Time:\s+([\d.]+)", out).group(1))
    its = len(re.findall(r"^\s*\d+\s+[\d.e+-]+\s*$", out, re.M))
    return {"time_s": t, "iterations": its}


def run_suite(mtx: Path, cache: Path, ranks: int, threads: int, tol: float, sweep: str,
              relax: str = "off") -> dict:
    rec = run_record(ranks, "hpc.pagerank", ["--graph", mtx, "--cache", cache, "--tol", tol,
                                             "--threads", threads, "--sweep", sweep,
                                             "--relax", relax, "--max-iter", 10000, "--quiet"],
                     env={"OMP_NUM_THREADS": str(threads)}, progress="auto", timeout=900)
    return {"time_s": rec["timings"]["solve"]["min"], "iterations": rec["metrics"]["iterations"],
            "residual": rec["validation"]["fixed_point_residual_l1"],
            "mode": rec["metrics"].get("mode", "-"),
            "relaxed": rec["metrics"].get("relaxed_steps", 0)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", default="kron:17,email,gnutella")
    p.add_argument("--configs", default="1x1,1x2,2x1", help="RANKSxTHREADS of the suite")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--tol", type=float, default=1e-10)
    p.add_argument("--sweep", choices=("jacobi", "gauss-seidel"), default="jacobi")
    p.add_argument("--relax", choices=("on", "off"), default="on",
                   help="the suite's --relax: on (default here) relaxes a Jacobi step where the "
                        "change settles at the rate d (a periodic component's tail); the stop "
                        "is still each step's Jacobi change below --tol")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    gap = build_gap()
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="hpc_gap_") as tmp:
        work = Path(tmp)
        for spec in args.graphs.split(","):
            el, mtx, n, m = prepare(spec, gap, work)
            cache = work / f"{spec.replace(':', '_')}.h5"
            load0 = os.getloadavg()[0]
            runs: dict = {c: {"gap": [], "suite": []} for c in configs}
            run_suite(mtx, cache, 1, 1, args.tol, args.sweep, args.relax)   # the cache (warm-up)
            for _ in range(args.repeat):          # alternating: GAP, suite, next config
                for r, t in configs:
                    runs[(r, t)]["gap"].append(run_gap(gap, el, r * t, args.tol))
                    runs[(r, t)]["suite"].append(run_suite(mtx, cache, r, t, args.tol, args.sweep,
                                                           args.relax))
            load1 = os.getloadavg()[0]
            for (r, t), rr in runs.items():
                tg = float(np.median([x["time_s"] for x in rr["gap"]]))
                ts = float(np.median([x["time_s"] for x in rr["suite"]]))
                row = {"graph": spec, "n": n, "m": m, "ranks": r, "threads": t,
                       "gap_threads": r * t, "gap_s": tg, "suite_s": ts, "gap_over_suite": tg / ts,
                       "gap_iterations": rr["gap"][-1]["iterations"],
                       "suite_iterations": rr["suite"][-1]["iterations"],
                       "suite_residual_l1": rr["suite"][-1]["residual"],
                       "suite_modes": sorted({x["mode"] for x in rr["suite"]}),
                       "suite_relax": args.relax, "suite_relaxed_steps": rr["suite"][-1]["relaxed"],
                       "load_before": load0, "load_after": load1, "repeat": args.repeat}
                results.append(row)
                print(f"{spec:10s} n={n} m={m} {r}x{t} (GAP {r * t} thr): GAP {tg:.4g} s "
                      f"({row['gap_iterations']} it), suite {ts:.4g} s "
                      f"({row['suite_iterations']} it, {row['suite_relaxed_steps']} relaxed, "
                      f"residual {row['suite_residual_l1']:.2g}, "
                      f"{'/'.join(row['suite_modes'])}) "
                      f"-> GAP/suite {tg / ts:.2f}x   load {load0:.1f}->{load1:.1f}", flush=True)
    for spec in args.graphs.split(","):      # scaling: the hybrid target is 1x2 >= 1.8x 1x1
        rows = {(r["ranks"], r["threads"]): r for r in results if r["graph"] == spec}
        if (1, 1) not in rows:
            continue
        one = rows[(1, 1)]
        for (r, t), row in rows.items():
            if (r, t) == (1, 1):
                continue
            row["suite_speedup_vs_1x1"] = one["suite_s"] / row["suite_s"]
            row["gap_speedup_vs_1_thread"] = one["gap_s"] / row["gap_s"]
            print(f"{spec:10s} {r}x{t} over 1x1: suite {row['suite_speedup_vs_1x1']:.2f}x, "
                  f"GAP {r * t} threads over 1 {row['gap_speedup_vs_1_thread']:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
