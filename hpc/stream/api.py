"""The STREAM measurement as a function: :func:`run` (BabelStream's design, MPI-parallel).

Deakin, Price, Martineau, McIntosh-Smith, "Evaluating attainable memory bandwidth of parallel
programming models via BabelStream", IJCSE 17(3), 2018; McCalpin, "Memory Bandwidth and
Machine Balance in Current High Performance Computers", IEEE TCCA Newsletter, 1995.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core.checks import REPEAT_MAX, check_int
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.runtime import as_comm
from hpc.core.memory import require_memory
from hpc.core.timers import PhaseTimer

from . import rules
from .models import BACKENDS, load

START_A, START_B, START_C, START_SCALAR = 0.1, 0.2, 0.0, 0.4
KERNELS = ("copy", "mul", "add", "triad", "nstream", "dot")
ARRAYS_MOVED = {"copy": 2, "mul": 2, "add": 3, "triad": 3, "dot": 2, "nstream": 4}
LABEL = {"copy": "Copy", "mul": "Mul", "add": "Add", "triad": "Triad", "nstream": "Nstream",
         "dot": "Dot"}

__all__ = ["run", "gold", "check", "memory_bytes", "device_peak_GBps", "KERNELS",
           "ARRAYS_MOVED", "BACKENDS"]


def gold(dtype: np.dtype, selection: Sequence[str], numtimes: int,
         n_global: int) -> tuple[float, float, float, float | None]:
    """BabelStream's scalar recurrence in the arrays' own precision: the values every
    element of a, b, c must hold after ``numtimes`` iterations of the ``selection`` kernels,
    and Dot's expected sum over ``n_global`` elements (None without Dot)."""
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


def check(arrays, golds, dtype, dot_sum: float | None, gold_sum: float | None,
          comm: MPI.Comm) -> tuple[bool, dict[str, Any]]:
    """Per-element relative error against gold (100 eps), and Dot's relative error
    (1e-8 in double, 1e-4 in float). Collective; the verdict and the errors on every rank."""
    eps = float(np.finfo(dtype).eps)
    out: dict[str, Any] = {"tolerance": 100 * eps}
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


def memory_bytes(arraysize: int, backend: str, dtype: Any = np.float64) -> int:
    """Bytes one rank allocates: three arrays, plus the naive NumPy spelling's temporaries."""
    copies = 5 if backend == "numpy-naive" else 4
    return copies * int(arraysize) * np.dtype(dtype).itemsize


def device_peak_GBps() -> float | None:
    """Peak memory bandwidth of CUDA device 0 from its clock and bus width (None: no device)."""
    try:
        import cupy

        p = cupy.cuda.runtime.getDeviceProperties(0)
        return 2.0 * p["memoryClockRate"] * 1e3 * (p["memoryBusWidth"] / 8) / 1e9
    except Exception:  # noqa: BLE001 - no CuPy, no device, no driver: no figure
        return None


def run(arraysize: int, *, backend: str = "native", ntimes: int = 100,
        comm: MPI.Intracomm | None = None, dtype: Any = np.float64,
        only: str | None = None, repeat: int = 1,
        progress: Callable[[str], None] | None = None, device: int | None = None,
        mem: str = "device") -> dict[str, Any]:
    """Run BabelStream's six kernels on every rank and return their bandwidths, validated.

    Every rank allocates three arrays a, b, c of ``arraysize`` elements (a = 0.1, b = 0.2,
    c = 0.0) and runs Copy (c = a), Mul (b = s c), Add (c = a + b), Triad (a = b + s c), Nstream
    (a += b + s c) and Dot (sum a b, reduced with ``Allreduce``), s = 0.4, in that order,
    ``ntimes`` times. Each kernel is timed as barrier, kernel, barrier; a kernel's time per
    iteration is the slowest rank's, and the first iteration is dropped as warm-up. Afterwards
    every element of every array is checked against BabelStream's scalar gold recurrence
    (relative 100 machine epsilon) and Dot against its expected sum (relative 1e-8 in double,
    1e-4 in float; Dot accumulates in double).

    Parameters
    ----------
    arraysize : int
        Elements per array per rank (at least 1).
    backend : str, default 'native'
        The kernels' back end: 'numpy' (``out=``), 'numpy-naive' (temporaries), 'numba',
        'native' (C++/OpenMP), 'stdpar' (C++17 parallel algorithms), 'kokkos', 'cupy', 'cuda'
        (``python -m hpc`` lists which are available here).
    ntimes : int, default 100
        Iterations of the kernels (at least 2: the first is dropped).
    comm : mpi4py.MPI.Intracomm, optional
        The ranks that run (None: ``MPI.COMM_WORLD``).
    dtype : {numpy.float64, numpy.float32}, default float64
        Element type of the arrays.
    only : str, optional
        Run only this kernel (one of copy, mul, add, triad, nstream, dot).
    repeat : int, default 1
        Rerun the whole measurement from fresh arrays this many times; every run is
        validated and every iteration is a sample (only the very first is dropped).
    progress : callable, optional
        Called with a progress line a few times per run on rank 0.
    device : int, optional
        The device of a GPU back end ('cuda', 'cupy') every rank uses (None: device 0);
        host back ends take only None or 0 (``python -m hpc.stream --list`` lists them).
    mem : {'device', 'managed', 'pagefault'}, default 'device'
        'cuda' only: arrays in device memory, CUDA managed memory, or plain host memory the
        GPU reaches by page faults (BabelStream's CUDA memory modes).

    Returns
    -------
    dict
        On every rank: ``backend``, ``arraysize`` (per rank), ``ranks``, ``dtype``,
        ``ntimes``, ``bytes_per_array`` (per rank); ``kernels``: per kernel run, ``best_s``,
        ``avg_s``, ``max_s`` (slowest rank, warm-up dropped), ``GBps`` (aggregate bandwidth:
        bytes moved by all ranks / best time; STREAM's counting of 2, 2, 3, 3, 4, 2 arrays for
        Copy, Mul, Add, Triad, Nstream, Dot) and ``bytes`` (all ranks, one iteration);
        ``valid`` (the verdict) and ``errors`` (the observed relative errors and their
        tolerances); ``timings`` (per kernel min/mean/max/n in seconds, the suite's record
        format); ``samples_s`` (per kernel, every iteration's slowest-rank time, NumPy array);
        ``model`` (facts the back end reports: threads, execution space, device); ``init`` and
        ``read`` (BabelStream 5's Init and Read: the arrays' initialisation and their read-back
        to the host, timed once per run: ``best_s``, ``GBps`` of three arrays); ``rules``
        (STREAM's run rules, :func:`hpc.stream.rules.check`: ``cache_resident`` when an array
        is under 4x the rank's share of the last-level cache, ``short_kernels`` under 20 timer
        ticks, the timer's granularity, every rank's placement and ``ranks_share_cores``).

    Raises
    ------
    UsageError (a ValueError), on every rank
        ``arraysize`` < 1, ``ntimes`` < 2, ``repeat`` < 1, an unknown or unavailable back
        end, an unknown kernel, a dtype other than float32/float64, a device other than 0 on
        a host back end, a memory mode the back end does not have, or arrays that do not fit
        in the host's free memory.
    InputTypeError (a TypeError)
        A non-integer size or count, or ``comm`` not an intra-communicator.

    Notes
    -----
    Cost: 4 x arraysize x itemsize bytes of memory per rank (5 x for 'numpy-naive'), and
    ``ntimes`` x repeat x 16 array sweeps, plus one barrier pair per kernel per iteration.

    Examples
    --------
    >>> r = hpc.stream.run(1_000_000, backend="numpy", ntimes=10)   # doctest: +SKIP
    >>> r["valid"], r["kernels"]["triad"]["GBps"]                    # doctest: +SKIP
    (True, 9.8)
    """
    comm = as_comm(comm)
    n = check_int("arraysize", arraysize, 1)
    ntimes = check_int("ntimes", ntimes, 2)
    repeat = check_int("repeat", repeat, 1, REPEAT_MAX)
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: choose from {', '.join(BACKENDS)}")
    why = registry.why_unavailable(BACKENDS[backend][1])
    if why:
        raise UsageError(f"backend {backend} is not available here: {why}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputTypeError(f"dtype {dtype!r} is not a numpy dtype") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise UsageError(f"dtype must be float64 or float32, got {dt}")
    if only is not None and only not in KERNELS:
        raise UsageError(f"only={only!r}: choose from {', '.join(KERNELS)}")
    cls = load(backend)
    if mem not in cls.MEM_MODES:
        raise UsageError(f"mem {mem!r}: back end {backend} takes {', '.join(cls.MEM_MODES)}")
    kw: dict[str, Any] = {}
    if device is not None:
        check_int("device", device, 0)
        if backend in ("cuda", "cupy"):
            kw["device"] = device
        elif device != 0:
            raise UsageError(f"device {device}: back end {backend} runs on the host (device 0)")
    if mem != "device":
        kw["mem"] = mem
    if mem != "pagefault":  # page-faulting arrays live in host memory, managed ones migrate
        require_memory(memory_bytes(n, backend, dt), f"arraysize {n}", comm)
    else:
        require_memory(memory_bytes(n, "numpy", dt), f"arraysize {n}", comm)

    model = cls(n, dt, **kw)
    timer = PhaseTimer(comm, sync=model.sync)
    selection = (only,) if only else KERNELS
    p = comm.Get_size()
    say = progress if progress is not None and comm.Get_rank() == 0 else None
    s = START_SCALAR
    kernels = {"copy": model.copy, "mul": lambda: model.mul(s), "add": model.add,
               "triad": lambda: model.triad(s), "nstream": lambda: model.nstream(s)}
    ga, gb, gc, gsum = gold(dt, selection, ntimes, n * p)
    valid, errors = True, {}
    for rep in range(repeat):
        with timer.phase("init"):  # BabelStream 5: Init and Read timed, once per run
            model.init_arrays(START_A, START_B, START_C)
        dot_sum = None
        for it in range(ntimes):
            for k in selection:
                if model.event_timed:  # the device's own clock: CUDA events around the kernel
                    comm.Barrier()
                    if k == "dot":
                        local = model.dot()
                        timer.add(k, model.last_seconds())
                        dot_sum = comm.allreduce(local)
                    else:
                        kernels[k]()
                        timer.add(k, model.last_seconds())
                    continue
                with timer.phase(k):
                    if k == "dot":
                        dot_sum = comm.allreduce(model.dot())
                    else:
                        kernels[k]()
            if say and ntimes >= 20 and (it + 1) % (ntimes // 4) == 0:
                say(f"run {rep + 1}/{repeat}: iteration {it + 1}/{ntimes}")
        with timer.phase("read"):
            arrays = model.read_arrays()
        ok, errors = check(arrays, (ga, gb, gc), dt, dot_sum, gsum, comm)
        valid = valid and ok
    timings = timer.summary()
    out: dict[str, Any] = {
        "backend": backend, "arraysize": n, "ranks": p, "dtype": dt.name, "ntimes": ntimes,
        "repeat": repeat, "bytes_per_array": n * dt.itemsize, "kernels": {},
        "valid": bool(valid), "errors": errors, "timings": timings,
        "samples_s": {k: timer.slowest(k) for k in selection}, "model": model.info(),
    }
    for k in selection:
        t = timings[k]
        nbytes = ARRAYS_MOVED[k] * n * dt.itemsize * p
        out["kernels"][k] = {"best_s": t["min"], "avg_s": t["mean"], "max_s": t["max"],
                             "GBps": nbytes / t["min"] / 1e9, "bytes": nbytes}
    for k in ("init", "read"):  # three arrays written (Init) or read back to the host (Read)
        t = timings[k]
        nbytes = 3 * n * dt.itemsize * p
        out[k] = {"best_s": t["min"], "GBps": nbytes / t["min"] / 1e9 if t["min"] else None,
                  "bytes": nbytes, "runs": t.get("n", repeat)}
    out["rules"] = rules.check(comm, n * dt.itemsize,
                               {k: v["best_s"] for k, v in out["kernels"].items()})
    return out
