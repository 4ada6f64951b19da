"""One spec per workload: everything the suite, the scaling tools and the job generator know.

A workload is a package ``hpc/<name>/`` with a ``spec.py`` that defines ``SPEC``, a
:class:`WorkloadSpec`. :func:`all_specs` finds them by walking the ``hpc`` package
(:func:`pkgutil.iter_modules`) for sub-packages that contain a ``spec.py`` (``hpc.core``, this
module's package, is not a workload), so a new workload is
one folder (its ``app.py``, ``__main__.py``, ``spec.py``) plus its native file; nothing else
lists the workloads. Readers of the specs:

- ``hpc.suite``: :attr:`WorkloadSpec.suite` (the laptop-size schedule) and
  :attr:`WorkloadSpec.headline` (the figure in the table);
- ``hpc.scaling``: :attr:`~WorkloadSpec.study_args`, :attr:`~WorkloadSpec.time_sources`,
  the :attr:`~WorkloadSpec.weak`, :attr:`~WorkloadSpec.strong` and
  :attr:`~WorkloadSpec.layout` rules, :attr:`~WorkloadSpec.model` and
  :attr:`~WorkloadSpec.iterations_key`;
- ``hpc.jobs``: :attr:`~WorkloadSpec.job_args`, :attr:`~WorkloadSpec.gpu_args` and the
  layout rule.

Order. :func:`all_specs` returns the specs sorted by :attr:`WorkloadSpec.order`, then by
name: the order the suite runs them and every listing shows them (stream 10, halo 20,
pagerank 30, kmedoids 40, spgemm 50, cg 60, train 70; a new workload picks a free number).

This module imports nothing from the workloads at import time: a spec module is imported
only when :func:`load` or :func:`all_specs` asks for it, and a spec module imports only
lightweight generic helpers (:mod:`hpc.scaling.argv`, :mod:`hpc.scaling.rules`), so there is
no import cycle between the specs and their readers.
"""
from __future__ import annotations

import functools
import importlib
import math
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import UsageError

__all__ = ["WorkloadSpec", "SuiteRow", "Metric", "StudyError", "load", "all_specs", "names",
           "clear_cache"]

#: A scaling rule: (app argv, ranks p, smallest ranks p0) -> the app argv at p ranks.
ScaleRule = Callable[[Sequence[str], int, int], list[str]]
#: A layout rule: (app argv, ranks p) -> the app argv with the options p forces.
LayoutRule = Callable[[Sequence[str], int], list[str]]


class StudyError(UsageError):
    """A study or job that cannot be set up for this workload (the message says why)."""


@dataclass(frozen=True)
class SuiteRow:
    """One run of the suite's schedule (``python -m hpc.suite``).

    Attributes
    ----------
    label : str
        Name in the table, ``<app>`` or ``<app>/<variant>``.
    argv : tuple of str
        The app's options (``--json`` and ``--quiet`` are added by the suite).
    backend : str or None
        Back end the row needs (a name in :mod:`hpc.core.backends`); None: always runs.
    ranks : str or None
        Rank-count rule: ``"square"`` (a 2D process grid) or ``"multiple:K"``.
    """

    label: str
    argv: tuple[str, ...]
    backend: str | None = None
    ranks: str | None = None

    def rank_problem(self, size: int) -> str | None:
        """Why ``size`` ranks cannot run this row, or None when they can."""
        if self.ranks is None:
            return None
        if self.ranks == "square":
            if math.isqrt(size) ** 2 != size:
                return f"needs a square number of ranks, not {size}"
            return None
        kind, _, k = self.ranks.partition(":")
        if kind == "multiple" and k.isdigit():
            return None if size % int(k) == 0 else f"needs a multiple of {k} ranks, not {size}"
        raise ValueError(f"suite row {self.label!r}: unknown rank rule {self.ranks!r}")


@dataclass(frozen=True)
class Metric:
    """A figure in a run's record: ``record["metrics"][key]``, shown with ``unit``."""

    key: str
    unit: str


@dataclass(frozen=True)
class WorkloadSpec:
    """What the suite, ``hpc.scaling`` and ``hpc.jobs`` know about one workload.

    Attributes
    ----------
    name : str
        The package: ``python -m hpc.<name>``.
    description : str
        One line, shown by ``python -m hpc``.
    order : int
        Position in every listing (see the module docstring).
    suite : tuple of SuiteRow
        The suite's laptop-size runs of this workload, in order.
    headline : Metric or None
        The figure the suite's table shows for it.
    study_args : tuple of str
        Tiny options used by a scaling study that gives none.
    time_sources : tuple of str
        Where a run's time is in its record, in order of preference:
        ``"section.key"`` (a ``timings`` phase reads its ``min``), ``a+b`` sums, ``key*1e-6``
        scales. ``metrics.time_s`` and then the sum of every phase follow as fall-backs.
    weak : callable or None
        Weak-scaling rule (argv, p, p0) -> argv at p ranks; None: no weak scaling.
    strong : callable or None
        Strong-scaling rule; None: the options are global sizes and stay as given.
    layout : callable or None
        Options a rank count forces in both modes and in jobs (train's ``--dp``).
    model : object or None
        The performance model hook: a :class:`hpc.scaling.rules.LinearModel` or
        :class:`hpc.scaling.rules.BandwidthModel` that ``python -m hpc.scaling model`` fits.
    iterations_key : str or None
        Metrics key dividing a run's time into time per iteration for the model.
    gpu_args : tuple of str
        What a GPU job adds to the app's options, an option and its value (the GPU back end,
        ``--backend cupy``; halo's ``--method gpu-staged``), unless the options already set
        that option; empty: the app has no GPU path.
    job_args : tuple of str
        A modest cluster-size default for ``python -m hpc.jobs`` when no options are given.
    """

    name: str
    description: str
    order: int = 100
    suite: tuple[SuiteRow, ...] = ()
    headline: Metric | None = None
    study_args: tuple[str, ...] = ()
    time_sources: tuple[str, ...] = ("metrics.time_s",)
    weak: ScaleRule | None = None
    strong: ScaleRule | None = None
    layout: LayoutRule | None = None
    model: Any = None
    iterations_key: str | None = None
    gpu_args: tuple[str, ...] = ()
    job_args: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The module run by ``python -m``: ``hpc.<name>``."""
        return f"hpc.{self.name}"

    @property
    def gpu_backend(self) -> str | None:
        """The ``--backend`` a GPU job uses, if :attr:`gpu_args` sets one."""
        args = list(self.gpu_args)
        return args[args.index("--backend") + 1] if "--backend" in args[:-1] else None

    def gpu_argv(self, argv: Sequence[str]) -> list[str]:
        """argv with :attr:`gpu_args` added unless argv already sets that option."""
        out = list(argv)
        if self.gpu_args:
            name = self.gpu_args[0]
            if name not in out and not any(a.startswith(name + "=") for a in out):
                out += list(self.gpu_args)
        return out

    def study_argv(self, mode: str, app_argv: Sequence[str], p: int, p0: int) -> list[str]:
        """The app options one run of a ``mode`` study uses at ``p`` ranks (smallest ``p0``).

        Empty ``app_argv`` means :attr:`study_args`. Raises :class:`StudyError` when the
        options cannot be scaled (a file input in weak mode, a rank count the rule refuses).
        """
        argv = list(app_argv) if app_argv else list(self.study_args)
        if mode == "weak":
            if self.weak is None:
                raise StudyError(f"hpc.{self.name} has no weak-scaling rule")
            argv = self.weak(argv, p, p0)
        elif mode == "strong":
            if self.strong is not None:
                argv = self.strong(argv, p, p0)
        else:
            raise StudyError(f"mode must be strong or weak, got {mode!r}")
        if self.layout is not None:
            argv = self.layout(argv, p)
        return argv

    def run_time(self, record: dict) -> tuple[float | None, str]:
        """(seconds, where it came from) for one run's record: the first source present.

        Falls back to ``metrics.time_s``, then to the sum of every phase's best time.
        """
        for src in list(self.time_sources) + ["metrics.time_s"]:
            parts = [_lookup(record, k) for k in src.split("+")]
            if parts and all(v is not None for v in parts):
                return float(sum(parts)), src  # type: ignore[arg-type]
        timings = record.get("timings") or {}
        mins = [v.get("min") for v in timings.values() if isinstance(v, dict)]
        mins = [float(m) for m in mins if isinstance(m, (int, float)) and not isinstance(m, bool)]
        if mins:
            return float(sum(mins)), "timings.*(sum)"
        return None, "none"


def _lookup(record: dict, key: str) -> float | None:
    scale = 1.0
    if "*" in key:
        key, s = key.split("*", 1)
        scale = float(s)
    section, _, name = key.partition(".")
    block = record.get(section) or {}
    v = block.get(name) if isinstance(block, dict) else None
    if section == "timings":
        v = v.get("min") if isinstance(v, dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v) * scale


@functools.lru_cache(maxsize=1)
def _discover() -> tuple[str, ...]:
    """Sub-packages of ``hpc`` that hold a ``spec.py`` (not imported), but ``hpc.core``."""
    found = set()
    # hpc's search path: the package is imported before any of its modules, and is not
    # imported here by name (its __init__ reads the specs: no import cycle)
    for m in pkgutil.iter_modules(sys.modules["hpc"].__path__):
        root = Path(getattr(m.module_finder, "path", ""))
        if m.ispkg and m.name != "core" and (root / m.name / "spec.py").is_file():
            found.add(m.name)
    return tuple(sorted(found))


@functools.lru_cache(maxsize=None)
def _load(name: str) -> WorkloadSpec:
    mod = importlib.import_module(f"hpc.{name}.spec")
    spec = getattr(mod, "SPEC", None)
    if not isinstance(spec, WorkloadSpec) or spec.name != name:
        raise RuntimeError(f"hpc/{name}/spec.py must define SPEC = WorkloadSpec(name={name!r}, ...)")
    return spec


def load(name: str) -> WorkloadSpec:
    """The spec of workload ``name``.

    Raises
    ------
    StudyError
        (a ``ValueError``) when there is no such workload.
    """
    if not isinstance(name, str) or name not in _discover():
        raise StudyError(f"unknown app {name!r} (one of: {', '.join(names())})")
    return _load(name)


@functools.lru_cache(maxsize=1)
def _all() -> tuple[WorkloadSpec, ...]:
    return tuple(sorted((_load(n) for n in _discover()), key=lambda s: (s.order, s.name)))


def clear_cache() -> None:
    """Forget discovered workloads (after adding one to a running process, e.g. in a test)."""
    _discover.cache_clear()
    _load.cache_clear()
    _all.cache_clear()


def all_specs() -> list[WorkloadSpec]:
    """Every workload's spec, in the documented order (:attr:`WorkloadSpec.order`, name)."""
    return list(_all())


def names() -> list[str]:
    """Every workload's name, in the documented order."""
    return [s.name for s in _all()]
