"""hpc.stream: BabelStream's six kernels (Copy, Mul, Add, Triad, Nstream, Dot), MPI-parallel.

Every rank runs the kernels on its own arrays of --arraysize elements. Each kernel is timed as
barrier, kernel, barrier; Dot is reduced with Allreduce; aggregate bandwidth is
bytes x ranks / the slowest rank's best time (first iteration dropped). Every run checks its
arrays against BabelStream's scalar gold recurrence on every rank.
"""
from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from hpc.core import App, UsageError, make_parser, positive_float, positive_int, run
from hpc.core import backends as registry
from hpc.core.memory import require_memory

from .models import MODELS, load

START_A, START_B, START_C, START_SCALAR = 0.1, 0.2, 0.0, 0.4
KERNELS = ("copy", "mul", "add", "triad", "nstream", "dot")
ARRAYS_MOVED = {"copy": 2, "mul": 2, "add": 3, "triad": 3, "dot": 2, "nstream": 4}
LABEL = {"copy": "Copy", "mul": "Mul", "add": "Add", "triad": "Triad", "nstream": "Nstream", "dot": "Dot"}


def parser():
    p = make_parser(
        "stream", __doc__, backends=list(MODELS), default_backend="native",
        epilog="Back ends: numpy (out=), numpy-naive (temporaries), numba, native (C++/OpenMP), "
               "stdpar (C++17 par_unseq on TBB), kokkos, cupy, cuda.")
    p.add_argument("--arraysize", "-s", type=positive_int, default=2**25,
                   help="elements per array per rank")
    p.add_argument("--numtimes", "-n", type=positive_int, default=100,
                   help="iterations of the kernels per run (at least 2: the first is dropped); "
                        "--repeat reruns the whole measurement")
    p.add_argument("--only", choices=KERNELS, help="run only this kernel")
    p.add_argument("--float", action="store_true", help="float32 instead of float64")
    p.add_argument("--csv", action="store_true", help="print BabelStream's CSV columns")
    p.add_argument("--peak-GBps", dest="peak_GBps", type=positive_float,
                   help="peak memory bandwidth per rank (GB/s) to report the fraction of peak "
                        "[default: the device's, on a GPU]")
    return p


def gold(dtype: np.dtype, selection: Sequence[str], numtimes: int, n_global: int):
    """BabelStream's scalar recurrence in the arrays' own precision."""
    T = np.dtype(dtype).type
    ga, gb, gc, s = T(START_A), T(START_B), T(START_C), T(START_SCALAR)
    gsum = None
    for _ in range(numtimes):
        for k in selection:
            if k == "copy":
                gc = ga
            elif k == "mul":
                gb = s * gc
            elif k == "add":
                gc = ga + gb
            elif k == "triad":
                ga = gb + s * gc
            elif k == "nstream":
                ga = ga + (gb + s * gc)  # the kernels round a += (b + s*c)
            elif k == "dot":
                gsum = float(ga) * float(gb) * n_global
    return float(ga), float(gb), float(gc), gsum


def check(arrays, golds, dtype, dot_sum, gold_sum, comm):
    """Per-element relative error against gold (100 eps), and Dot's relative error."""
    from mpi4py import MPI

    eps = float(np.finfo(dtype).eps)
    out = {"tolerance": 100 * eps}
    worst = 0.0
    for name, arr, g in zip("abc", arrays, golds):
        arr = np.asarray(arr, dtype=np.float64)
        err = np.abs(arr - g) / (abs(g) if g != 0 else 1.0)
        local = float(err.max()) if err.size else 0.0
        e = comm.allreduce(local, op=MPI.MAX)
        out[f"max_rel_err_{name}"] = e
        worst = max(worst, e)
    passed = worst <= 100 * eps
    if gold_sum is not None:
        dot_tol = 1e-8 if dtype == np.float64 else 1e-4
        rel = abs(dot_sum - gold_sum) / abs(gold_sum) if gold_sum else abs(dot_sum)
        out["dot_rel_err"] = rel
        out["dot_tolerance"] = dot_tol
        passed = passed and rel <= dot_tol
    return passed, out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.numtimes < 2:
        raise UsageError("--numtimes must be at least 2 (the first iteration is dropped)")
    _, _, need = MODELS[args.backend]
    registry.require(need)
    app = App("stream", args)
    dtype = np.dtype(np.float32 if args.float else np.float64)
    n = args.arraysize
    copies = 5 if args.backend == "numpy-naive" else 4  # temporaries of the naive spelling
    require_memory(copies * n * dtype.itemsize, f"--arraysize {n}", app.comm)
    model = load(args.backend)(n, dtype)
    app.timer.sync = model.sync
    selection = (args.only,) if args.only else KERNELS
    n_global = n * app.size

    app.say(f"hpc.stream (BabelStream design), back end {args.backend}, {app.size} rank(s) "
            f"x {app.threads} thread(s)")
    app.say(f"Precision: {'float' if args.float else 'double'}; {n} elements per array per rank "
            f"({n * dtype.itemsize / 1e6:.1f} MB), {args.numtimes} iterations")

    s = START_SCALAR
    kernels = {"copy": model.copy, "mul": lambda: model.mul(s), "add": model.add,
               "triad": lambda: model.triad(s), "nstream": lambda: model.nstream(s)}
    ga, gb, gc, gsum = gold(dtype, selection, args.numtimes, n_global)
    passed, validation = True, {}
    # --repeat reruns the whole measurement from fresh arrays; every run is validated and
    # every iteration's time is a sample (only the very first is dropped as warm-up).
    for rep in range(args.repeat):
        model.init_arrays(START_A, START_B, START_C)
        dot_sum = None
        for it in range(args.numtimes):
            for k in selection:
                with app.timer.phase(k):
                    if k == "dot":
                        local = model.dot()
                        dot_sum = app.comm.allreduce(local)
                    else:
                        kernels[k]()
            if args.numtimes >= 20 and (it + 1) % (args.numtimes // 4) == 0:
                app.progress(f"run {rep + 1}/{args.repeat}: iteration {it + 1}/{args.numtimes}")
        ok, validation = check(model.read_arrays(), (ga, gb, gc), dtype, dot_sum, gsum, app.comm)
        passed = passed and ok
    timings = app.timer.summary()

    peak = args.peak_GBps
    if peak is None and args.backend in ("cupy", "cuda"):
        peak = _device_peak_GBps()
    rows = []
    for k in selection:
        t = timings[k]
        nbytes = ARRAYS_MOVED[k] * n * dtype.itemsize * app.size
        gbps = nbytes / t["min"] / 1e9
        app.metrics[f"{k}_GBps"] = gbps
        rows.append((k, gbps, t))
    app.metrics["bytes_per_array_per_rank"] = n * dtype.itemsize
    if peak:
        app.metrics["peak_GBps"] = peak * app.size
        for k, gbps, _ in rows:
            app.metrics[f"{k}_fraction_of_peak"] = gbps / (peak * app.size)
    app.extra["model"] = model.info()

    if app.rank == 0 and not app.quiet:
        if args.csv:
            print("function,num_times,n_elements,sizeof,max_mbytes_per_sec,min_runtime,max_runtime,avg_runtime")
            for k, gbps, t in rows:
                print(f"{LABEL[k]},{args.numtimes},{n_global},{dtype.itemsize},{gbps * 1e3:.3f},"
                      f"{t['min']:.5f},{t['max']:.5f},{t['mean']:.5f}")
        else:
            head = f"{'Function':<10}{'MBytes/sec':>14}{'Min (sec)':>12}{'Max':>12}{'Average':>12}"
            print(head + ("   of peak" if peak else ""))
            for k, gbps, t in rows:
                frac = f"{100 * gbps / (peak * app.size):9.1f}%" if peak else ""
                print(f"{LABEL[k]:<10}{gbps * 1e3:>14.3f}{t['min']:>12.5f}{t['max']:>12.5f}"
                      f"{t['mean']:>12.5f}{frac}")
        sys.stdout.flush()

    if args.output:
        from hpc.core import h5io

        data = {f"/times/{k}": app.timer.slowest(k) for k in selection}
        data["/bandwidth_GBps"] = np.array([g for _, g, _ in rows])
        h5io.write(args.output, app.comm, data,
                   attrs={"/": {"kernels": ",".join(selection), "backend": args.backend}})
    return app.finish(passed, validation, timings)


def _device_peak_GBps() -> float | None:
    try:
        import cupy

        p = cupy.cuda.runtime.getDeviceProperties(0)
        return 2.0 * p["memoryClockRate"] * 1e3 * (p["memoryBusWidth"] / 8) / 1e9
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    run(main)
