"""hpc.suite: run every available workload at laptop size and print one VALID/INVALID table.

The suite's main job (`make demo` runs it under `mpiexec -n 4`). Every workload runs in this
same MPI job, one after another, with small arguments; each validates its own answer. A
workload missing from this build, or a back end missing on this machine, shows as SKIPPED
with the reason. Exit status 0 only if everything that ran was VALID.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
import time
from typing import Sequence

from hpc.core import EXIT_INVALID, EXIT_OK, UsageError, make_parser, run, world
from hpc.core import atomic
from hpc.core import backends as registry

# (label, app, back end it needs or None, argv): the schedule is data. A need ending in
# ":square" also needs a square rank count (2D layouts), ":div4" a multiple of 4.
SUITE: list[tuple[str, str, str | None, list[str]]] = [
    ("stream/numpy", "stream", "numpy", ["--backend", "numpy", "-s", "1048576", "-n", "10"]),
    ("stream/numba", "stream", "numba", ["--backend", "numba", "-s", "1048576", "-n", "10"]),
    ("stream/native", "stream", "native", ["--backend", "native", "-s", "1048576", "-n", "10"]),
    ("stream/stdpar", "stream", "stdpar", ["--backend", "stdpar", "-s", "1048576", "-n", "10"]),
    ("stream/kokkos", "stream", "kokkos", ["--backend", "kokkos", "-s", "1048576", "-n", "10"]),
    ("stream/cupy", "stream", "cupy", ["--backend", "cupy", "-s", "16777216", "-n", "10"]),
    ("stream/cuda", "stream", "cuda", ["--backend", "cuda", "-s", "16777216", "-n", "10"]),
    ("halo", "halo", None, ["--grid", "16", "12", "10", "--radius", "2", "--quantities", "2",
                            "--iterations", "5", "--repeat", "2"]),
    ("pagerank", "pagerank", "native", ["--generate", "kron:12:8", "--check"]),
    ("pagerank/2d", "pagerank", "native", ["--generate", "kron:12:8", "--layout", "2d", "--check"]),
    ("pagerank/ppr", "pagerank", "native", ["ppr", "--generate", "kron:10:8", "--sources", "random:50",
                                            "--check"]),
    ("kmedoids", "kmedoids", None, ["--data", "blobs:2000:8:10", "--k", "10", "--method", "fasterpam"]),
    ("spgemm/1d", "spgemm", "native", ["--generate", "rmat:10:8", "--layout", "1d"]),
    ("spgemm/2d", "spgemm", "native:square", ["--generate", "rmat:10:8", "--layout", "2d"]),
    ("cg/pcg-mg", "cg", "native", ["--problem", "hpcg:16", "--method", "pcg", "--pc", "mg"]),
    ("cg/pipecg", "cg", "native", ["--problem", "poisson3d:16", "--method", "pipecg"]),
    ("cg/dcdm", "cg", None, ["--problem", "poisson3d:16", "--method", "dcdm", "--rtol", "1e-6",
                             "--backend", "numpy"]),
    ("train/dp", "train", None, ["--layers", "2", "--hidden", "32", "--heads", "4", "--seq-len",
                                 "32", "--global-batch", "12", "--micro-batches", "1", "--steps",
                                 "3", "--dtype", "float64"]),
    ("train/tp2xpp2", "train", ":div4", ["--tp", "2", "--pp", "2", "--layers", "4", "--hidden", "32",
                              "--heads", "4", "--seq-len", "32", "--global-batch", "8",
                              "--micro-batches", "4", "--steps", "4", "--dtype", "float64"]),
]

# The figure shown for each app in the table.
HEADLINE = {
    "stream": ("triad_GBps", "triad GB/s"),
    "halo": ("exchange_us", "us/exchange"),
    "pagerank": ("iterations", "iterations"),
    "kmedoids": ("loss", "loss"),
    "spgemm": ("gflops", "GFLOP/s"),
    "cg": ("iterations", "iterations"),
    "train": ("tokens_per_s", "tokens/s"),
}


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def parser():
    p = make_parser("suite", __doc__)
    p.add_argument("--only", metavar="APP[,APP...]", help="run only these workloads")
    p.add_argument("--list", action="store_true", help="print the schedule and exit")
    return p


def _app_main(app: str):
    if importlib.util.find_spec(f"hpc.{app}") is None:
        return None
    try:
        return importlib.import_module(f"hpc.{app}.app").main
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"hpc.{app}"):
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    comm = world()
    rank = comm.Get_rank()
    only = set(args.only.split(",")) if args.only else None
    schedule = [s for s in SUITE if only is None or s[1] in only or s[0] in only]
    if args.list:
        if rank == 0:
            for label, _, _, argv_ in schedule:
                print(f"{label:<18} {' '.join(argv_)}")
        return EXIT_OK
    say = (lambda *m: print(*m, flush=True)) if rank == 0 and not args.quiet else (lambda *m: None)
    say(f"hpc suite on {comm.Get_size()} rank(s): {len(schedule)} runs")
    tmpdir = comm.bcast(tempfile.mkdtemp(prefix="hpc-suite-") if rank == 0 else None)
    rows, records = [], {}
    for label, app, need, app_argv in schedule:
        main_fn = _app_main(app)
        if main_fn is None:
            rows.append((label, "SKIPPED", "", "", f"hpc.{app} is not in this build"))
            continue
        need, _, shape = (need or "").partition(":")
        why = registry.why_unavailable(need) if need else None
        if shape == "square" and int(comm.Get_size() ** 0.5) ** 2 != comm.Get_size():
            why = f"needs a square number of ranks, not {comm.Get_size()}"
        if shape == "div4" and comm.Get_size() % 4:
            why = f"needs a multiple of 4 ranks, not {comm.Get_size()}"
        if why:
            rows.append((label, "SKIPPED", "", "", why))
            continue
        out = os.path.join(tmpdir, label.replace("/", "_") + ".json")
        say(f"-- {label}: python -m hpc.{app} {' '.join(app_argv)}")
        t0 = time.perf_counter()
        try:
            code = main_fn(list(app_argv) + ["--json", out, "--quiet"])
        except UsageError as err:  # raised on every rank: the workload could not start
            rows.append((label, "ERROR", "", "", str(err)))
            continue
        dt = time.perf_counter() - t0
        comm.Barrier()
        if rank == 0:
            import json

            rec = json.load(open(out))
            records[label] = rec
            key, unit = HEADLINE.get(app, (None, ""))
            fig = rec["metrics"].get(key) if key else None
            figure = _fmt(fig) + f" {unit}" if isinstance(fig, (int, float)) else ""
            rows.append((label, "VALID" if code == 0 else "INVALID", figure, f"{dt:.1f}s", ""))
    if rank == 0:
        width = max([len("workload")] + [len(r[0]) for r in rows]) + 2
        say("")
        say(f"{'workload':<{width}}{'verdict':<9}{'figure':>22}{'time':>9}  notes")
        for label, verdict, figure, dt, note in rows:
            say(f"{label:<{width}}{verdict:<9}{figure:>22}{dt:>9}  {note}")
        ran = [r for r in rows if r[1] not in ("SKIPPED",)]
        bad = [r for r in ran if r[1] != "VALID"]
        say(f"\n{len(ran) - len(bad)} VALID, {len(bad)} not valid, "
            f"{len(rows) - len(ran)} skipped")
        if args.json:
            atomic.write_json(args.json, {"app": "suite", "ranks": comm.Get_size(),
                                          "runs": [dict(zip(("label", "verdict", "figure", "time", "note"), r)) for r in rows],
                                          "records": records,
                                          "validation": {"passed": not bad}})
        status = EXIT_OK if not bad else EXIT_INVALID
    else:
        status = None
    return comm.bcast(status)


if __name__ == "__main__":
    run(main)
