"""Matrix Market reading: hpc.sparse.read_matrix at 1 and 2 ranks against scipy.io.mmread.

The matrix is the largest .mtx in ../shared/data/matrices (bcsstk13 in the shipped set) unless
--matrix names one. Each job alternates, --repeat times (each side first in turn, as the one
run just before warms or cools the caches): a barrier, scipy.io.mmread on rank 0
while the other ranks wait ASLEEP (a polled Ibarrier, so mmread has every core, as in a serial
run, and no spinning rank steals one), then read_matrix on every rank (to a DistCSR, each rank
its rows) between barriers. The reference is timed in both the 1-rank and the 2-rank job, so
every ratio compares runs made side by side.

Like with like: both read the same file from the page cache (one untimed read first) and both
expand symmetric storage; mmread returns a COO matrix, read_matrix a canonical CSR (sorted,
duplicates summed) split by rows, so the ``ratio csr`` column, against
``mmread(...).tocsr()``, compares the same result. Threads: no OMP_NUM_THREADS; mmread's
parser (fast_matrix_market) may use every core, read_matrix's threads are the cores shared by
the ranks (one per rank at 2 ranks on 2 cores; a thread per 2 MiB of text at most). The
1-rank job also times the serial pair, ``1x1``: mmread limited to one thread (threadpoolctl)
against read_matrix at one rank with OMP_NUM_THREADS=1.

Reported: the median of each, the ratio mmread / read_matrix (> 1: the suite is faster), the
ratio of the fastest runs (the least disturbed by other load), and the load average. Also
the median CPU time (all threads) of mmread and of read_matrix's busiest rank, the work
done, which other load disturbs less than wall time. ``--baseline FILE`` (a .py file defining
``read_matrix``, e.g. an earlier hpc/sparse/mmio.py) is timed in the same alternation, for a
before/after under the same load.
Targets (issue 18): >= 1.0x at one rank, faster still at two.

    .venv/bin/python scaling/compare/mmio_bench.py [--matrix PATH] [--repeat 15] [--json OUT]
        [--baseline FILE] [--progress throttle|busy|auto]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "matrices"


def largest_matrix() -> Path:
    mats = sorted(DATA.glob("*.mtx"), key=lambda p: p.stat().st_size)
    if not mats:
        raise SystemExit(f"no .mtx files in {DATA}")
    return mats[-1]


def _load_baseline(file: str):
    """``read_matrix`` of a reader module given as a file (imported under its own name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mmio_baseline", file)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (dataclasses look their module up there)
    spec.loader.exec_module(mod)
    return mod.read_matrix


def _asleep_barrier(comm) -> None:
    """A barrier the waiting ranks pass asleep, polling: a rank spinning in MPI (busy
    progress) would take a core from the reference timed on rank 0 meanwhile."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(2e-4)


def worker(path: str, repeat: int, out: str, baseline: str = "") -> None:
    """Runs under mpiexec: alternating timings, written by rank 0 to ``out``."""
    import numpy as np
    import scipy.io
    from mpi4py import MPI
    from threadpoolctl import threadpool_limits

    from hpc.sparse.mmio import read_matrix

    comm = MPI.COMM_WORLD
    serial = comm.Get_size() == 1  # the 1x1 pair too
    t_ref, t_csr, t_ours, t_base, t_ref1, t_ours1 = [], [], [], [], [], []
    # CPU seconds (all threads): the work, less disturbed by load than wall time
    c_ref, c_ours, c_ref1, c_ours1, c_base = [], [], [], [], []

    def read_one_thread():
        os.environ["OMP_NUM_THREADS"] = "1"  # read_matrix's parser threads (read per call)
        try:
            read_matrix(path, comm)
        finally:
            del os.environ["OMP_NUM_THREADS"]

    before = _load_baseline(baseline) if baseline else None
    read_matrix(path, comm)  # warm the page cache and imports
    if before is not None:
        before(path, comm)
    if comm.rank == 0:
        scipy.io.mmread(path)
    def time_reference() -> None:
        if comm.rank == 0:
            t0, c0 = time.perf_counter(), time.process_time()
            scipy.io.mmread(path)
            t_ref.append(time.perf_counter() - t0)
            c_ref.append(time.process_time() - c0)
            t0 = time.perf_counter()
            scipy.io.mmread(path).tocsr()
            t_csr.append(time.perf_counter() - t0)
            if serial:
                with threadpool_limits(limits=1, user_api="scipy"):
                    t0, c0 = time.perf_counter(), time.process_time()
                    scipy.io.mmread(path)
                    t_ref1.append(time.perf_counter() - t0)
                    c_ref1.append(time.process_time() - c0)
        _asleep_barrier(comm)

    def time_read(read, walls: list[float], cpus: list[float]) -> None:
        comm.Barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        read(path, comm)
        c1 = time.process_time() - c0
        comm.Barrier()
        walls.append(time.perf_counter() - t0)
        cpus.append(comm.allreduce(c1, op=MPI.MAX))  # the busiest rank (outside the timing)

    def time_ours() -> None:
        time_read(read_matrix, t_ours, c_ours)
        if serial:
            t0, c0 = time.perf_counter(), time.process_time()
            read_one_thread()
            t_ours1.append(time.perf_counter() - t0)
            c_ours1.append(time.process_time() - c0)

    def time_baseline() -> None:
        time_read(before, t_base, c_base)

    steps = [time_reference, time_ours] + ([time_baseline] if before is not None else [])
    for rep in range(repeat):
        # each side goes first in turn: what ran just before warms or cools the caches
        for step in steps[rep % len(steps):] + steps[:rep % len(steps)]:
            comm.Barrier()
            step()
    if comm.rank == 0:
        med = {k: float(np.median(v)) for k, v in
               (("mmread_s", t_ref), ("mmread_tocsr_s", t_csr), ("read_matrix_s", t_ours))}
        med.update({"min_" + k: float(np.min(v)) for k, v in
                    (("mmread_s", t_ref), ("read_matrix_s", t_ours))})
        med.update({"cpu_mmread_s": float(np.median(c_ref)),
                    "cpu_read_matrix_s": float(np.median(c_ours))})
        if serial:
            med["mmread_1thread_s"] = float(np.median(t_ref1))
            med["read_matrix_1thread_s"] = float(np.median(t_ours1))
            med["cpu_mmread_1thread_s"] = float(np.median(c_ref1))
            med["cpu_read_matrix_1thread_s"] = float(np.median(c_ours1))
        if t_base:
            med["baseline_s"] = float(np.median(t_base))
            med["min_baseline_s"] = float(np.min(t_base))
            med["cpu_baseline_s"] = float(np.median(c_base))
        med["ranks"] = comm.Get_size()
        med["load"] = os.getloadavg()
        with open(out, "w") as f:
            json.dump(med, f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix", help="a .mtx file [default: the largest in ../shared/data]")
    ap.add_argument("--repeat", type=int, default=15, help="alternating timed repetitions")
    ap.add_argument("--ranks", default="1,2", help="rank counts to run")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--baseline", default="", help="a .py reader (read_matrix) to time alongside")
    ap.add_argument("--progress", choices=("throttle", "busy", "auto"), default="throttle",
                    help="MPI progress mode (hpc.core.launch): throttle (yield, for a loaded "
                         "machine), busy, or auto (busy when every rank has its own core)")
    ap.add_argument("--worker", nargs=4, metavar=("PATH", "REPEAT", "OUT", "BASE"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], int(a.worker[1]), a.worker[2], a.worker[3])
        return 0
    from hpc.core.launch import launch

    path = Path(a.matrix) if a.matrix else largest_matrix()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for ranks in (int(r) for r in a.ranks.split(",")):
            out = os.path.join(d, f"r{ranks}.json")
            # no OMP_NUM_THREADS: mmread's parser uses every core, read_matrix's the cores
            # shared by the ranks (as an app with the default --threads)
            os.environ.pop("OMP_NUM_THREADS", None)
            r = launch(ranks, [__file__, "--worker", str(path), str(a.repeat), out,
                                  os.path.abspath(a.baseline) if a.baseline else ""],
                       progress=a.progress, timeout=900, capture_output=True, text=True,
                       cwd=ROOT)
            if r.returncode != 0:
                sys.stderr.write(r.stdout[-2000:] + r.stderr[-2000:])
                return 1
            with open(out) as f:
                rows.append(json.load(f))
    print(f"{path.name} ({path.stat().st_size / 1e6:.2f} MB), median of {a.repeat} alternating runs")
    print(f"{'ranks':>5} {'mmread ms':>10} {'+tocsr ms':>10} {'read_matrix ms':>15} "
          f"{'ratio':>6} {'ratio csr':>9} {'ratio of mins':>13}  load (1/5/15 min)")
    for row in rows:
        row["ratio"] = row["mmread_s"] / row["read_matrix_s"]
        row["ratio_csr"] = row["mmread_tocsr_s"] / row["read_matrix_s"]
        row["ratio_min"] = row["min_mmread_s"] / row["min_read_matrix_s"]
        print(f"{row['ranks']:>5} {1e3 * row['mmread_s']:>10.2f} {1e3 * row['mmread_tocsr_s']:>10.2f} "
              f"{1e3 * row['read_matrix_s']:>15.2f} {row['ratio']:>5.2f}x {row['ratio_csr']:>8.2f}x "
              f"{row['ratio_min']:>12.2f}x  "
              + " ".join(f"{x:.1f}" for x in row["load"]))
    for row in rows:
        if "mmread_1thread_s" in row:
            row["ratio_1x1"] = row["mmread_1thread_s"] / row["read_matrix_1thread_s"]
            print(f"{'1x1':>5} {1e3 * row['mmread_1thread_s']:>10.2f} {'':>10} "
                  f"{1e3 * row['read_matrix_1thread_s']:>15.2f} {row['ratio_1x1']:>5.2f}x"
                  "  (one thread each: mmread under threadpoolctl, read_matrix at "
                  "OMP_NUM_THREADS=1)")
    print(f"{'ranks':>5} {'mmread cpu ms':>14} {'read_matrix cpu ms':>19} {'cpu ratio':>9}  "
          "(median CPU time; read_matrix: its busiest rank)")
    for row in rows:
        row["ratio_cpu"] = row["cpu_mmread_s"] / row["cpu_read_matrix_s"]
        print(f"{row['ranks']:>5} {1e3 * row['cpu_mmread_s']:>14.2f} "
              f"{1e3 * row['cpu_read_matrix_s']:>19.2f} {row['ratio_cpu']:>8.2f}x")
        if "cpu_mmread_1thread_s" in row:
            row["ratio_cpu_1x1"] = row["cpu_mmread_1thread_s"] / row["cpu_read_matrix_1thread_s"]
            print(f"{'1x1':>5} {1e3 * row['cpu_mmread_1thread_s']:>14.2f} "
                  f"{1e3 * row['cpu_read_matrix_1thread_s']:>19.2f} {row['ratio_cpu_1x1']:>8.2f}x")
    if any("baseline_s" in row for row in rows):
        print(f"{'ranks':>5} {'baseline ms':>12} {'read_matrix ms':>15} {'speed-up':>8} "
              f"{'speed-up of mins':>16} {'cpu speed-up':>12}  (baseline: {a.baseline})")
        for row in rows:
            row["speedup"] = row["baseline_s"] / row["read_matrix_s"]
            row["speedup_min"] = row["min_baseline_s"] / row["min_read_matrix_s"]
            row["speedup_cpu"] = row["cpu_baseline_s"] / row["cpu_read_matrix_s"]
            print(f"{row['ranks']:>5} {1e3 * row['baseline_s']:>12.2f} "
                  f"{1e3 * row['read_matrix_s']:>15.2f} {row['speedup']:>7.2f}x "
                  f"{row['speedup_min']:>15.2f}x {row['speedup_cpu']:>11.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"matrix": str(path), "repeat": a.repeat, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
