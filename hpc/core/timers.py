"""Barrier-synchronised phase timers reduced across ranks.

A phase's sample is the slowest rank's time for that repetition (MAX over ranks); the summary
drops the first (warm-up) sample when there are several and reports min/mean/max.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
from mpi4py import MPI


class PhaseTimer:
    """Collects per-repetition times of named phases on every rank."""

    def __init__(self, comm, sync: Callable[[], None] | None = None):
        self.comm = comm
        self.sync = sync or (lambda: None)
        self.samples: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def phase(self, name: str, barrier: bool = True) -> Iterator[None]:
        """Time a collective phase as barrier, work, (device sync), barrier."""
        if barrier:
            self.comm.Barrier()
        t0 = time.perf_counter()
        yield
        self.sync()
        if barrier:
            self.comm.Barrier()
        self.samples[name].append(time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        """Record a time measured elsewhere (one sample)."""
        self.samples[name].append(float(seconds))

    def slowest(self, name: str) -> np.ndarray:
        """Per-repetition slowest-rank times of one phase (collective)."""
        local = np.asarray(self.samples.get(name, []), dtype=np.float64)
        counts = self.comm.allgather(local.size)
        if len(set(counts)) != 1:
            raise RuntimeError(f"phase {name!r} ran {counts} times on the ranks")
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.MAX)
        return out

    def summary(self, drop_first: bool = True) -> dict[str, dict[str, float]]:
        """{phase: {min, mean, max, n}} over the slowest-rank samples (collective)."""
        names = sorted(self.samples)
        if len(set(map(tuple, self.comm.allgather(names)))) != 1:
            raise RuntimeError("ranks timed different phases")
        out = {}
        for name in names:
            s = self.slowest(name)
            if drop_first and s.size > 1:
                s = s[1:]
            if s.size:
                out[name] = {"min": float(s.min()), "mean": float(s.mean()),
                             "max": float(s.max()), "n": int(s.size)}
        return out
