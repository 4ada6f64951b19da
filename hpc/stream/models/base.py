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

    def __init__(self, n: int, dtype: np.dtype):
        self.n = int(n)
        self.dtype = np.dtype(dtype)

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
