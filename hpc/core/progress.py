"""Progress of long work, on rank 0, at a bounded rate.

Every loop that can run longer than about ten seconds reports through :class:`Progress`::

    with Progress(total=max_iter, phase="cg", comm=comm, quiet=args.quiet) as prog:
        for it in range(max_iter):
            ...
            prog.update(residual=f"{r:.3e}")

Only rank 0 prints, and the other ranks do no communication for it (``comm`` is used only to
ask the rank), so a progress call may sit anywhere in a loop. Rank 0 prints at most one line
a second and, while the loop is updated, at least one every 30 seconds: the phase, the
fraction done, the elapsed time, an estimate of what remains, and the caller's fields. On a
terminal the line is a live tqdm bar; in a log file (or without tqdm) plain lines, of which a
new one is written when the work has advanced by at least 1 % or 30 s have passed. A run that
ends within the first second prints nothing, so short runs stay quiet; one that printed a
line ends with a final line unless the last came less than a second before the end. ``quiet=True`` (the apps' ``--quiet``) silences it all.

``HPC_PROGRESS`` overrides the choice: ``bar``, ``plain`` or ``off``.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable, TextIO

log = logging.getLogger("hpc.progress")

MIN_INTERVAL = 1.0    # seconds: never more than one line a second
MAX_INTERVAL = 30.0   # seconds: at least one line this often while updated
MIN_STEP = 0.01       # plain lines: a new one for each 1 % of the work (or MAX_INTERVAL)


def format_seconds(s: float) -> str:
    """``12.3s``, ``4m05s``, ``2h03m``: short, for progress lines."""
    if s != s or s < 0:  # NaN or negative: unknown
        return "?"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def _field(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class Progress:
    """A progress reporter for one phase of work (a context manager).

    Parameters
    ----------
    total : int or float or None
        The amount of work (iterations, tiles, bytes...). ``None`` when unknown: the lines
        then show the count and the elapsed time but no fraction or estimate.
    phase : str
        What is being done; the first word of every line.
    comm : mpi4py communicator, optional
        Only rank 0 of it prints. No communication is done.
    quiet : bool
        Print nothing (the apps' ``--quiet``).
    unit : str
        The unit of ``total``, shown in the lines.
    stream : file, optional
        Where lines go (default ``sys.stderr``, so stdout keeps only results).
    clock : callable, optional
        A monotonic clock in seconds (tests pass a fake one).
    mode : {"bar", "plain", "off"}, optional
        Forces the output style; by default a tqdm bar on a terminal, plain lines otherwise
        (or what ``HPC_PROGRESS`` says).
    """

    def __init__(self, total: float | None, phase: str, comm=None, quiet: bool = False,
                 unit: str = "it", *, stream: TextIO | None = None,
                 clock: Callable[[], float] | None = None, mode: str | None = None):
        if total is not None and not total >= 0:
            raise ValueError(f"total must be None or >= 0, got {total!r}")
        self.total = total
        self.phase = phase
        self.unit = unit
        self.done: float = 0
        self.fraction: float | None = None  # set() may give the fraction done directly
        self.fields: dict[str, Any] = {}
        self.lines = 0  # plain lines written (tests read it)
        self._clock = clock or time.monotonic
        self._stream = stream if stream is not None else sys.stderr
        rank = comm.Get_rank() if comm is not None else 0
        mode = mode or os.environ.get("HPC_PROGRESS", "").strip().lower() or None
        if rank != 0 or quiet or mode == "off":
            self.mode = "off"
        elif mode in ("bar", "plain"):
            self.mode = mode
        else:
            isatty = getattr(self._stream, "isatty", lambda: False)
            self.mode = "bar" if isatty() else "plain"
        self._bar = None
        if self.mode == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                self.mode = "plain"
            else:
                self._bar = tqdm(total=total, desc=phase, unit=unit, file=self._stream,
                                 mininterval=MIN_INTERVAL, maxinterval=MAX_INTERVAL,
                                 delay=MIN_INTERVAL, dynamic_ncols=True, leave=True)
        self._t0 = self._clock()
        self._last_t = self._t0     # when the last line was written
        self._last_done: float = 0  # the count it showed

    # -- the context manager ----------------------------------------------------------
    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- updates ----------------------------------------------------------------------
    def update(self, n: float = 1, **fields: Any) -> None:
        """Add ``n`` to the work done; ``fields`` (residual=..., change=...) are shown."""
        self.set(self.done + n, **fields)

    def set(self, done: float, fraction: float | None = None, **fields: Any) -> None:
        """Set the work done to ``done``; ``fields`` are shown beside it. ``fraction`` (0..1),
        when the work is not a count towards ``total`` (an iterative solve converging towards
        a tolerance), is shown as the percentage and drives the estimate of what remains."""
        if fraction is not None:
            self.fraction = min(max(float(fraction), 0.0), 1.0)
        if self.mode == "off":
            self.done = done
            return
        delta = done - self.done
        self.done = done
        if fields:
            self.fields.update(fields)
        if self._bar is not None:
            if fields:
                self._bar.set_postfix({k: _field(v) for k, v in self.fields.items()},
                                      refresh=False)
            self._bar.update(delta)
            return
        now = self._clock()
        since = now - self._last_t
        if since < MIN_INTERVAL:
            return
        step = (done - self._last_done) / self.total if self.total else 0.0
        if since >= MAX_INTERVAL or step >= MIN_STEP or self.total is None \
                or self.fraction is not None or (self.total is not None and done >= self.total):
            self._write(now)

    def close(self) -> None:
        """End the phase: a final line if any line was written and the last one is at least
        a second old (the rate holds for the last line too; idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "plain" and self.lines and self._last_done != self.done:
            now = self._clock()
            if now - self._last_t >= MIN_INTERVAL:
                self._write(now)
        self.mode = "off"

    # -- the line ---------------------------------------------------------------------
    def elapsed(self) -> float:
        return self._clock() - self._t0

    def remaining(self) -> float | None:
        """Estimated seconds left at the average rate so far (None when unknown)."""
        if self.fraction is not None:
            f = self.fraction
            return self.elapsed() * (1 - f) / f if f > 0 else None
        if not self.total or self.done <= 0:
            return None
        return self.elapsed() * max(self.total - self.done, 0) / self.done

    def line(self) -> str:
        """The current progress line (without the newline)."""
        parts = [f"[{self.phase}]"]
        done = _field(self.done) if isinstance(self.done, float) else str(self.done)
        if self.fraction is not None:
            parts.append(f"{100.0 * self.fraction:5.1f}% ({done} {self.unit})")
        elif self.total:
            parts.append(f"{100.0 * self.done / self.total:5.1f}% ({done}/{self.total} {self.unit})")
        else:
            parts.append(f"{done} {self.unit}")
        parts.append(f"elapsed {format_seconds(self.elapsed())}")
        rem = self.remaining()
        if rem is not None:
            parts.append(f"remaining ~{format_seconds(rem)}")
        parts.extend(f"{k}={_field(v)}" for k, v in self.fields.items())
        return " ".join(parts)

    def _write(self, now: float) -> None:
        text = self.line()
        self._stream.write(text + "\n")
        self._stream.flush()
        log.debug(text)
        self.lines += 1
        self._last_t = now
        self._last_done = self.done
