"""HPCG: the reference xhpcg (HPCG 3.1) and `python -m hpc.cg hpcg`, side by side.

Builds xhpcg once from ../shared/refs/hpcg-3.1.tar.gz (`configure MPI_GCC_OMP` with the
venv's mpicxx, the same MPI and compiler as the suite) into a cache directory outside the
checkout ($HPC_COMPARE_CACHE, default ~/.cache/hpc-compare), then runs both on the same ranks,
threads, local size and --rt, ALTERNATING (xhpcg, suite, xhpcg, suite, ...), and reports per
case both GFLOP/s ratings (HPCG's final rating: with the convergence and optimisation-phase
overheads), both verdicts, the ratio of the median ratings, the ratio of flops per CPU second
(each whole run's CPU time, process start included: less sensitive to a loaded machine than
the wall-clock rating) and the machine load:

    .venv/bin/python scaling/compare/hpcg_compare.py                      # the issue's cases
    .venv/bin/python scaling/compare/hpcg_compare.py --case 2x1:32 --rt 5 --repeats 3
    .venv/bin/python scaling/compare/hpcg_compare.py --case 2x1:64 --progress auto --bind core
    .venv/bin/python scaling/compare/hpcg_compare.py --build-only         # prints xhpcg's path

A case RANKSxTHREADS:N runs N^3 points per rank. Default cases: 1x1 and 2x1 at 32^3 and 64^3,
1x2 at 64^3 (xhpcg's SYMGS is serial there), 1x1 at 104^3. Target: VALID where the reference
is VALID and a rating at least 1.5x the reference's. On a loaded machine a single rating is
noise: look at the medians, the load printed beside them, and rerun when the load is high.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from hpc.core.launch import cores, find_mpiexec, progress_env, run_record

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT.parent / "shared" / "refs" / "hpcg-3.1.tar.gz"
CACHE = Path(os.environ.get("HPC_COMPARE_CACHE", Path.home() / ".cache" / "hpc-compare"))
DEFAULT_CASES = ("1x1:32", "2x1:32", "1x1:64", "2x1:64", "1x2:64", "1x1:104")


def build_xhpcg() -> Path:
    """xhpcg built from the tarball (once; later calls reuse it)."""
    src = CACHE / "hpcg-3.1"
    exe = src / "build" / "bin" / "xhpcg"
    if exe.exists():
        return exe
    if not TARBALL.exists():
        raise SystemExit(f"error: {TARBALL} not found (HPCG 3.1's sources)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tarfile.open(TARBALL) as t:
        t.extractall(CACHE, filter="data")
    build = src / "build"
    build.mkdir(exist_ok=True)
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    if shutil.which("mpicxx", path=env["PATH"]) is None:
        raise SystemExit("error: no mpicxx on PATH (the mpich wheel installs one into the venv)")
    for cmd in (["../configure", "MPI_GCC_OMP"], ["make", "-j2"]):
        r = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"error: {' '.join(cmd)} failed in {build}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return exe


def read_report(run_dir: Path) -> dict:
    """The figures of xhpcg's report (HPCG-Benchmark_3.1_*.txt) in ``run_dir``."""
    reports = sorted(Path(run_dir).glob("HPCG-Benchmark*.txt"))
    if not reports:
        raise RuntimeError(f"xhpcg wrote no report in {run_dir}")
    kv = {}
    for line in reports[-1].read_text().splitlines():
        key, _, value = line.partition("=")
        kv[key.strip()] = value.strip()

    def num(suffix: str) -> float:
        for k, v in kv.items():
            if k.endswith(suffix):
                return float(v)
        return float("nan")

    valid_key = "Final Summary::HPCG result is VALID with a GFLOP/s rating of"
    return {"valid": valid_key in kv,
            "rating": float(kv[valid_key]) if valid_key in kv else 0.0,
            "no_prec": int(num("Unpreconditioned::Maximum iteration count")),
            "prec": int(num("Preconditioned::Maximum iteration count")),
            "dep_spmv": num("Departure for SpMV"), "dep_mg": num("Departure for MG"),
            "residual": num("Scaled residual mean"),
            "opt_iters": int(num("Optimized CG iterations per set")),
            "total_s": num("Benchmark Time Summary::Total"),
            "flops": num("Total with convergence overhead")}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def binding_env(bind: str, threads: int) -> dict[str, str]:
    """Hydra's process binding for both sides: ``core`` binds each rank to ``threads`` cores
    of its own (``-bind-to core:T``), ``none`` leaves placement to the OS."""
    return {"HYDRA_BINDING": f"core:{threads}"} if bind == "core" else {}


def run_xhpcg(exe: Path, ranks: int, threads: int, n: int, rt: float,
              progress: str = "throttle", bind: str = "none") -> dict:
    """One xhpcg run in a fresh directory; its report's figures."""
    with tempfile.TemporaryDirectory(prefix="xhpcg-") as d:
        env = progress_env(progress, ranks * threads,
                           extra={"OMP_NUM_THREADS": str(threads), **binding_env(bind, threads)})
        cmd = [find_mpiexec(), "-n", str(ranks), str(exe), f"--nx={n}", f"--ny={n}", f"--nz={n}",
               f"--rt={int(round(rt))}"]
        cpu = _children_cpu()
        r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=3600)
        cpu = _children_cpu() - cpu
        if r.returncode != 0:
            raise RuntimeError(f"xhpcg failed: {r.stderr[-1000:]}")
        return {**read_report(Path(d)), "cpu_s": cpu}


def run_suite(ranks: int, threads: int, n: int, rt: float, progress: str = "throttle",
              bind: str = "none") -> dict:
    cpu = _children_cpu()
    if progress == "auto":   # the same decision progress_env makes for xhpcg
        progress = "throttle" if ranks * threads > cores() else "busy"
    rec = run_record(ranks, "hpc.cg", ["hpcg", "--nx", str(n), "--ny", str(n), "--nz", str(n),
                                       "--rt", str(rt), "--quiet"],
                     progress=progress,
                     env={"OMP_NUM_THREADS": str(threads), **binding_env(bind, threads)}, timeout=3600,
                     cwd=ROOT, allow_invalid=True)
    m = rec["metrics"]
    return {"valid": bool(rec["validation"]["passed"]), "rating": m["gflops_rating"],
            "no_prec": m["spectral"]["max_iters_no_prec"], "prec": m["spectral"]["max_iters_prec"],
            "opt_iters": m["optimised_iterations"], "residual": m["reference_scaled_residual"],
            "total_s": m["phase_times_s"]["total"], "flops": m["flops"]["with_convergence"],
            "cpu_s": _children_cpu() - cpu}


def parse_case(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d+)x(\d+):(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected RANKSxTHREADS:N, got {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", type=parse_case, action="append",
                   help="RANKSxTHREADS:N (repeatable) [default: the issue's cases]")
    p.add_argument("--rt", type=float, default=10.0, help="HPCG --rt seconds per run")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each side")
    p.add_argument("--build-only", action="store_true", help="build xhpcg, print its path")
    p.add_argument("--progress", choices=("throttle", "busy", "auto"), default="throttle",
                   help="MPI progress mode of both sides (hpc.core.launch): throttle (yield "
                        "while waiting; a loaded machine), busy (MPICH's polling; a quiet one), "
                        "auto (busy when ranks x threads fit the cores) [throttle]")
    p.add_argument("--bind", choices=("none", "core"), default="none",
                   help="process binding of both sides: core (each rank on THREADS cores of "
                        "its own, mpiexec -bind-to core:THREADS; a quiet machine), none (the OS "
                        "places them; a loaded one) [none]")
    p.add_argument("--json", help="write every run's figures here")
    a = p.parse_args(argv)
    exe = build_xhpcg()
    if a.build_only:
        print(exe)
        return 0
    cases = a.case or [parse_case(c) for c in DEFAULT_CASES]
    rows, ok = [], True
    print(f"{'case':>10} {'xhpcg GF/s':>11} {'suite GF/s':>11} {'ratio':>6} {'cpu ratio':>9} "
          f"{'xhpcg':>8} {'suite':>8} {'its':>7} {'load':>15}")
    for ranks, threads, n in cases:
        ref, ours, loads = [], [], []
        for _ in range(a.repeats):
            loads.append(os.getloadavg()[0])
            ref.append(run_xhpcg(exe, ranks, threads, n, a.rt, a.progress, a.bind))
            loads.append(os.getloadavg()[0])
            ours.append(run_suite(ranks, threads, n, a.rt, a.progress, a.bind))
        r_med = statistics.median(x["rating"] for x in ref)
        s_med = statistics.median(x["rating"] for x in ours)
        ratio = s_med / r_med if r_med else float("nan")
        # flops per CPU second of the whole run (all phases, process start included): what
        # each side gets done with the CPU it was given, less sensitive to the load than the
        # wall-clock rating
        cpu_ratio = (statistics.median(x["flops"] / x["cpu_s"] for x in ours)
                     / statistics.median(x["flops"] / x["cpu_s"] for x in ref))
        ref_valid = all(x["valid"] for x in ref)
        our_valid = all(x["valid"] for x in ours)
        verdict_ok = our_valid or not ref_valid
        ok &= verdict_ok and ratio >= 1.5
        its = f"{ours[0]['opt_iters']}/{ref[0]['opt_iters']}"
        load = f"{min(loads):.1f}-{max(loads):.1f}"
        print(f"{ranks}x{threads}:{n:<4} {r_med:>11.3f} {s_med:>11.3f} {ratio:>6.2f} {cpu_ratio:>9.2f} "
              f"{'VALID' if ref_valid else 'INVALID':>8} {'VALID' if our_valid else 'INVALID':>8} "
              f"{its:>7} {load:>15}", flush=True)
        rows.append({"ranks": ranks, "threads": threads, "n": n, "rt": a.rt, "bind": a.bind,
                     "progress": a.progress, "xhpcg": ref,
                     "suite": ours, "median_ratio": ratio, "cpu_ratio": cpu_ratio, "load": loads})
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    print("target (VALID where xhpcg is, rating >= 1.5x): "
          + ("met in every case" if ok else "NOT met in every case (see the load)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
