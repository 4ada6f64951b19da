"""hpc.pagerank: distributed PageRank and PowerWalk personalized PageRank (PPR).

    python -m hpc.pagerank [pagerank] --graph G | --generate kron:SCALE:EF   global PageRank
    python -m hpc.pagerank ppr-index --graph G --output INDEX.h5             PowerWalk index
    python -m hpc.pagerank ppr --graph G --sources ID,ID,... [--index INDEX.h5] --topk K

Graphs: SNAP edge lists (whitespace separated, '#'/'%' comments, any non-negative ids;
duplicates collapse and self-loops stay, as in a networkx DiGraph), Matrix Market (.mtx: a
nonzero A[i, j] is the edge i -> j), Graph500 Kronecker graphs, or an HDF5 graph file
written with --cache. Semantics are networkx's: uniform teleport, dangling mass spread
uniformly (global) or returned to the source (PPR), scores sum to 1.
Each subcommand has its own --help.
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import App, UsageError, h5io, run
from hpc.core import backends as registry
from hpc.core import checks
from hpc.core.cli import (AppParser, Formatter, Subcommand, add_common, dispatch,
                          subcommand_epilog)
from hpc.core.atomic import check_output
from hpc.core.memory import require_memory
from hpc.core.progress import Progress
from hpc.core.runtime import collective

from .backends import BACKENDS
from .graphio import Graph, gather_csr, load_graph, read_vertex_values
from .solver import (SWEEPS, Teleport, distribution, iteration_bound, make_solver,
                     reference_pagerank)

# The verbs; each module is imported only when its verb runs (no import of ppr_app here).
COMMANDS = (
    Subcommand("pagerank", "hpc.pagerank.app:run_global", "global PageRank (the default verb)"),
    Subcommand("ppr-index", "hpc.pagerank.ppr_app:run_index",
               "build the PowerWalk fingerprint index"),
    Subcommand("ppr", "hpc.pagerank.ppr_app:run_query",
               "personalized PageRank of a batch of sources"),
)
SUBCOMMANDS = tuple(c.name for c in COMMANDS)
DEFAULT_GENERATE = "kron:12:16"


# -- the options every verb shares ----------------------------------------------------------
# every numeric option's documented, finite range (hpc.core.checks: NaN/Inf/out of range exit 2)
_damping = checks.real(0, 1, lo_open=True, hi_open=True)  # the damping factor d
MAX_ITER = 10_000_000


def add_graph_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("graph")
    g.add_argument("--graph", metavar="PATH",
                   help="SNAP edge list, Matrix Market .mtx, or an HDF5 graph file (--cache)")
    g.add_argument("--generate", metavar="kron:SCALE:EF",
                   help=f"Graph500 Kronecker graph, 2^SCALE vertices, EF*2^SCALE edge draws "
                        f"(A,B,C = 0.57,0.19,0.19, permuted) [default without --graph: "
                        f"{DEFAULT_GENERATE}]")
    g.add_argument("--cache", metavar="PATH",
                   help="HDF5 graph cache: read it if it was built from the same input (the "
                        "SHA-256 of --graph's bytes and its format, or the same --generate "
                        "and --seed) and its content fingerprint checks; else build the "
                        "graph and (re)write it here, saying why")
    g.add_argument("--undirected", action="store_true",
                   help="every edge both ways (networkx's undirected Graph, igraph's "
                        "directed=False)")
    g.add_argument("--damping", type=_damping, default=0.85,
                   help="damping factor d in (0, 1); teleport probability is 1 - d")


def load(app: App, args) -> Graph:
    """The graph the options name (phase load_graph), announced on rank 0."""
    gen = args.generate
    if args.graph is None and gen is None:
        gen = DEFAULT_GENERATE
    if args.cache:   # a cache that cannot be written, or that is the input, fails now
        with collective(app.comm):
            if args.graph is not None and os.path.abspath(args.cache) == os.path.abspath(args.graph):
                raise UsageError(f"--cache {args.cache}: is the --graph file itself")
            if app.rank == 0:
                check_output(args.cache, "--cache")
    with app.timer.phase("load_graph"):
        g = load_graph(app.comm, args.graph, gen, args.seed, args.cache,
                       weights=getattr(args, "weights", False), undirected=args.undirected)
    if g.n == 0:
        raise UsageError(f"--graph {args.graph}: the graph has no vertices")
    app.extra["graph"] = {"source": g.source, "vertices": g.n, "edges": g.m}
    if "cache" in g.info:   # whether the cache was read, or rebuilt and why
        app.extra["graph"]["cache"] = g.info["cache"]
        app.say(f"cache: {g.info['cache']}")
    app.say(f"graph {g.source}: {g.n} vertices, {g.m} edges (duplicates collapsed), "
            f"{app.size} rank(s)")
    return g


# -- global PageRank ------------------------------------------------------------------------
def global_parser() -> AppParser:
    p = AppParser(prog="python -m hpc.pagerank [pagerank]", description=__doc__,
                  epilog=subcommand_epilog(COMMANDS), formatter_class=Formatter)
    add_graph_options(p)
    s = p.add_argument_group("global PageRank")
    s.add_argument("--tol", type=checks.real(0, 1, lo_open=True), default=1e-10,
                   help="stop when the L1 change of the score vector between iterations is "
                        "below this, in (0, 1] (networkx stops at N*tol)")
    s.add_argument("--max-iter", type=checks.integer(1, MAX_ITER), default=1000,
                   help=f"iteration limit, 1..{MAX_ITER}")
    s.add_argument("--weights", action="store_true",
                   help="weighted edges: the third column of a SNAP file, the values of a "
                        "Matrix Market file (finite, >= 0; of duplicate lines the last counts)")
    s.add_argument("--personalization", metavar="PATH",
                   help="teleport distribution: a two-column 'id value' file (normalised; "
                        "vertices not named get 0) [default: uniform]")
    s.add_argument("--dangling", default="personalization",
                   metavar="uniform|personalization|PATH",
                   help="where the dangling mass goes: uniformly, as the teleport (networkx's "
                        "default), or a two-column 'id value' file")
    s.add_argument("--sweep", choices=SWEEPS, default="jacobi",
                   help="jacobi: the power iteration (networkx's); gauss-seidel (1d layout): "
                        "each rank sweeps its block in order with the scores already updated "
                        "(as GAP's pr), the exchange between sweeps; it stops on the Jacobi "
                        "residual (networkx's rule), so the accuracy is the same")
    s.add_argument("--relax", choices=("on", "off"), default="off",
                   help="on: where the L1 change settles at the rate d (a periodic component: "
                        "a star, a path, a reciprocal pair, a cycle), one Jacobi step is "
                        "relaxed, (d x + G(x)) / (1 + d), removing that tail (the stop is "
                        "still each step's Jacobi change; GAP's kron:19 to 1e-10: 36 "
                        "iterations, not 64); off (default): networkx's own iterates")
    s.add_argument("--layout", choices=("1d", "2d"), default="1d",
                   help="1d: row blocks with ghost exchange; 2d: pr x pc blocks (CombBLAS)")
    s.add_argument("--check", action="store_true",
                   help="also compare with a serial SciPy power iteration on rank 0 "
                        "(max abs error; small graphs)")
    add_common(p, backends=list(BACKENDS), default_backend="native")
    return p


def run_global(argv: Sequence[str]) -> int:
    args = global_parser().parse_args(argv)
    registry.require(BACKENDS[args.backend][1], list(BACKENDS))
    if args.sweep == "gauss-seidel" and (args.layout != "1d" or args.backend == "cupy"):
        raise UsageError("--sweep gauss-seidel: needs --layout 1d and a host back end")
    app = App("pagerank", args)
    g = load(app, args)
    tp = _teleport(app, g, args)
    with app.timer.phase("setup"):
        solver = make_solver(g, args.backend, args.layout, tp, sweep=args.sweep)
        solver.relax = args.relax == "on"
    res = None
    bound = iteration_bound(args.damping, args.tol, args.max_iter)
    for _ in range(args.repeat):
        # progress on rank 0 (collective-free): total = the contraction's iteration bound
        with Progress(bound, "pagerank", app.comm, quiet=app.quiet) as prog, \
                app.timer.phase("solve"):
            res = solver.solve(args.damping, args.tol, args.max_iter,
                               progress=lambda it, ch: prog.set(it, l1_change=f"{ch:.2e}"))
    assert res is not None
    passed, validation = _validate_global(app, g, solver, res, args)
    t = app.timer.summary()
    _global_metrics(app, g, solver, res, args, t)
    if args.output:
        h5io.write(args.output, app.comm, {
            "/vertex_ids": h5io.Distributed(g.ids),
            "/pagerank": h5io.Distributed(res.x),
        }, attrs={"/": {"damping": args.damping, "tol": args.tol, "iterations": res.iterations,
                        "graph": g.source}})
    solver.free()  # communicators of the plan / grid (the suite runs many apps in one job)
    if app.rank == 0 and not app.quiet and g.n <= 20:
        for v, s in zip(g.ids, res.x):
            print(f"  {v}: {s:.6g}")
    return app.finish(passed, validation, t)


def _teleport(app: App, g: Graph, args) -> Teleport:
    """--personalization and --dangling as this rank's blocks of the distributions."""
    pers = read_vertex_values(args.personalization, app.comm, "--personalization") \
        if args.personalization else None
    if args.dangling == "personalization":
        dang = None
    elif args.dangling == "uniform":
        dang = np.ones(g.n) if pers is not None else None   # same as the default then
    else:
        dang = read_vertex_values(args.dangling, app.comm, "--dangling")
    with collective(app.comm):
        tp = Teleport(distribution(g, pers, "--personalization"),
                      distribution(g, dang, "--dangling"))
    app.extra["variant"] = {"weights": bool(args.weights), "undirected": bool(args.undirected),
                            "personalization": args.personalization or "uniform",
                            "dangling": args.dangling}
    return tp


def _validate_global(app: App, g: Graph, solver, res, args) -> tuple[bool, dict]:
    change, total = solver.residual(res.x, args.damping)
    validation = {"converged": res.converged, "iterations": res.iterations,
                  "l1_change": res.l1_change, "tol": args.tol,
                  "fixed_point_residual_l1": change, "sum": total}
    # The map is a d-contraction in L1, so the residual of the returned iterate is at most
    # d times the last change; sum 1 holds to rounding.
    passed = res.converged and change <= args.tol and abs(total - 1.0) <= 1e-9
    if args.check:
        passed = _check_global(app, g, res.x, args, validation, solver) and passed
    return passed, validation


def _check_global(app: App, g: Graph, x_local: np.ndarray, args, validation: dict,
                  solver) -> bool:
    require_memory(40.0 * (g.m + g.n) if app.rank == 0 else 0, "--check (serial reference)", app.comm)
    A = gather_csr(g)
    parts = app.comm.gather(x_local)
    tp = getattr(solver, "teleport", None) or Teleport()
    pv = app.comm.gather(tp.personalization) if tp.personalization is not None else None
    dv = app.comm.gather(tp.dangling) if tp.dangling is not None else None
    ok = True
    if app.rank == 0:
        ref = reference_pagerank(A, args.damping,
                                 personalization=np.concatenate(pv) if pv else None,
                                 dangling=np.concatenate(dv) if dv else None)
        err = float(np.abs(np.concatenate(parts) - ref).max())
        validation["max_abs_err_vs_scipy"] = err
        ok = err <= max(10 * args.tol, 1e-12)
    ok = app.comm.bcast(ok)
    validation["reference_check"] = bool(ok)
    return ok


def _global_metrics(app: App, g: Graph, solver, res, args, t: dict) -> None:
    solve = t["solve"]["min"]
    per_it = solve / max(res.iterations, 1)
    app.metrics.update({
        "iterations": res.iterations, "time_s": solve, "time_per_iter_s": per_it,
        "edges_per_s": g.m / per_it if per_it > 0 else 0.0,
        "gteps": g.m / per_it / 1e9 if per_it > 0 else 0.0,
        "vertices": g.n, "edges": g.m, "layout": args.layout, "sweep": args.sweep,
        "relaxed_steps": int(res.relaxed),
    })
    if args.layout == "2d":
        app.extra["grid"] = list(solver.grid)
    else:
        app.metrics["ghosts_max"] = int(app.comm.allreduce(solver.ghosts, op=MPI.MAX))
        if hasattr(solver, "mode"):   # Native1D: local / piggyback / allreduce / replicated
            app.metrics["mode"] = solver.mode
            app.extra["mode_probe_s"] = dict(getattr(solver, "probe", {}))
    steps = getattr(solver, "setup_times", None)
    if steps is not None:   # where the setup phase went (seconds per step, slowest rank)
        # the union of the ranks' steps (a rank may time a choice the others do not have)
        keys = sorted(set().union(*app.comm.allgather(list(steps))))
        app.extra["setup_steps_s"] = {k: float(app.comm.allreduce(steps.get(k, 0.0), op=MPI.MAX))
                                      for k in keys}
    sweep = getattr(solver, "sweep", None)
    if sweep is not None and hasattr(sweep, "column_layout"):   # each rank's (same bits)
        rep = getattr(solver, "_rep", None)
        lay = (rep.sweep if rep is not None else sweep).column_layout
        app.extra["column_layouts"] = app.comm.allgather(lay)
    app.say(f"{res.iterations} iterations, {solve:.4g} s ({per_it * 1e3:.3g} ms/iter, "
            f"{app.metrics['edges_per_s'] / 1e6:.1f} M edges/s), L1 change {res.l1_change:.3g}")


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("python -m hpc.pagerank", COMMANDS, argv, default="pagerank",
                    description=__doc__)


if __name__ == "__main__":
    run(main)
