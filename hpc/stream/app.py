"""hpc.stream: BabelStream's six kernels (Copy, Mul, Add, Triad, Nstream, Dot), MPI-parallel.

Every rank runs the kernels on its own arrays of --arraysize elements. Each kernel is timed as
barrier, kernel, barrier; Dot is reduced with Allreduce; aggregate bandwidth is
bytes x ranks / the slowest rank's best time (first iteration dropped). Every run checks its
arrays against BabelStream's scalar gold recurrence on every rank.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import numpy as np

from hpc.core import App, UsageError, make_parser, positive_float, positive_int, run
from hpc.core import backends as registry
from hpc.core import checks
from hpc.core.memory import require_memory

from . import api
from .api import KERNELS, LABEL
from .models import BACKENDS


def parser():
    p = make_parser(
        "stream", __doc__, backends=list(BACKENDS), default_backend="native",
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
    p.add_argument("--list", action="store_true",
                   help="list the devices of the back end (--device N picks one) and exit")
    p.add_argument("--device", type=checks.integer(0, 1 << 16), default=None,
                   help="device of a GPU back end (cuda, cupy) every rank uses [default: 0]")
    p.add_argument("--mem", choices=("device", "managed", "pagefault"), default="device",
                   help="cuda: arrays in device memory, CUDA managed memory, or plain host "
                        "memory reached by page faults (BabelStream's CUDA memory modes)")
    p.add_argument("--copies", action="store_true",
                   help="cuda: also measure copy bandwidth as nvbandwidth does (host<->device "
                        "by copy engines and copy kernels, each direction and both at once; "
                        "device->peer when there are two devices), --arraysize bytes x 8 each")
    p.add_argument("--peak-GBps", dest="peak_GBps", type=positive_float,
                   help="peak memory bandwidth per rank (GB/s) to report the fraction of peak "
                        "[default: the device's, on a GPU]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check the sizes, run :func:`hpc.stream.run`, print, record."""
    args = parser().parse_args(argv)
    if args.numtimes < 2:
        raise UsageError("--numtimes must be at least 2 (the first iteration is dropped)")
    registry.require(BACKENDS[args.backend][1])
    if args.list:
        return list_devices(args.backend)
    if args.copies and args.backend != "cuda":
        raise UsageError("--copies measures CUDA copies: use --backend cuda")
    app = App("stream", args)
    dtype = np.dtype(np.float32 if args.float else np.float64)
    n = args.arraysize
    require_memory(api.memory_bytes(n, args.backend, dtype), f"--arraysize {n}", app.comm)
    app.say(f"hpc.stream (BabelStream design), back end {args.backend}, {app.size} rank(s) "
            f"x {app.threads} thread(s)")
    app.say(f"Precision: {'float' if args.float else 'double'}; {n} elements per array per rank "
            f"({n * dtype.itemsize / 1e6:.1f} MB), {args.numtimes} iterations")
    res = api.run(n, backend=args.backend, ntimes=args.numtimes, comm=app.comm, dtype=dtype,
                  only=args.only, repeat=args.repeat, progress=app.progress,
                  device=args.device, mem=args.mem)
    if args.copies:
        app.metrics["copies_GBps"] = copies(n * 8, args.device or 0, app)
    peak = args.peak_GBps
    if peak is None and args.backend in ("cupy", "cuda"):
        peak = api.device_peak_GBps()
    _record(app, res, peak)
    _print(app, args, res, peak)
    if args.output:
        from hpc.core import h5io

        data: dict[str, Any] = {f"/times/{k}": v for k, v in res["samples_s"].items()}
        data["/bandwidth_GBps"] = np.array([r["GBps"] for r in res["kernels"].values()])
        h5io.write(args.output, app.comm, data,
                   attrs={"/": {"kernels": ",".join(res["kernels"]), "backend": args.backend}})
    return app.finish(res["valid"], res["errors"], res["timings"])


def list_devices(backend: str) -> int:
    """``--list``: the back end's devices, one line each (rank 0), exit 0."""
    from hpc.core.runtime import world

    from .models import load

    devs = load(backend).devices()
    if world().Get_rank() == 0:
        if not devs:
            print(f"{backend}: no device")
        for d in devs:
            extra = ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("index", "name"))
            print(f"{backend} device {d['index']}: {d['name']}" + (f" ({extra})" if extra else ""))
    return 0


COPIES = ("h2d_ce", "d2h_ce", "bidir_ce", "h2d_sm", "d2h_sm", "d2d_ce", "d2d_sm")


def copies(nbytes: int, device: int, app: App) -> dict[str, float]:
    """nvbandwidth's table on this rank's device: GB/s per copy (rank 0 prints it)."""
    from hpc import _cuda

    nbytes -= nbytes % 16
    two = len(_cuda.stream.devices()) > 1
    out: dict[str, float] = {}
    for what in COPIES:
        if what.startswith("d2d") and not two:
            continue
        out[what] = _cuda.stream.copy_bandwidth(what, max(16, nbytes), device,
                                                (device + 1) % 2 if two else 0, 5)
    if app.rank == 0 and not app.quiet:
        print("copy bandwidth (GB/s, best of 5, CUDA events; ce: copy engine, sm: copy kernel; "
              "bidir: both directions at once): "
              + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def _record(app: App, res: dict, peak: float | None) -> None:
    for k, r in res["kernels"].items():
        app.metrics[f"{k}_GBps"] = r["GBps"]
    app.metrics["bytes_per_array_per_rank"] = res["bytes_per_array"]
    for k in ("init", "read"):
        app.metrics[f"{k}_GBps"] = res[k]["GBps"]
    rules = res["rules"]
    app.metrics["cache_resident"] = rules["cache_resident"]
    app.metrics["short_kernels"] = rules["short_kernels"]
    app.metrics["timer_granularity_s"] = rules["timer_granularity_s"]
    app.metrics["ranks_share_cores"] = rules["ranks_share_cores"]
    app.extra["run_rules"] = rules
    if peak:
        app.metrics["peak_GBps"] = peak * app.size
        for k, r in res["kernels"].items():
            app.metrics[f"{k}_fraction_of_peak"] = r["GBps"] / (peak * app.size)
    app.extra["model"] = res["model"]


def notes(rules: dict) -> list[str]:
    """The run-rule warnings of a run, one line each (empty when it keeps every rule)."""
    out = []
    if rules["cache_resident"]:
        out.append(f"note: cache_resident: {rules['array_bytes']} bytes per array is under "
                   f"{rules['cache_rule'].split(': ')[-1]} ({rules['cache_rule'].split(':')[0]}): "
                   "this run measures cache, not memory")
    if rules["short_kernels"]:
        out.append(f"note: {', '.join(LABEL[k] for k in rules['short_kernels'])} ran under "
                   f"{rules['short_rule'].split('>= ')[-1]}: timer granularity "
                   f"{rules['timer_granularity_s'] * 1e9:.0f} ns limits their accuracy")
    if rules["ranks_share_cores"]:
        pairs = "; ".join(f"ranks {a} and {b} on cores {c}"
                          for a, b, c in rules["placement"]["shared_cores"][:4])
        out.append(f"warning: ranks share cores ({pairs}): their bandwidths are not "
                   "independent; pin one rank per core set (e.g. mpiexec -bind-to core)")
    return out


def _print(app: App, args: argparse.Namespace, res: dict, peak: float | None) -> None:
    if app.rank != 0 or app.quiet:
        return
    t = res["timings"]
    if args.csv:
        print("function,num_times,n_elements,sizeof,max_mbytes_per_sec,min_runtime,max_runtime,"
              "avg_runtime")
        for k, r in res["kernels"].items():
            print(f"{LABEL[k]},{args.numtimes},{res['arraysize'] * res['ranks']},"
                  f"{np.dtype(res['dtype']).itemsize},{r['GBps'] * 1e3:.3f},"
                  f"{t[k]['min']:.5f},{t[k]['max']:.5f},{t[k]['mean']:.5f}")
    else:
        head = f"{'Function':<10}{'MBytes/sec':>14}{'Min (sec)':>12}{'Max':>12}{'Average':>12}"
        print(head + ("   of peak" if peak else ""))
        for k, r in res["kernels"].items():
            frac = f"{100 * r['GBps'] / (peak * app.size):9.1f}%" if peak else ""
            print(f"{LABEL[k]:<10}{r['GBps'] * 1e3:>14.3f}{t[k]['min']:>12.5f}{t[k]['max']:>12.5f}"
                  f"{t[k]['mean']:>12.5f}{frac}")
        for k in ("init", "read"):
            r = res[k]
            rate = f"{r['GBps'] * 1e3:>14.3f}" if r["GBps"] else f"{'-':>14}"
            print(f"{k.capitalize():<10}{rate}{r['best_s']:>12.5f}")
    for line in notes(res["rules"]):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    run(main)
