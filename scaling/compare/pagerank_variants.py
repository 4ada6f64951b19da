"""Cost of the PageRank variants against the plain run, side by side and alternating.

    python scaling/compare/pagerank_variants.py --graph kron:16:16 --repeat 7

One rank, one graph loaded once; each repeat solves, in turn, the plain PageRank (the native
1D fast path), the weighted one (weights in (0, 5], multiples of 1/2, deterministic from the
edge: integers times 1/2, so the sweep keeps 16-bit integers: 'int16'), the same with tenths
(integers times 0.1: 'int16' too), the halves with one weight 10^6 + 1/2 (every weight still
exactly a float, but not 16 bits: floats beside the columns, 'values32'), with 200 distinct
random doubles (weights coded into the columns: 'coded'), with random float64 weights (doubles
beside the columns: 'values'), the personalized one (teleport to a random tenth of the
vertices), the weighted + personalized one (networkx's default dangling distribution: the
personalization) and the weighted + personalized + dangling one, every solver made fresh and
freed (setup not timed), each solving once untimed before its timed solve (``--cold``: its
first solve timed). Memory written for the first time reads slowly for its first few passes
here (an 8 MB NumPy array summed in 0.73, 0.64, 0.41, 0.34 ms; SPR's L3 is filled by L2
evictions), and the plain solver's setup times sweeps (column layouts) while the weighted
ones' did not: the untimed solve starts every variant alike. The random and the 200-value
weights are swept in mixed precision with defect correction (``Sweep.refine``: cheap sweeps
on 16-bit integers rounding the weights plus a per-row correction, exact sweeps on the same
packed words with the doubles beside them, or the 200 values from a table; "exact" /
"cheap" count them); the
"(random, exact only)" row is the same weights with HPC_PAGERANK_REFINE=0 (every sweep on the
doubles: the 'values' sweep before refinement), in the same rounds. 16-bit weights are packed
with 16-bit column deltas in one 4-byte word an entry where jumps and padding add at most 5%
(``Sweep.weight_packing`` 'delta16', the layout column shows "delta16 xG", G the packed entries
over the SELL-4 ones); the "(unpacked)" rows are the halves and the random doubles with
HPC_PAGERANK_PACK16=0, in the same rounds.
Reported per variant: the sweep's weight layout and, in brackets, its column layout
(``Sweep.column_layout``: 'sorted32', or 'delta16' where a rank alone timed the 16-bit column
deltas faster; the same bits either way), median solve time, iterations, median time
per iteration, and the ratio to the plain run's time per iteration (the issue's target:
within 1.2x); the same ratio of the process's CPU time (run with OMP_NUM_THREADS=1: time the
rank was not running, as under another process's load, does not count, so this ratio stays
meaningful on a loaded machine where the wall-clock one does not); the load average around
the runs.

``--graph uniform:S:EF`` is a uniform random directed graph (2^S vertices, EF * 2^S edges,
each end uniform), a graph without the Kronecker generator's skew.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from mpi4py import MPI

from hpc.pagerank import graphio
from hpc.pagerank.api import teleport_of
from hpc.pagerank.solver import make_solver


def weighted_copy(g: graphio.Graph, kind: str = "halves") -> graphio.Graph:
    """g with edge weights: 'halves' (0.5..5 by 0.5), 'floats' (the halves, the first edge
    10^6 + 0.5), 'tenths' (0.1..1.1 by 0.1), 'coded' (200 distinct random doubles in
    [0.25, 1.25)) or 'random' (uniform in [0.25, 1.25), every edge its own double)."""
    src = np.repeat(np.arange(g.lo, g.hi, dtype=np.int64), g.outdeg)
    k = (src * 31 + g.out_indices * 17) % 10
    if kind in ("halves", "floats"):
        w = 0.5 + k / 2.0
        if kind == "floats" and len(w):
            w[0] = 1e6 + 0.5
    elif kind == "tenths":
        w = (k + 1) / 10.0
    elif kind == "coded":
        w = (0.25 + np.random.default_rng(7).random(200))[(src * 31 + g.out_indices * 17) % 200]
    else:
        w = 0.25 + np.random.default_rng(7 + g.comm.rank).random(len(src))
    return graphio.from_edges(g.comm, g.n, src, g.out_indices, g.ids, weights=w,
                              source=f"{g.source} weighted ({kind})")


def load(comm, spec: str) -> graphio.Graph:
    """kron:S:EF (the suite's generator), uniform:S:EF or a SNAP/.mtx path."""
    if spec.startswith("kron:"):
        return graphio.load_graph(comm, generate=spec, seed=1)
    if spec.startswith("uniform:"):
        scale, ef = (int(v) for v in spec.split(":")[1:])
        n = 1 << scale
        rng = np.random.default_rng(1 + comm.rank)
        m = ef * n // comm.Get_size()
        src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
        off = graphio.block_offsets(n, comm.Get_size())
        ids = np.arange(off[comm.rank], off[comm.rank + 1], dtype=np.int64)
        return graphio.from_edges(comm, n, src, dst, ids, source=spec)
    return graphio.load_graph(comm, graph=spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", default="kron:16:16", help="kron:S:EF or a SNAP/.mtx path")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--tol", type=float, default=1e-10)
    p.add_argument("--backend", default="native")
    p.add_argument("--cold", action="store_true",
                   help="time each solver's first solve (default: its second, after an "
                        "untimed one)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    g = load(comm, args.graph)
    gw = weighted_copy(g)
    rng = np.random.default_rng(3)
    pers = {int(v): float(rng.random()) for v in rng.choice(g.n, g.n // 10, replace=False)}
    dang = {int(v): 1.0 for v in rng.choice(g.n, g.n // 7, replace=False)}
    cases = {"plain": (g, None), "weighted": (gw, None),
             "weighted (tenths)": (weighted_copy(g, "tenths"), None),
             "weighted (floats)": (weighted_copy(g, "floats"), None),
             "weighted (200 values)": (weighted_copy(g, "coded"), None),
             "weighted (random)": (weighted_copy(g, "random"), None),
             "weighted (random, exact only)": (weighted_copy(g, "random"), None),
             "weighted (unpacked)": (gw, None),
             "weighted (random, unpacked)": (weighted_copy(g, "random"), None),
             "personalized": (g, teleport_of(g, pers)),
             "weighted+personalized": (gw, teleport_of(gw, pers)),
             "weighted+personalized+dangling": (gw, teleport_of(gw, pers, dang))}
    times: dict = {k: [] for k in cases}
    cpu: dict = {k: [] for k in cases}
    its: dict = {}
    layout: dict = {}
    refine: dict = {}
    columns: dict = {}
    packing: dict = {}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, (graph, tp) in cases.items():      # alternating: every variant each round
            env = {"HPC_PAGERANK_REFINE": "0"} if name.endswith("exact only)") else \
                {"HPC_PAGERANK_PACK16": "0"} if name.endswith("unpacked)") else {}
            os.environ.update(env)
            try:
                s = make_solver(graph, args.backend, "1d", tp)
            finally:
                for k in env:
                    del os.environ[k]
            if not args.cold:
                s.solve(0.85, args.tol, 10_000)      # untimed: every variant starts warm
            comm.Barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            r = s.solve(0.85, args.tol, 10_000)
            c1 = time.process_time()
            comm.Barrier()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(c1 - c0)
            its[name] = r.iterations
            sw = getattr(s, "sweep", None)
            layout[name] = getattr(sw, "weight_layout", "-")
            packing[name] = (getattr(sw, "weight_packing", "none"),
                             getattr(sw, "packed_entries", 0) / max(1, getattr(sw, "padded", 1)))
            columns[name] = getattr(sw, "column_layout", "-")
            rc = getattr(sw, "refine_counts", (0, 0))
            refine[name] = (getattr(sw, "refine", "none"), int(rc[0]), int(rc[1]))
            s.free()
    load1 = os.getloadavg()[0]
    rows = []
    base = float(np.median(times["plain"])) / its["plain"]
    cbase = float(np.median(cpu["plain"])) / its["plain"]
    for name in cases:
        t, c = float(np.median(times[name])), float(np.median(cpu[name]))
        rk, nex, nch = refine[name]
        row = {"variant": name, "weight_layout": layout[name], "refine": rk,
               "exact_sweeps": nex, "cheap_sweeps": nch, "solve_s": t, "iterations": its[name],
               "per_iter_s": t / its[name], "per_iter_vs_plain": t / its[name] / base,
               "packing": packing[name][0], "packed_vs_sell4": packing[name][1],
               "column_layout": columns[name],
               "cpu_per_iter_s": c / its[name], "cpu_per_iter_vs_plain": c / its[name] / cbase,
               "load_before": load0, "load_after": load1, "graph": args.graph, "n": g.n,
               "m": g.m, "ranks": comm.Get_size(), "repeat": args.repeat}
        rows.append(row)
        if comm.rank == 0:
            lay = layout[name] + (f"+{rk} ({nex} exact, {nch} cheap)" if rk != "none" else "")
            if packing[name][0] != "none":
                lay += f" {packing[name][0]} x{packing[name][1]:.2f}"
            lay += f" [{columns[name]}]"
            print(f"{name:34s} {lay:57s} {t:.4g} s  {its[name]:4d} it  "
                  f"{t / its[name] * 1e3:.3f} ms/it  "
                  f"{row['per_iter_vs_plain']:.2f}x plain per iteration "
                  f"(CPU time {row['cpu_per_iter_vs_plain']:.2f}x)   "
                  f"load {load0:.1f}->{load1:.1f}", flush=True)
    if args.json and comm.rank == 0:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
