"""What the study runner, the models and the job templates know about each workload.

Everything app-specific lives in the table ``APPS``: tiny default options for a study, where a
run's time is found in its record, how weak scaling grows the problem with the ranks, which
options a rank count forces (train's layout), and which back end a GPU job uses. The rest of
hpc.scaling and hpc.jobs is generic over the contract (../shared/CONTRACT.md).

Weak scaling keeps the work per rank constant. The options given for a study describe the
problem at the study's smallest rank count ``p0``; at ``p`` ranks the problem grows by
``f = p / p0``:

=========  =================================  ==========================================
app        option                             at f times the ranks
=========  =================================  ==========================================
stream     --arraysize (already per rank)     unchanged
halo       --grid NX NY NZ (global)           f's prime factors multiply the dimension
                                              that has grown least (volume x f exactly)
cg         --problem poisson2d:N              N x f^(1/2)  (N^2 unknowns)
           --problem poisson3d:N | hpcg:N     N x f^(1/3)  (N^3 unknowns)
spgemm     --generate rmat:SCALE:EF           SCALE + log2 f (f a power of 2)
           --generate poisson3d:N             N x f^(1/3)
pagerank   --generate kron:SCALE:EF           SCALE + log2 f (f a power of 2)
kmedoids   --data blobs:N:D:K | uniform:N:D   N x f^(1/2)  (the O(N^2) distance work)
train      --global-batch B                   B x f        (per-rank batch constant)
=========  =================================  ==========================================

Strong scaling keeps the global problem fixed: every size above is global except stream's
--arraysize, which strong mode divides by f.

Rounded sizes make the per-rank work only nearly constant; the runner records the options
each rank count actually ran with. Input files (``--matrix``, ``--graph``, ``--a``, a data
file) cannot be grown, so weak scaling with one is a clear error.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from . import argv as A


class StudyError(ValueError):
    """A study that cannot be set up (bad options for this app or mode)."""


def _prime_factors(n: int) -> list[int]:
    out, d = [], 2
    while d * d <= n:
        while n % d == 0:
            out.append(d)
            n //= d
        d += 1
    if n > 1:
        out.append(n)
    return out


def _factor(p: int, p0: int) -> int:
    if p % p0:
        raise StudyError(f"weak scaling needs every rank count to be a multiple of the smallest "
                         f"({p0}); {p} is not")
    return p // p0


def _log2_exact(f: int, what: str) -> int:
    k = f.bit_length() - 1
    if 1 << k != f:
        raise StudyError(f"weak scaling {what} grows SCALE by log2(ranks/{'p0'}): rank ratios "
                         f"must be powers of 2, got {f}")
    return k


def _root_scale(n: int, f: int, dim: int) -> int:
    return max(1, int(round(n * f ** (1.0 / dim))))


# -- weak-scaling rules: (app argv, p, p0) -> app argv -----------------------------------
def weak_stream(argv: Sequence[str], p: int, p0: int) -> list[str]:
    _factor(p, p0)
    return list(argv)  # --arraysize is per rank


def weak_halo(argv: Sequence[str], p: int, p0: int) -> list[str]:
    f = _factor(p, p0)
    grid = A.find(argv, "--grid", 3)
    if grid is None:
        raise StudyError("weak scaling hpc.halo needs --grid NX NY NZ (the grid at the "
                         "smallest rank count) in the app options")
    dims = [int(g) for g in grid]
    mult = [1, 1, 1]
    for q in sorted(_prime_factors(f), reverse=True):
        i = min(range(3), key=lambda j: (mult[j], j))
        mult[i] *= q
    return A.replace(argv, "--grid", [str(d * m) for d, m in zip(dims, mult)])


_CG_DIM = {"poisson2d": 2, "poisson3d": 3, "hpcg": 3}


def weak_cg(argv: Sequence[str], p: int, p0: int) -> list[str]:
    f = _factor(p, p0)
    prob = A.find(argv, "--problem")
    if A.find(argv, "--matrix") is not None or prob is None:
        raise StudyError("weak scaling hpc.cg needs a generated --problem "
                         "poisson2d:N|poisson3d:N|hpcg:N (a --matrix file cannot grow)")
    m = re.fullmatch(r"(poisson2d|poisson3d|hpcg):(\d+)", prob[0])
    if not m:
        raise StudyError(f"weak scaling hpc.cg: cannot grow --problem {prob[0]!r}")
    kind, n = m.group(1), int(m.group(2))
    return A.replace(argv, "--problem", f"{kind}:{_root_scale(n, f, _CG_DIM[kind])}")


def weak_spgemm(argv: Sequence[str], p: int, p0: int) -> list[str]:
    f = _factor(p, p0)
    gen = A.find(argv, "--generate")
    if gen is None:
        raise StudyError("weak scaling hpc.spgemm needs --generate rmat:SCALE:EF or "
                         "poisson3d:N (matrix files cannot grow)")
    m = re.fullmatch(r"rmat:(\d+):(\d+)", gen[0])
    if m:
        scale = int(m.group(1)) + _log2_exact(f, "rmat")
        return A.replace(argv, "--generate", f"rmat:{scale}:{m.group(2)}")
    m = re.fullmatch(r"poisson3d:(\d+)", gen[0])
    if m:
        return A.replace(argv, "--generate", f"poisson3d:{_root_scale(int(m.group(1)), f, 3)}")
    raise StudyError(f"weak scaling hpc.spgemm: cannot grow --generate {gen[0]!r}")


def weak_pagerank(argv: Sequence[str], p: int, p0: int) -> list[str]:
    f = _factor(p, p0)
    gen = A.find(argv, "--generate")
    m = re.fullmatch(r"kron:(\d+):(\d+)", gen[0]) if gen else None
    if not m:
        raise StudyError("weak scaling hpc.pagerank needs --generate kron:SCALE:EDGEFACTOR "
                         "(a --graph file cannot grow)")
    scale = int(m.group(1)) + _log2_exact(f, "kron")
    return A.replace(argv, "--generate", f"kron:{scale}:{m.group(2)}")


def weak_kmedoids(argv: Sequence[str], p: int, p0: int) -> list[str]:
    f = _factor(p, p0)
    for opt in ("--data", "--generate"):
        val = A.find(argv, opt)
        m = re.fullmatch(r"(blobs|uniform):(\d+)(:.*)?", val[0]) if val else None
        if m:
            n = _root_scale(int(m.group(2)), f, 2)
            return A.replace(argv, opt, f"{m.group(1)}:{n}{m.group(3) or ''}")
    raise StudyError("weak scaling hpc.kmedoids needs a generated data set "
                     "(--data blobs:N:D:K or uniform:N:D; a data file cannot grow)")


def weak_train(argv: Sequence[str], p: int, p0: int) -> list[str]:
    f = _factor(p, p0)
    gb = A.find(argv, "--global-batch")
    if gb is None:
        raise StudyError("weak scaling hpc.train needs --global-batch B (the batch at the "
                         "smallest rank count)")
    return A.replace(argv, "--global-batch", str(int(gb[0]) * f))


# -- strong-scaling rules: options given per rank shrink so the global problem stays fixed --
def strong_stream(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--arraysize is per rank: divide it so the global array length stays fixed."""
    f = _factor(p, p0)
    n = int((A.find(argv, "--arraysize") or A.find(argv, "-s") or [str(2**25)])[0])
    if n % f:
        raise StudyError(f"strong scaling hpc.stream divides --arraysize {n} by ranks/{p0} = "
                         f"{f}: pick a size divisible by every ratio")
    return A.replace(A.remove(argv, "-s"), "--arraysize", str(n // f))


def strong_same(argv: Sequence[str], p: int, p0: int) -> list[str]:
    return list(argv)  # global sizes: nothing to change


# -- rank-dependent layout: options a rank count forces in both modes --------------------
def layout_train(argv: Sequence[str], p: int) -> list[str]:
    """tp x pp x dp = ranks: keep the given tp and pp, give the rest to data parallelism."""
    tp = int((A.find(argv, "--tp") or ["1"])[0])
    pp = int((A.find(argv, "--pp") or ["1"])[0])
    if p % (tp * pp):
        raise StudyError(f"hpc.train: {p} ranks are not a multiple of tp x pp = {tp * pp}")
    return A.replace(argv, "--dp", str(p // (tp * pp)))


@dataclass(frozen=True)
class AppSpec:
    """One workload as the scaling tools see it."""

    name: str
    study_args: tuple[str, ...]            # tiny problem used when a study gives none
    time_sources: tuple[str, ...]          # where a run's time is, in order of preference
    weak: Callable[[Sequence[str], int, int], list[str]]
    model: str                             # model family in hpc.scaling.model
    gpu_backend: str | None = "cupy"       # --backend for GPU jobs unless one is given
    layout: Callable[[Sequence[str], int], list[str]] | None = None
    strong: Callable[[Sequence[str], int, int], list[str]] = strong_same
    iterations_key: str | None = None      # metrics key that divides time into per-iteration
    notes: str = ""
    job_args: tuple[str, ...] = field(default=())  # a modest cluster-size default for jobs


APPS: dict[str, AppSpec] = {
    "stream": AppSpec(
        "stream", ("--arraysize", "200000", "--numtimes", "10"),
        ("timings.triad", "metrics.time_s"), weak_stream, "bandwidth", gpu_backend="cuda",
        strong=strong_stream,
        job_args=("--arraysize", "33554432", "--numtimes", "100")),
    "halo": AppSpec(
        "halo", ("--grid", "48", "48", "48", "--radius", "2", "--quantities", "2"),
        ("metrics.exchange_us*1e-6", "timings.exchange", "metrics.time_s"), weak_halo,
        "halo", job_args=("--grid", "512", "512", "512")),
    "cg": AppSpec(
        "cg", ("--problem", "poisson3d:24", "--rtol", "1e-6"),
        ("timings.solve", "timings.cg", "metrics.solve_s", "metrics.time_s"), weak_cg, "cg",
        iterations_key="iterations", job_args=("--problem", "hpcg:192")),
    "spgemm": AppSpec(
        "spgemm", ("--generate", "rmat:11:8"),
        ("timings.spgemm", "timings.multiply", "metrics.time_s"), weak_spgemm, "spgemm",
        job_args=("--generate", "rmat:20:16")),
    "pagerank": AppSpec(
        "pagerank", ("--generate", "kron:12:8"),
        ("timings.pagerank", "timings.iterate", "timings.solve", "metrics.time_s"),
        weak_pagerank, "pagerank", iterations_key="iterations",
        job_args=("--generate", "kron:22:16")),
    "kmedoids": AppSpec(
        "kmedoids", ("--data", "blobs:1500:8:5", "--k", "5", "--method", "fasterpam"),
        ("timings.distances+timings.cluster", "timings.fit", "timings.build+timings.swap",
         "metrics.time_s"), weak_kmedoids,
        "kmedoids", job_args=("--data", "blobs:100000:16:10", "--k", "10")),
    "train": AppSpec(
        "train", ("--layers", "2", "--hidden", "64", "--heads", "4", "--seq-len", "32",
                  "--vocab", "256", "--global-batch", "8", "--micro-batches", "2",
                  "--steps", "4"),
        ("metrics.step_time_s", "timings.step", "metrics.time_s"), weak_train, "train",
        layout=layout_train,
        job_args=("--layers", "12", "--hidden", "768", "--heads", "12", "--seq-len", "1024",
                  "--global-batch", "64", "--steps", "100")),
}


def spec(app: str) -> AppSpec:
    try:
        return APPS[app]
    except KeyError:
        raise StudyError(f"unknown app {app!r} (one of: {', '.join(APPS)})") from None


def args_for(app: str, mode: str, app_argv: Sequence[str], p: int, p0: int) -> list[str]:
    """The app options one run of a study uses at p ranks."""
    s = spec(app)
    argv = list(app_argv) if app_argv else list(s.study_args)
    argv = s.weak(argv, p, p0) if mode == "weak" else s.strong(argv, p, p0)
    if s.layout is not None:
        argv = s.layout(argv, p)
    return argv


def _lookup(record: dict, key: str) -> float | None:
    scale = 1.0
    if "*" in key:
        key, s = key.split("*", 1)
        scale = float(s)
    section, _, name = key.partition(".")
    block = record.get(section) or {}
    v = block.get(name)
    if section == "timings":
        v = v.get("min") if isinstance(v, dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v) * scale


def run_time(app: str, record: dict) -> tuple[float | None, str]:
    """(seconds, where it came from) for one run's record; the app's first source present.

    Falls back to metrics.time_s, then to the sum of every phase's best time.
    """
    sources = list(APPS[app].time_sources) if app in APPS else []
    for src in sources + ["metrics.time_s"]:
        parts = [_lookup(record, k) for k in src.split("+")]
        if parts and all(v is not None for v in parts):
            return float(sum(parts)), src
    timings = record.get("timings") or {}
    mins = [v.get("min") for v in timings.values() if isinstance(v, dict)]
    mins = [float(m) for m in mins if isinstance(m, (int, float))]
    if mins:
        return float(sum(mins)), "timings.*(sum)"
    return None, "none"
