"""Generic helpers the workload specs (``hpc/<app>/spec.py``) build their rules from.

Scaling rules grow or shrink an app's options with the rank count; the helpers here check
rank ratios and round sizes. Performance models are declared as data: a
:class:`LinearModel` (``T = sum_k theta_k f_k(q, p)``, fitted by non-negative least squares in
:mod:`hpc.scaling.model`) or a :class:`BandwidthModel` (an aggregate-bandwidth roofline).

This module imports only the standard library and :mod:`hpc.scaling.argv`, so a spec may import
it without pulling in the fitting code (NumPy, SciPy) or any other workload.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from hpc.core.spec import StudyError

from . import argv as A

__all__ = ["StudyError", "ModelError", "prime_factors", "factor", "log2_exact", "root_scale", "dims_create",
           "log2", "num", "opt", "scale_keys", "spread_factors", "Term", "LinearModel", "BandwidthModel",
           "ALPHA", "BETA", "LAMBDA"]


class ModelError(ValueError):
    """The results lack what a model needs."""


# -- scaling-rule helpers ------------------------------------------------------------------
def prime_factors(n: int) -> list[int]:
    """The prime factors of n, ascending, with multiplicity."""
    out, d = [], 2
    while d * d <= n:
        while n % d == 0:
            out.append(d)
            n //= d
        d += 1
    if n > 1:
        out.append(n)
    return out


def factor(p: int, p0: int) -> int:
    """p / p0 for weak and strong rules; a :class:`StudyError` when p0 does not divide p."""
    if p % p0:
        raise StudyError(f"weak scaling needs every rank count to be a multiple of the smallest "
                         f"({p0}); {p} is not")
    return p // p0


def log2_exact(f: int, what: str) -> int:
    """log2 f for generators whose size is a power of 2 (``what`` names the generator)."""
    k = f.bit_length() - 1
    if 1 << k != f:
        raise StudyError(f"weak scaling {what} grows SCALE by log2(ranks/p0): rank ratios "
                         f"must be powers of 2, got {f}")
    return k


def root_scale(n: int, f: int, dim: int) -> int:
    """n x f^(1/dim), rounded: a grid side whose dim-dimensional volume grows by f."""
    return max(1, int(round(n * f ** (1.0 / dim))))


def spread_factors(dims: Sequence[int], f: int) -> list[int]:
    """dims with f's prime factors multiplied into the dimension grown least (largest prime
    first, ties to the lowest axis), so the volume grows by f exactly."""
    mult = [1] * len(dims)
    for q in sorted(prime_factors(int(f)), reverse=True):
        i = min(range(len(dims)), key=lambda j: (mult[j], j))
        mult[i] *= q
    return [d * m for d, m in zip(dims, mult)]


# -- model helpers ---------------------------------------------------------------------------
def dims_create(p: int, nd: int = 3) -> list[int]:
    """A balanced factorisation of p into nd factors, largest first (as MPI_Dims_create)."""
    dims = [1] * nd
    for q in sorted(prime_factors(p), reverse=True):
        i = min(range(nd), key=lambda j: dims[j])
        dims[i] *= q
    return sorted(dims, reverse=True)


def log2(p: float) -> float:
    """log2 p, and 0 for one rank (no reduction tree)."""
    return math.log2(p) if p > 1 else 0.0


def num(d: dict, *keys: str) -> float | None:
    """The first of keys in d that holds a number (not a bool)."""
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def opt(run: dict, name: str, nargs: int = 1) -> list[str] | None:
    """An option's values in the app options a study run used."""
    return A.find(run.get("args", []), name, nargs)


def scale_keys(keys: tuple[str, ...]) -> Callable[[dict, float], dict]:
    """A weak-scaling ``grow`` that multiplies the named quantities by f."""
    def grow(q: dict, f: float) -> dict:
        return {k: (v * f if k in keys else v) for k, v in q.items()}
    return grow


@dataclass(frozen=True)
class Term:
    """One model parameter: name (with its unit), unit, meaning, prior value."""

    name: str
    unit: str
    what: str
    prior: float


ALPHA = Term("alpha_s", "s", "latency per message", 2e-6)
BETA = Term("beta_s_per_B", "s/B", "inverse bandwidth", 1 / 10e9)
LAMBDA = Term("lambda_s", "s", "allreduce latency per log2(p) level", 2e-6)


@dataclass(frozen=True)
class LinearModel:
    """T(q, p) = sum_k theta_k f_k(q, p): the terms, the problem quantities read from a run,
    the features, and how the quantities grow in weak scaling.

    ``variants`` ((method, legend), ...) are methods the fit also predicts through
    ``predict_variant(theta, features, q, p, method)`` (theta and features by term name):
    CG's fit predicts pipelined CG, which hides its allreduce behind the SpMV.
    """

    app: str
    terms: tuple[Term, ...]
    quantities: Callable[[dict], dict]                  # run -> {quantity: value}
    features: Callable[[dict, int], dict]               # (q, p) -> {term: feature}
    grow: Callable[[dict, float], dict]                 # weak scaling: q at p0 -> at f p0
    per_iteration: bool = False
    label: str = "time per run (s)"
    variants: tuple[tuple[str, str], ...] = ()
    predict_variant: Callable[[dict, dict, dict, int, str], float] | None = None


@dataclass(frozen=True)
class BandwidthModel:
    """Aggregate bandwidth B(p) = nodes(p) x min(r(p) b1, Bnode), r(p) = min(p, C) ranks per
    node, fitted to the bytes each run moved; time = bytes / B(p).

    ``bytes_moved(run)`` gives one run's bytes over all ranks; ``flops_per_byte`` is the kernel's
    arithmetic intensity (for the roofline's attainable FLOP rate), ``kernel`` its name.
    """

    app: str
    bytes_moved: Callable[[dict], float]
    flops_per_byte: float
    kernel: str = "kernel"
    label: str = "time per run (s)"
