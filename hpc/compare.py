"""``python -m hpc compare BASE NEW``: did anything get slower (or worse) between two sets of runs?

    python -m hpc compare BASE NEW [--threshold 0.05] [--all]

BASE and NEW may each be a record, a suite record, a scaling study folder, a folder of
records or a ``results.csv`` (whatever ``python -m hpc report`` reads). Runs are matched by
app, options (without output paths and verbosity) and rank count; repeats of one experiment
on either side are pooled (their median is compared) and their spread is the noise.

For each matched experiment and metric: both values, the ratio NEW/BASE, and a verdict. A
difference counts only when it exceeds both ``--threshold`` (relative) and the noise seen
across repeats (the larger relative range of BASE's and NEW's repeats, and for the time also
the range of each run's own ``--repeat`` samples: a phase's min..max in its record). Whether larger is
better is read from the metric's name (``*_GBps``, ``gflops``, ``*_per_s``: higher; ``time``,
``*_s``, ``*_us``, ``iterations``, ``loss``: lower); others are shown, not judged.

Exit status: 1 when a headline metric regressed (the run's time, or the app's headline figure
from its spec), so the command can gate CI; 0 otherwise; 2 on bad usage.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from hpc.core import checks
from hpc.core.cli import AppParser
from hpc.core.errors import EXIT_USAGE, UsageError
from hpc.report import Run, headline, load_runs

_HIGHER = re.compile(r"(gbps|gflops|flops|per_s|_ps$|bandwidth|mfu|speedup|efficiency|throughput|rate)", re.I)
_LOWER = re.compile(r"(^time|_time|time_s$|_s$|_ms$|_us$|_ns$|seconds|iterations|^loss|_loss|"
                    r"relres|residual|_err)", re.I)


def direction(metric: str) -> int:
    """+1 when larger is better, -1 when smaller is better, 0 when the name does not say."""
    if _HIGHER.search(metric):
        return 1
    if _LOWER.search(metric):
        return -1
    return 0


def noise(values: Sequence[float]) -> float:
    """The relative range of repeats, (max - min) / median; 0 for one value."""
    if len(values) < 2:
        return 0.0
    med = statistics.median(values)
    return (max(values) - min(values)) / abs(med) if med else 0.0


@dataclass
class Row:
    """One metric of one matched experiment."""

    app: str
    ranks: int | None
    options: str
    backend: str | None
    metric: str
    base: float
    new: float
    n_base: int
    n_new: int
    noise: float
    headline: bool
    verdict: str  # "regressed", "improved", "same", "changed" (direction unknown)

    @property
    def ratio(self) -> float:
        return self.new / self.base if self.base else float("inf") if self.new else 1.0


def _values(runs: Sequence[Run]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        if r.passed is False:
            continue  # an INVALID run's figures are not a baseline nor a result
        if r.time_s is not None:
            out["time_s"].append(r.time_s)
        for k, v in r.metrics.items():
            if k != "time_s":
                out[k].append(v)
    return out


def compare(base: Sequence[Run], new: Sequence[Run], threshold: float = 0.05) -> list[Row]:
    """Every metric of every experiment present in both ``base`` and ``new``."""
    if not threshold >= 0:
        raise UsageError(f"--threshold must be >= 0, got {threshold}")
    groups_b: dict[tuple, list[Run]] = defaultdict(list)
    groups_n: dict[tuple, list[Run]] = defaultdict(list)
    for r in base:
        groups_b[r.key].append(r)
    for r in new:
        groups_n[r.key].append(r)
    rows = []
    for key in [k for k in groups_b if k in groups_n]:
        app, options, ranks = key
        head_key = headline(groups_b[key][0])[0]
        vb, vn = _values(groups_b[key]), _values(groups_n[key])
        for metric in [m for m in vb if m in vn]:
            b, n = statistics.median(vb[metric]), statistics.median(vn[metric])
            nz = max(noise(vb[metric]), noise(vn[metric]))
            if metric == "time_s":  # the spread of the timed repeats inside each run too
                nz = max([nz] + [r.time_spread for r in groups_b[key] + groups_n[key]])
            rel = (n - b) / abs(b) if b else (0.0 if n == b else float("inf"))
            d = direction(metric)
            if abs(rel) <= threshold or abs(rel) <= nz:
                verdict = "same"
            elif d == 0:
                verdict = "changed"
            else:
                verdict = "improved" if rel * d > 0 else "regressed"
            rows.append(Row(app, ranks, options, groups_b[key][0].backend, metric, b, n, len(vb[metric]), len(vn[metric]),
                            nz, metric in ("time_s", head_key), verdict))
    return rows


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


def render(rows: Sequence[Row], show_all: bool = False) -> str:
    head = ["app", "ranks", "backend", "metric", "base", "new", "ratio", "noise", "verdict"]
    shown = [r for r in rows if show_all or r.headline or r.verdict != "same"]
    cells = [[r.app, str(r.ranks), r.backend or "", r.metric + (" *" if r.headline else ""),
              _fmt(r.base) + (f" (n={r.n_base})" if r.n_base > 1 else ""),
              _fmt(r.new) + (f" (n={r.n_new})" if r.n_new > 1 else ""),
              f"{r.ratio:.3f}", f"{100 * r.noise:.1f}%", r.verdict.upper() if r.verdict == "regressed"
              else r.verdict] for r in shown]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
    line = lambda c: "  ".join(s.ljust(w) for s, w in zip(c, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(c) for c in cells])


def parser() -> AppParser:
    p = AppParser(prog="python -m hpc compare", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", metavar="BASE", help="record, study folder, folder or results.csv")
    p.add_argument("new", metavar="NEW", help="the same kinds, to compare against BASE")
    p.add_argument("--threshold", type=checks.real(0), default=0.05, metavar="REL",
                   help="relative difference that counts (default 0.05 = 5%%)")
    p.add_argument("--all", action="store_true", help="also list the metrics that did not change")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 1 when a headline metric regressed, 0 when none did, 2 on bad usage."""
    try:
        args = parser().parse_args(argv)
        if not (args.threshold >= 0 and args.threshold < float("inf")):
            raise UsageError(f"--threshold must be a finite number >= 0, got {args.threshold}")
        base, new = load_runs([args.base]), load_runs([args.new])
        if not base or not new:
            raise UsageError(f"no result records in {args.base if not base else args.new}")
        rows = compare(base, new, args.threshold)
        if not rows:
            raise UsageError("no run in NEW matches one in BASE (same app, options and ranks)")
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    print(render(rows, args.all))
    bad = [r for r in rows if r.headline and r.verdict == "regressed"]
    n_exp = len({(r.app, r.options, r.ranks) for r in rows})
    print(f"\n{n_exp} matched experiment(s); threshold {100 * args.threshold:g}%; "
          f"* = headline metric; "
          + (f"{len(bad)} headline regression(s)" if bad else "no headline regression"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
