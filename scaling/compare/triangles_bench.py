"""Triangle counting side by side: hpc.spgemm's masked L Lᵀ<L> against GAP's ``tc`` and
SuiteSparse:GraphBLAS's masked ``mxm`` (plus_pair, then a reduction), on R-MAT and the real
graphs, at the given thread counts.

Every graph is made simple and undirected once and written as a GAP edge list (.el), so all
three count the same graph (GAP with -s symmetrizes it again, a no-op). Rounds interleave the
three counters; the table gives each one's median over the rounds and the ratios of medians
(targets: >= 1.0 against both at 2 threads). What is timed:

- hpc: ``masked_count`` (fetch of U's rows and the masked count; the graph build excluded);
- GraphBLAS: ``C<L> = L plus_pair Lᵀ`` (``mxm`` with a structural mask) and its ``reduce``,
  the conversion from SciPy excluded;
- GAP: its own "Trial Time" of one trial (graph loading excluded; its degree relabelling, when
  its heuristic asks for one, included, as GAP reports it).

GAP is built from ../shared/refs/gapbs.tar.gz into ~/.cache/hpc-gapbs (never the checkout).

    python scaling/compare/triangles_bench.py --rmat 16 --graphs --threads 1 2 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.partition import block_offsets
from hpc.sparse.randgen import rmat_edges
from hpc.spgemm.triangles import masked_count, split_triangles, undirected_simple

SHARED = Path(__file__).resolve().parents[3] / "shared"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hpc-gapbs"


def gap_tc() -> Path | None:
    exe = CACHE / "gapbs" / "tc"
    if exe.exists():
        return exe
    tgz = SHARED / "refs" / "gapbs.tar.gz"
    if not tgz.exists():
        print(f"# {tgz} missing: GAP skipped")
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as t:
        t.extractall(CACHE)
    subprocess.run(["make", "-C", str(CACHE / "gapbs"), "tc"], check=True,
                   capture_output=True)
    return exe


def graph(name: str, seed: int):
    """(n, src, dst) of a graph, as given (directed, duplicates possible)."""
    if name.startswith("rmat"):
        scale = int(name[4:])
        s, d = rmat_edges(scale, 16, seed, None)
        return 1 << scale, s, d
    e = np.loadtxt(SHARED / "data" / "graphs" / name, comments="#", dtype=np.int64, ndmin=2)
    ids, inv = np.unique(e[:, :2], return_inverse=True)
    inv = inv.reshape(-1, 2)
    return ids.size, inv[:, 0], inv[:, 1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rmat", type=int, nargs="*", default=[16])
    p.add_argument("--graphs", action="store_true", help="also the graphs in shared/data")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    comm = MPI.COMM_SELF
    names = [f"rmat{s}" for s in a.rmat]
    if a.graphs:
        names += sorted(f.name for f in (SHARED / "data" / "graphs").glob("*.txt"))
    tc = gap_tc()
    try:
        import graphblas as gb

        gb.init("suitesparse", blocking=True)
    except ImportError:
        gb = None
        print("# python-graphblas not installed: GraphBLAS skipped")
    print(f"# {os.cpu_count()} cores; median of {a.rounds} interleaved rounds; "
          f"load {os.getloadavg()}")
    print(f"{'graph':<22}{'thr':>4}{'triangles':>12}{'hpc_s':>10}{'gb_s':>10}{'gap_s':>10}"
          f"{'gb/hpc':>8}{'gap/hpc':>8}")
    for name in names:
        n, s, d = graph(name, a.seed)
        off = block_offsets(n, 1)
        adj = undirected_simple(comm, n, s, d, off)
        Lo, Up = split_triangles(comm, adj, n, off)
        coo = sp.tril(adj, k=-1).tocoo()
        el = CACHE / f"{name}.el"
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savetxt(el, np.column_stack((coo.row, coo.col)), fmt="%d")
        Lg = gb.io.from_scipy_sparse(sp.csr_matrix(Lo.local, dtype=np.int64)) if gb else None
        for t in a.threads:
            times = {"hpc": [], "gb": [], "gap": []}
            want = masked_count(Lo, Up, Lo, t)
            for _ in range(a.rounds):
                t0 = time.perf_counter()
                got = masked_count(Lo, Up, Lo, t)
                times["hpc"].append(time.perf_counter() - t0)
                assert got == want
                if gb is not None:
                    gb.ss.config["nthreads"] = t
                    t0 = time.perf_counter()
                    C = gb.Matrix(gb.dtypes.INT64, n, n)
                    C(Lg.S) << gb.semiring.plus_pair(Lg @ Lg.T)
                    cnt = C.reduce_scalar(gb.monoid.plus).new().value
                    times["gb"].append(time.perf_counter() - t0)
                    assert int(cnt) == want, (cnt, want)
                if tc is not None:
                    r = subprocess.run([str(tc), "-f", str(el), "-s", "-n", "1"],
                                       capture_output=True, text=True,
                                       env={**os.environ, "OMP_NUM_THREADS": str(t)})
                    m = re.search(r"Trial Time:\s+([\d.]+)", r.stdout)
                    times["gap"].append(float(m.group(1)) if m else float("nan"))
                    c = re.search(r"(\d+) triangles", r.stdout)
                    assert c is None or int(c.group(1)) == want, (r.stdout, want)
            med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
            print(f"{name:<22}{t:>4}{want:>12}{med['hpc']:>10.4f}{med['gb']:>10.4f}"
                  f"{med['gap']:>10.4f}{med['gb'] / med['hpc']:>8.2f}"
                  f"{med['gap'] / med['hpc']:>8.2f}", flush=True)
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
