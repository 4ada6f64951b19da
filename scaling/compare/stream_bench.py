"""STREAM triad: every back end against a plain C/OpenMP reference, side by side in one run.

Builds scaling/compare/ref/stream_ref.c with the system compiler, then alternates reference and suite
runs (best of --rounds each) at 1 and 2 threads, and `mpiexec -n 2` with one thread per rank.
Targets (ratio to the reference at the same threads): native >= 0.95, numba >= 0.9,
mpiexec -n 2 aggregate >= 0.9 of the reference at 2 threads.

    .venv/bin/python scaling/compare/stream_bench.py [--arraysize N] [--numtimes K] [--rounds R]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hpc.core import backends as reg
from hpc.core.launch import progress_env, run_record
from hpc.stream.models import BACKENDS

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"native": 0.95, "numba": 0.9, "mpi2-native": 0.9}


def build_ref(out: Path) -> Path:
    exe = out / "stream_ref"
    subprocess.run(["cc", "-O3", "-march=native", "-fopenmp", str(ROOT / "scaling/compare/ref/stream_ref.c"),
                    "-o", str(exe)], check=True)
    return exe


def unpin() -> None:
    """No OMP_PROC_BIND (nor OMP_PLACES) in any run: libgomp would pin the initial thread to the
    first core, and TBB or numba workers (and every MPI rank) would then inherit that one core."""
    for k in ("OMP_PROC_BIND", "OMP_PLACES"):
        os.environ.pop(k, None)


def env_for(threads: int) -> dict:
    return progress_env("throttle", 1, extra={"OMP_NUM_THREADS": str(threads)})


def ref_gbps(exe: Path, n: int, k: int, threads: int) -> float:
    r = subprocess.run([str(exe), str(n), str(k)], capture_output=True, text=True, check=True,
                       env=env_for(threads))
    return float(r.stdout.split()[1])


def suite_gbps(backend: str, n: int, k: int, threads: int, ranks: int = 1) -> float:
    rec = run_record(ranks, "hpc.stream", ["--backend", backend, "--only", "triad", "-s", n,
                                           "-n", k, "--threads", threads, "--quiet"],
                     progress="throttle", env={"OMP_NUM_THREADS": str(threads)}, timeout=600,
                     cwd=ROOT, allow_invalid=True)
    if not rec["validation"]["passed"]:
        raise SystemExit(f"{backend}: INVALID")
    return rec["metrics"]["triad_GBps"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arraysize", type=int, default=2**25, help="elements per array (per rank for MPI)")
    ap.add_argument("--numtimes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; best of each")
    ap.add_argument("--backends", default="native,stdpar,numba,numpy,numpy-naive,kokkos")
    ap.add_argument("--json", help="write the table here")
    a = ap.parse_args()
    unpin()
    names = [b for b in a.backends.split(",") if reg.is_available(BACKENDS[b][1])]
    with tempfile.TemporaryDirectory() as d:
        exe = build_ref(Path(d))
        rows = []
        for threads in (1, 2):
            best = {"reference": 0.0, **{b: 0.0 for b in names}}
            for _ in range(a.rounds):  # alternate so drift hits every column alike
                best["reference"] = max(best["reference"], ref_gbps(exe, a.arraysize, a.numtimes, threads))
                for b in names:
                    best[b] = max(best[b], suite_gbps(b, a.arraysize, a.numtimes, threads))
            for b, v in best.items():
                rows.append({"threads": threads, "ranks": 1, "backend": b, "triad_GBps": v,
                             "ratio": v / best["reference"]})
            if threads == 2:
                mpi = max(suite_gbps("native", a.arraysize, a.numtimes, 1, ranks=2)
                          for _ in range(a.rounds))
                rows.append({"threads": 1, "ranks": 2, "backend": "mpi2-native", "triad_GBps": mpi,
                             "ratio": mpi / best["reference"]})
    print(f"STREAM triad, {a.arraysize} doubles per array, best of {a.rounds} x {a.numtimes}")
    print(f"{'back end':<14}{'ranks':>6}{'threads':>8}{'GB/s':>9}{'vs ref':>8}  target")
    for r in rows:
        tgt = TARGETS.get(r["backend"])
        mark = "" if tgt is None else (f">= {tgt:.2f} {'met' if r['ratio'] >= tgt else 'MISSED'}")
        print(f"{r['backend']:<14}{r['ranks']:>6}{r['threads']:>8}{r['triad_GBps']:>9.2f}"
              f"{r['ratio']:>8.2f}  {mark}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
