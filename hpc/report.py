"""``python -m hpc report``: one table from any number of result records and study folders.

    python -m hpc report RECORD_OR_DIR... [--csv PATH] [--markdown] [--plot PATH]

Each argument may be an app's ``--json`` record, the suite's record (its runs are listed one
by one), a scaling study folder (``DIR/results.json`` and its records), any folder of records
(searched recursively), or a study's ``results.csv``. The table has one row a run: app, ranks,
back end, the app's headline figure (its spec's :attr:`~hpc.core.spec.WorkloadSpec.headline`),
time, VALID, host and date. ``--plot PATH`` draws a training loss curve or a CG residual
history from the (first) record that has one.

The loader here (:func:`load_runs`) is also what ``python -m hpc compare`` reads.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from hpc.core.cli import AppParser, mark_outputs
from hpc.core.errors import EXIT_USAGE, UsageError

#: parameters that say where output goes, how much is printed or how often it is timed, not
#: what ran (runs differing only in these are repeats of one experiment)
VOLATILE = frozenset({"json", "output", "quiet", "verbose", "plot", "monitor", "save",
                      "checkpoint", "log", "version", "repeat"})


@dataclass
class Run:
    """One run, however it was stored: the fields report and compare use."""

    source: str
    app: str
    ranks: int | None
    backend: str | None
    options: str                   # the run's parameters, canonical (what matches runs)
    metrics: dict[str, float] = field(default_factory=dict)
    time_s: float | None = None
    time_spread: float = 0.0       # (max - min) / min of the timed phase's repeats in the run
    passed: bool | None = None
    host: str | None = None
    date: str | None = None
    record: dict | None = None     # the full record when there is one

    @property
    def key(self) -> tuple:
        """What makes two runs the same experiment: app, options and rank count."""
        return (self.app, self.options, self.ranks)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _options(params: dict) -> str:
    keep = {k: v for k, v in sorted(params.items()) if k not in VOLATILE}
    return json.dumps(keep, sort_keys=True, default=str)


def _run_time(app: str, rec: dict) -> tuple[float | None, float]:
    """The run's time (its spec's time source) and the relative spread of that phase's
    repeats within the run (0 when it is not one timed phase or ran once)."""
    from hpc.core.spec import WorkloadSpec, load, names

    spec = load(app) if app in names() else WorkloadSpec(name=app, description="")
    t, src = spec.run_time(rec)
    spread = 0.0
    if src.startswith("timings.") and "+" not in src and "*" not in src:
        ph = (rec.get("timings") or {}).get(src.split(".", 1)[1]) or {}
        lo, hi = _number(ph.get("min")), _number(ph.get("max"))
        if lo and hi is not None and hi >= lo:
            spread = (hi - lo) / lo
    return t, spread


def from_record(rec: dict, source: str) -> Run:
    """A :class:`Run` from an app's record."""
    prov = rec.get("provenance") or {}
    hosts = [h.get("name") for h in prov.get("hosts") or [] if isinstance(h, dict)]
    metrics = {k: n for k, v in (rec.get("metrics") or {}).items()
               if (n := _number(v)) is not None}
    app = str(rec.get("app"))
    t, spread = _run_time(app, rec)
    return Run(source=source, app=app, ranks=rec.get("ranks"), backend=rec.get("backend"),
               options=_options(rec.get("params") or {}), metrics=metrics,
               time_s=t, time_spread=spread, passed=(rec.get("validation") or {}).get("passed"),
               host=",".join(h for h in hosts if h) or None,
               date=prov.get("started_utc"), record=rec)


def _from_csv(path: Path) -> list[Run]:
    runs = []
    with open(path, newline="") as f:
        for k, row in enumerate(csv.DictReader(f)):
            if "app" not in row or "ranks" not in row:
                raise UsageError(f"{path}: not a study results.csv (no app and ranks columns)")
            metrics = {c[2:]: n for c, v in row.items() if c.startswith("m_") and v not in ("", None)
                       and (n := _number(float(v))) is not None}
            opts = json.dumps({"args": shlex.split(row.get("app_args") or ""),
                               "threads": row.get("threads")}, sort_keys=True)
            t = row.get("time_s")
            runs.append(Run(source=f"{path}:{k + 2}", app=row["app"], ranks=int(row["ranks"]),
                            backend=None, options=opts, metrics=metrics,
                            time_s=float(t) if t not in ("", None) else None,
                            passed=row.get("passed") == "True"))
    return runs


def _from_json(path: Path) -> list[Run]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a JSON record ({exc})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not a result record")
    if "study" in doc and "runs" in doc:  # a scaling study's results.json
        return [from_record(r["record"], f"{path}#p{r['ranks']}-r{r['rep']}")
                for r in doc["runs"] if r.get("record")]
    if doc.get("app") == "suite":
        return [from_record(r, f"{path}#{label}") for label, r in (doc.get("records") or {}).items()]
    if "app" not in doc:
        raise UsageError(f"{path}: not a result record (no 'app')")
    return [from_record(doc, str(path))]


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run in the given records, suite records, study folders, folders of records and
    ``results.csv`` files, in the order given.

    Raises
    ------
    UsageError
        A path that does not exist, or a file that is not one of those.
    """
    runs: list[Run] = []
    for p in map(Path, paths):
        if not p.exists():
            raise UsageError(f"{p}: no such file or folder")
        if p.is_dir():
            if (p / "results.json").is_file():
                runs += _from_json(p / "results.json")
                continue
            found = sorted(q for q in p.rglob("*.json") if q.is_file())
            for q in found:
                try:
                    runs += _from_json(q)
                except UsageError:
                    continue  # a folder may hold other JSON files
            continue
        if p.suffix == ".csv":
            runs += _from_csv(p)
        else:
            runs += _from_json(p)
    return runs


# -- the table -------------------------------------------------------------------------
def headline(run: Run) -> tuple[str | None, float | None, str]:
    """(metric key, value, unit) of the run's headline figure (its spec's), or Nones."""
    from hpc.core.spec import load, names

    if run.app not in names():
        return None, None, ""
    h = load(run.app).headline
    if h is None:
        return None, None, ""
    return h.key, run.metrics.get(h.key), h.unit


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


COLUMNS = ("app", "ranks", "backend", "figure", "unit", "time_s", "verdict", "host", "date",
           "source")


def table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row a run, with :data:`COLUMNS`."""
    rows = []
    for r in runs:
        _, value, unit = headline(r)
        verdict = {True: "VALID", False: "INVALID", None: "?"}[r.passed]
        rows.append({"app": r.app, "ranks": r.ranks, "backend": r.backend or "",
                     "figure": value, "unit": unit, "time_s": r.time_s, "verdict": verdict,
                     "host": r.host or "", "date": (r.date or "")[:19].replace("T", " "),
                     "source": r.source})
    return rows


def render(rows: Sequence[dict], markdown: bool = False) -> str:
    """The table as aligned text, or as a Markdown table."""
    head = ["app", "ranks", "backend", "figure", "time (s)", "verdict", "host", "date (UTC)"]
    cells = [[str(r["app"]), str(r["ranks"] or ""), r["backend"],
              (f"{_fmt(r['figure'])} {r['unit']}".strip() if r["figure"] is not None else ""),
              _fmt(r["time_s"]), r["verdict"], r["host"], r["date"]] for r in rows]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(out)
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
    right = {1, 3, 4}
    fmt = lambda c: "  ".join(s.rjust(w) if i in right else s.ljust(w)  # noqa: E731
                              for i, (s, w) in enumerate(zip(c, widths))).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in cells])


def write_csv(path: str | Path, rows: Sequence[dict]) -> None:
    """The table as CSV (atomically)."""
    from hpc.core.atomic import atomic_path

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buf.getvalue())


# -- plots -----------------------------------------------------------------------------
def history(rec: dict) -> tuple[str, list[float]] | None:
    """("loss", losses) of a training record or ("residual", relative residuals) of a CG
    record, from its metrics (or a ``history`` block), or None."""
    blocks = [rec.get("metrics") or {}, rec.get("history") or {}]
    for block in blocks:
        for key, kind in (("losses", "loss"), ("residuals", "residual"),
                          ("residual_history", "residual")):
            v = block.get(key)
            if isinstance(v, list) and v and all(_number(x) is not None for x in v):
                return kind, [float(x) for x in v]
    return None


def plot_history(rec: dict, path: str | Path, title: str | None = None) -> str:
    """Draw a training loss curve or a CG residual history (log scale) from ``rec`` into
    ``path`` (PNG, SVG or PDF by its suffix); returns the kind drawn.

    Raises
    ------
    UsageError
        The record has neither history, or matplotlib is missing.
    """
    found = history(rec)
    if found is None:
        raise UsageError(f"{rec.get('app')} record has no loss or residual history to plot")
    kind, ys = found
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib (pip install hpc[plot])") from None
    from hpc.core.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    if kind == "loss":  # train (from the run's first step) and, when evaluated, eval
        m = rec.get("metrics") or {}
        x0 = int(m.get("first_step") or 0)
        ax.plot(range(x0 + 1, x0 + len(ys) + 1), ys, marker="." if len(ys) < 60 else None,
                label="train")
        ev_x, ev_y = m.get("eval_steps") or [], m.get("eval_losses") or []
        if ev_x and len(ev_x) == len(ev_y):
            ax.plot(ev_x, ev_y, marker="o", label="eval")
            ax.legend()
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
    else:
        ax.semilogy(range(len(ys)), ys)
        ax.set_xlabel("iteration")
        ax.set_ylabel("relative residual norm")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"{rec.get('app')} ({rec.get('ranks')} ranks, "
                          f"{rec.get('backend') or 'default'})")
    fig.tight_layout()
    suffix = Path(path).suffix.lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix)
    plt.close(fig)
    return kind


# -- the command -----------------------------------------------------------------------
def parser() -> AppParser:
    p = AppParser(prog="python -m hpc report", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="RECORD_OR_DIR",
                   help="records, suite records, study folders, folders, results.csv")
    p.add_argument("--csv", metavar="PATH", help="also write the table as CSV here")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--plot", metavar="PATH",
                   help="draw the loss curve or residual history of the first record with one")
    mark_outputs(p, "--csv", "--plot")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hpc report``: print the table (exit 0), or exit 2 on a bad path."""
    try:
        args = parser().parse_args(argv)
        runs = load_runs(args.paths)
        if not runs:
            raise UsageError(f"no result records in {' '.join(args.paths)}")
        rows = table(runs)
        print(render(rows, markdown=args.markdown))
        if args.csv:
            write_csv(args.csv, rows)
        if args.plot:
            recs = [r.record for r in runs if r.record and history(r.record)]
            if not recs:
                raise UsageError("no record here has a loss or residual history to plot")
            kind = plot_history(recs[0], args.plot)
            print(f"{kind} history -> {args.plot}")
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
