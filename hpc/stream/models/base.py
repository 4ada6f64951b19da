"""The one interface every STREAM back end implements (BabelStream's Stream<T>)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class StreamModel(ABC):
    """Three arrays of n elements and BabelStream's six kernels on them.

    Host models operate on numpy arrays; device models own device arrays and copy them back
    only in ``read_arrays`` (for validation, outside the timed region).
    """

    name: str = "?"
    #: True when kernels are timed on the device (CUDA events): last_seconds() after each
    event_timed: bool = False
    #: the memory modes the model takes (``mem=``); host models have one
    MEM_MODES: tuple[str, ...] = ("device",)

    def __init__(self, n: int, dtype: np.dtype):
        self.n = int(n)
        self.dtype = np.dtype(dtype)

    @classmethod
    def devices(cls) -> list[dict[str, Any]]:
        """What ``--list`` shows: the devices this back end can run on (``--device N``
        picks one). Host models: the one host, its CPU and the cores this process may use."""
        import os
        import platform

        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        name = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        return [{"index": 0, "name": f"host: {name}", "cores": cores}]

    def last_seconds(self) -> float:
        """Device-timed models: the last kernel's time; host models never use it."""
        raise NotImplementedError

    @abstractmethod
    def init_arrays(self, a: float, b: float, c: float) -> None: ...
    @abstractmethod
    def copy(self) -> None: ...          # c = a
    @abstractmethod
    def mul(self, scalar: float) -> None: ...    # b = scalar * c
    @abstractmethod
    def add(self) -> None: ...           # c = a + b
    @abstractmethod
    def triad(self, scalar: float) -> None: ...  # a = b + scalar * c
    @abstractmethod
    def nstream(self, scalar: float) -> None: ...  # a += b + scalar * c
    @abstractmethod
    def dot(self) -> float: ...          # sum(a * b) on this rank
    @abstractmethod
    def read_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def sync(self) -> None:
        """Wait for queued device work (host models are synchronous)."""

    def info(self) -> dict[str, Any]:
        """Facts for the record (execution space, threads, device)."""
        return {}


class HostArrays(StreamModel):
    """Shared storage for models that work on numpy arrays in host memory."""

    def __init__(self, n: int, dtype: np.dtype):
        super().__init__(n, dtype)
        self.a = np.empty(self.n, self.dtype)
        self.b = np.empty(self.n, self.dtype)
        self.c = np.empty(self.n, self.dtype)

    def read_arrays(self):
        return self.a, self.b, self.c
