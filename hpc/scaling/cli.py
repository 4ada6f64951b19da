"""`python -m hpc.scaling {run,plot,model}`: strong and weak scaling studies of any workload.

  collect  results.csv/json from the records of batch jobs (python -m hpc.jobs scaling)
  run    launch the app under mpiexec at each rank count (repeats), collect the JSON records,
         write DIR/results.csv and DIR/results.json; one progress line per run
  plot   time, speedup and parallel efficiency against ranks (PNG), with ideal lines
  model  fit the app's performance model, print it, plot it, extrapolate to 10^4 ranks
  check  compare a study with per-system reference values and tolerances (exit 1 outside)

Examples:
  python -m hpc.scaling run --app stream --mode weak --ranks 1,2,4 --out /tmp/s -- --arraysize 100000
  python -m hpc.scaling run --config scaling/studies/stream_weak.toml --out scaling/results/stream_weak
  python -m hpc.scaling plot scaling/results/stream_weak
  python -m hpc.scaling model scaling/results/stream_weak
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from hpc.core import checks
from hpc.core.cli import AppParser, mark_output, positive_int, split_passthrough
from hpc.core.errors import EXIT_USAGE, UsageError
from hpc.core.spec import names

from . import apps


def _fmt(prog: str) -> argparse.HelpFormatter:
    # The help texts state their defaults; ArgumentDefaultsHelpFormatter would repeat them.
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def _ranks(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rank counts like 1,2,4, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"rank counts must be positive, got {text!r}")
    return sorted(set(vals))


def parser() -> AppParser:
    apps_ = names()
    p = AppParser(prog="python -m hpc.scaling", description=__doc__, formatter_class=_fmt)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=AppParser)
    r = sub.add_parser("run", help="run a study", formatter_class=_fmt,
                       description="Run a scaling study. App options go after `--` (or after "
                                   "the study's own options); in weak mode they describe the "
                                   "problem at the smallest rank count.\n\n" + apps.__doc__
                                   + "\n" + apps.rules_text())
    r.add_argument("--config", metavar="FILE", help="a study file (TOML: app, mode, ranks, "
                   "repeat, threads, args); options given here override it")
    r.add_argument("--app", choices=apps_, help="workload (hpc.<app>)")
    r.add_argument("--mode", choices=["strong", "weak"], help="strong: fixed global problem; "
                   "weak: fixed problem per rank [default: strong]")
    r.add_argument("--ranks", type=_ranks, help="comma-separated rank counts [default: 1,2,4]")
    r.add_argument("--repeat", type=checks.REPEAT, help="launches per rank count [default: 1]")
    r.add_argument("--threads", type=positive_int, help="OMP_NUM_THREADS per rank [default: 1]")
    r.add_argument("--timeout", type=positive_int, help="seconds one launch may take [default: 600]")
    r.add_argument("--mpiexec", metavar="PATH", help="launcher [default: the one beside this "
                   "Python, else mpiexec on PATH]")
    mark_output(r, r.add_argument("--out", required=True, metavar="DIR", help="folder for results, records, logs"), directory=True)
    c = sub.add_parser("collect", help="results from batch-job records", formatter_class=_fmt,
                       description="Write DIR/results.{csv,json} from DIR/records/pP-rR.json "
                                   "(what the jobs of `python -m hpc.jobs scaling` leave).")
    c.add_argument("--app", required=True, choices=apps_, help="workload")
    c.add_argument("--mode", required=True, choices=["strong", "weak"], help="study mode")
    c.add_argument("--ranks", required=True, type=_ranks, help="comma-separated rank counts")
    c.add_argument("--repeat", type=checks.REPEAT, default=1, help="runs per rank count (default: 1)")
    c.add_argument("--out", required=True, metavar="DIR", help="the study's folder")
    pl = sub.add_parser("plot", help="plot a study", formatter_class=_fmt,
                        description=__import__("hpc.scaling.plot", fromlist=["x"]).__doc__)
    pl.add_argument("dir", metavar="DIR", help="a study's folder (with results.json)")
    pl.add_argument("--out", metavar="DIR", help="where the PNGs go [default: DIR]")
    ck = sub.add_parser("check", help="check a study against per-system references",
                        formatter_class=_fmt,
                        description=__import__("hpc.scaling.check", fromlist=["x"]).__doc__)
    ck.add_argument("dir", metavar="STUDY", help="a study's folder (with results.json)")
    ck.add_argument("--reference", required=True, metavar="REF.toml", help="reference values")
    ck.add_argument("--system", help="use this system's references [default: the one whose "
                    "match globs match the study's host]")
    m = sub.add_parser("model", help="fit and extrapolate a performance model",
                       formatter_class=_fmt,
                       description=__import__("hpc.scaling.model", fromlist=["x"]).__doc__)
    m.add_argument("dirs", nargs="+", metavar="DIR", help="study folders (plotted together)")
    m.add_argument("--cores-per-node", type=positive_int, help="cores per node for the extrapolation "
                   "[default: this host's, as recorded in the study]")
    m.add_argument("--max-ranks", type=positive_int, default=10_000, help="extrapolate up to this many "
                   "ranks (default: 10000)")
    m.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="fix a model parameter (e.g. alpha_s=1.5e-6) instead of fitting it")
    m.add_argument("--out", metavar="PNG", help="figure path [default: first DIR/model.png]")
    mark_output(m, m._option_string_actions["--out"])
    mark_output(pl, pl._option_string_actions["--out"], directory=True)
    mark_output(c, c._option_string_actions["--out"], directory=True)
    return p


def _load_config(path: str) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML: {exc}") from None
    known = {"name", "description", "app", "mode", "ranks", "repeat", "threads", "timeout", "args"}
    bad = sorted(set(cfg) - known)
    if bad:
        raise UsageError(f"--config {path}: unknown key(s) {', '.join(bad)}")
    if "args" in cfg and not (isinstance(cfg["args"], list)
                              and all(isinstance(a, str) for a in cfg["args"])):
        raise UsageError(f"--config {path}: 'args' must be a list of strings")
    if "ranks" in cfg and not (isinstance(cfg["ranks"], list) and cfg["ranks"]
                               and all(isinstance(r, int) and r > 0 for r in cfg["ranks"])):
        raise UsageError(f"--config {path}: 'ranks' must be a list of positive integers")
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    argv, tail = split_passthrough(argv)
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.cmd not in ("run", "collect"):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.cmd == "run":
        from .runner import Study, run_study

        cfg = _load_config(args.config) if args.config else {}
        app = args.app or cfg.get("app")
        if app is None:
            raise UsageError("run: --app (or a --config with app) is required")
        if app not in names():
            raise UsageError(f"run: unknown app {app!r} (one of: {', '.join(names())})")
        app_args = extra + tail if (extra or tail) else list(cfg.get("args", []))
        st = Study(app=app, mode=args.mode or cfg.get("mode", "strong"),
                   ranks=args.ranks or sorted(set(cfg.get("ranks", [1, 2, 4]))),
                   out=Path(args.out), app_args=app_args,
                   repeat=args.repeat or int(cfg.get("repeat", 1)),
                   threads=args.threads or int(cfg.get("threads", 1)),
                   timeout=args.timeout or int(cfg.get("timeout", 600)),
                   mpiexec=args.mpiexec, name=cfg.get("name"))
        if st.mode not in ("strong", "weak"):
            raise UsageError(f"run: mode must be strong or weak, got {st.mode!r}")
        try:
            return run_study(st)
        except apps.StudyError as exc:
            raise UsageError(str(exc)) from None
    if args.cmd == "collect":
        from .runner import Study, collect_study

        try:
            return collect_study(Study(app=args.app, mode=args.mode, ranks=args.ranks,
                                       out=Path(args.out), app_args=extra + tail,
                                       repeat=args.repeat))
        except apps.StudyError as exc:
            raise UsageError(str(exc)) from None
    if args.cmd == "check":
        from .check import check

        return check(args.dir, args.reference, args.system)
    if args.cmd == "plot":
        from .plot import plot

        try:
            for path in plot(args.dir, args.out):
                print(f"wrote {path}")
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        return 0
    from .model import ModelError, model_dirs, parse_set

    try:
        _, text, png = model_dirs(args.dirs, args.cores_per_node, parse_set(args.set),
                                  args.out, args.max_ranks)
    except (FileNotFoundError, ModelError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    print(text)
    print(f"wrote {png}")
    return 0


def entry(argv: Sequence[str] | None = None) -> int:
    """main() with the suite's exit convention: a UsageError is one `error:` line, exit 2."""
    try:
        return main(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
