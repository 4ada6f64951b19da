"""``python -m hpc.scaling check STUDY --reference REF.toml``: a study against per-system references.

The reference file holds, per system, the expected value of each metric with tolerances, the
way ReFrame's performance references do (``value, lower, upper``: relative bounds, ``lower``
<= 0 <= ``upper``; a missing bound is unbounded)::

    # scaling/references/stream_weak.toml
    [systems.laptop]                 # a system: its name, matched against the study's host
    match = ["vm", "laptop-*"]       # host name globs [default: the system's name]
    time_s = {value = 0.002, lower = -0.5, upper = 0.5}     # every rank count
    "triad_GBps@1" = {value = 25.0, lower = -0.2}           # at 1 rank only, no upper bound
    "triad_GBps@2" = [40.0, -0.2, 1.0]                      # the same, as an array

    [systems."*"]                    # any other host
    "iterations" = {value = 83, lower = 0, upper = 0}       # exact

A metric is ``time_s`` (the run's time, from the app's spec) or a key of the records'
``metrics``; the value checked is the median over the study's valid repeats at that rank
count. The system is the first whose ``match`` globs (or name) match the host the study ran
on (``--system`` overrides). Exit 0 when every referenced value is within its bounds, 1 when
one is outside (or a referenced metric is missing, or the study has failed runs), 2 on a bad
file.
"""
from __future__ import annotations

import fnmatch
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc.core.errors import UsageError

from . import results


@dataclass(frozen=True)
class Reference:
    metric: str
    ranks: int | None   # None: every rank count of the study
    value: float
    lower: float | None  # relative, <= 0; None: unbounded
    upper: float | None  # relative, >= 0; None: unbounded

    def bounds(self) -> tuple[float, float]:
        lo = -float("inf") if self.lower is None else self.value * (1 + self.lower)
        hi = float("inf") if self.upper is None else self.value * (1 + self.upper)
        return (min(lo, hi), max(lo, hi))  # (a negative reference value swaps them)


def _num(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or abs(x) == float("inf"):
        raise UsageError(f"{what}: expected a finite number, got {x!r}")
    return float(x)


def _reference(key: str, spec: Any, where: str) -> Reference:
    metric, _, at = key.partition("@")
    ranks = None
    if at:
        if not at.isdigit() or int(at) <= 0:
            raise UsageError(f"{where}: {key!r}: the part after @ must be a rank count")
        ranks = int(at)
    if isinstance(spec, list):
        if not 1 <= len(spec) <= 3:
            raise UsageError(f"{where}: {key!r}: expected [value, lower, upper]")
        spec = dict(zip(("value", "lower", "upper"), spec))
    if not isinstance(spec, dict) or "value" not in spec or set(spec) - {"value", "lower", "upper", "unit"}:
        raise UsageError(f"{where}: {key!r}: expected {{value = V, lower = L, upper = U}}")
    value = _num(spec["value"], f"{where}: {key}.value")
    lower = _num(spec["lower"], f"{where}: {key}.lower") if "lower" in spec else None
    upper = _num(spec["upper"], f"{where}: {key}.upper") if "upper" in spec else None
    if lower is not None and lower > 0:
        raise UsageError(f"{where}: {key}.lower must be <= 0 (a relative bound), got {lower}")
    if upper is not None and upper < 0:
        raise UsageError(f"{where}: {key}.upper must be >= 0 (a relative bound), got {upper}")
    return Reference(metric, ranks, value, lower, upper)


def load_references(path: str | Path, host: str, system: str | None = None) -> tuple[str, list[Reference]]:
    """(system name, its references) for ``host`` from a reference TOML file."""
    import tomllib

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"--reference {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--reference {path}: not valid TOML: {exc}") from None
    systems = doc.get("systems")
    if not isinstance(systems, dict) or not systems or set(doc) - {"systems", "description"}:
        raise UsageError(f"--reference {path}: expected [systems.NAME] tables (and nothing else)")
    chosen = None
    if system is not None:
        if system not in systems:
            raise UsageError(f"--system {system}: not in {path} (has: {', '.join(systems)})")
        chosen = system
    else:
        for name, table in systems.items():
            if not isinstance(table, dict):
                raise UsageError(f"--reference {path}: systems.{name} must be a table")
            globs = table.get("match", [name])
            globs = [globs] if isinstance(globs, str) else globs
            if any(fnmatch.fnmatchcase(host, g) for g in globs):
                chosen = name
                break
    if chosen is None:
        raise UsageError(f"--reference {path}: no system matches host {host!r} "
                         f"(systems: {', '.join(systems)}; add match globs or a \"*\" system)")
    table = systems[chosen]
    refs = [_reference(k, v, f"{path} [systems.{chosen}]") for k, v in table.items()
            if k != "match"]
    if not refs:
        raise UsageError(f"--reference {path}: systems.{chosen} has no references")
    return chosen, refs


def _values(doc: dict) -> tuple[dict[tuple[str, int], list[float]], list[dict]]:
    """{(metric, ranks): values over the valid repeats}, and the failed runs."""
    out: dict[tuple[str, int], list[float]] = {}
    failed = []
    for run in doc["runs"]:
        if not run.get("passed"):
            failed.append(run)
            continue
        p = int(run["ranks"])
        if run.get("time_s") is not None:
            out.setdefault(("time_s", p), []).append(float(run["time_s"]))
        for k, v in ((run.get("record") or {}).get("metrics") or {}).items():
            if k != "time_s" and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault((k, p), []).append(float(v))
    return out, failed


def check(study: str | Path, reference: str | Path, system: str | None = None,
          say=print) -> int:
    """Print one line per referenced value and the verdict; return the exit status."""
    try:
        doc = results.load(study)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    host = (doc.get("machine") or {}).get("hostname") or ""
    name, refs = load_references(reference, host, system)
    values, failed = _values(doc)
    ranks = sorted({int(r["ranks"]) for r in doc["runs"]})
    say(f"study {doc['study'].get('name')} on {host!r}: references of system {name!r}")
    bad = 0
    for ref in refs:
        for p in ([ref.ranks] if ref.ranks is not None else ranks):
            vals = values.get((ref.metric, p))
            lo, hi = ref.bounds()
            label = f"  {ref.metric}@{p}"
            if not vals:
                say(f"{label}: MISSING (no valid run at {p} ranks has it)")
                bad += 1
                continue
            v = statistics.median(vals)
            ok = lo <= v <= hi
            bad += not ok
            rel = (v - ref.value) / abs(ref.value) if ref.value else 0.0
            say(f"{label}: {v:.6g} (median of {len(vals)}) vs reference {ref.value:.6g} "
                f"[{lo:.6g}, {hi:.6g}] {rel:+.1%}: {'ok' if ok else 'OUTSIDE'}")
    for run in failed:
        say(f"  run ranks={run['ranks']} rep={run['rep']}: FAILED (exit {run.get('exit_code')})")
    bad += len(failed)
    say(f"{'PASSED' if not bad else 'FAILED'}: {bad} problem(s)")
    return 0 if not bad else 1
