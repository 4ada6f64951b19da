"""The per-run context every app uses: rank, printing, timers, the record and the verdict.

Typical use::

    def main(argv=None) -> int:
        args = make_parser(...).parse_args(argv)
        app = App("stream", args)
        with app.timer.phase("triad"): ...
        app.metrics["triad_GBps"] = ...
        return app.finish(passed, {"max_rel_err": err})

    if __name__ == "__main__":
        run(main)
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from mpi4py import MPI

from .. import __version__
from . import atomic, backends, envinfo, provenance
from .cli import configure_logging
from .errors import EXIT_INVALID, EXIT_OK
from .runtime import collective, world
from .progress import Progress
from .timers import PhaseTimer


log = logging.getLogger("hpc.app")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for k, v in vars(args).items():
        if callable(v):
            continue
        out[k] = v if isinstance(v, (int, float, str, bool, type(None), list, tuple)) else str(v)
    return out


class App:
    """One run of one app on one communicator."""

    def __init__(self, name: str, args: argparse.Namespace, comm=None, backend: str | None = None):
        self.name = name
        self.args = args
        self.comm = comm if comm is not None else world()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.quiet = bool(getattr(args, "quiet", False))
        self.verbose = int(getattr(args, "verbose", 0) or 0)
        configure_logging(self.verbose, self.quiet)
        self.started_utc = provenance.utc_now()
        self.backend = backend if backend is not None else getattr(args, "backend", None)
        self.threads = getattr(args, "threads", None) or envinfo.default_threads(self.comm)
        args.threads = self.threads
        backends.set_threads(self.threads)
        self.timer = PhaseTimer(self.comm)
        self.metrics: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # extra top-level record fields (e.g. "strategy")
        self.t_start = time.perf_counter()
        log.info("%s on %d rank(s) x %d thread(s), back end %s", name, self.size, self.threads,
                 self.backend)
        log.debug("%s options: %s", name, _params(args))

    # -- printing ---------------------------------------------------------------------
    def say(self, *msg: Any) -> None:
        """Print on rank 0 unless --quiet."""
        if self.rank == 0 and not self.quiet:
            print(*msg, flush=True)

    def progress(self, msg: str) -> None:
        """A progress line for long runs (rank 0, stdout, suppressed by --quiet)."""
        if self.rank == 0 and not self.quiet:
            elapsed = time.perf_counter() - self.t_start
            print(f"[{self.name} {elapsed:7.1f}s] {msg}", flush=True)

    def track(self, total: float | None, phase: str, unit: str = "it") -> Progress:
        """A :class:`~hpc.core.progress.Progress` for a long loop of this run: rank 0
        prints, --quiet silences it. ``with app.track(n, "swap") as prog: ... prog.update()``."""
        return Progress(total, phase, comm=self.comm, quiet=self.quiet, unit=unit)

    # -- the record -------------------------------------------------------------------
    def record(self, passed: bool, validation: dict[str, Any], timings: dict | None = None) -> dict:
        """Build the contract's result record (collective)."""
        timings = self.timer.summary() if timings is None else timings
        env = envinfo.capture(self.comm, self.threads)
        rec = {
            "schema_version": provenance.SCHEMA_VERSION,
            "app": self.name,
            "version": __version__,
            "ranks": self.size,
            "backend": self.backend,
            "params": _params(self.args),
            "metrics": self.metrics,
            "timings": timings,
            "validation": {"passed": bool(passed), **validation},
            "env": env,
            "provenance": provenance.capture(self.comm, self.started_utc),
        }
        rec.update(self.extra)
        log.debug("%s timings: %s", self.name, timings)
        log.info("%s finished: %s", self.name, "VALID" if passed else "INVALID")
        return rec

    def finish(self, passed: bool, validation: dict[str, Any], timings: dict | None = None) -> int:
        """Print VALID/INVALID, write --json, and return the exit status (collective)."""
        passed = bool(self.comm.allreduce(bool(passed), op=MPI.LAND))
        rec = self.record(passed, validation, timings)
        if self.rank == 0:
            detail = ", ".join(f"{k}={_short(v)}" for k, v in validation.items()
                               if not isinstance(v, (dict, list)))
            line = f"{self.name}: {'VALID' if passed else 'INVALID'}" + (f" ({detail})" if detail else "")
            if passed:
                self.say(line)
            else:  # an INVALID verdict is printed even with --quiet
                print(line, file=sys.stdout if not self.quiet else sys.stderr, flush=True)
        # A record that cannot be written (/dev/full, a full disk) is exit 2 on every rank.
        with collective(self.comm):
            path = getattr(self.args, "json", None)
            if path and self.rank == 0:
                atomic.write_json(path, rec)
        self.last_record = rec
        return EXIT_OK if passed else EXIT_INVALID


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
