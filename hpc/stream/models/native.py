"""Native models: C++ OpenMP loops (``native``) and C++17 parallel algorithms (``stdpar``)."""
from __future__ import annotations

from .base import HostArrays


class NativeStream(HostArrays):
    name = "native"

    def __init__(self, n, dtype):
        super().__init__(n, dtype)
        from hpc import _core

        self.k = _core.stream
        self._threads = _core.omp_max_threads()

    def init_arrays(self, a, b, c):
        self.k.init(self.a, self.b, self.c, a, b, c)

    def copy(self):
        self.k.copy(self.a, self.b, self.c)

    def mul(self, scalar):
        self.k.mul(self.a, self.b, self.c, scalar)

    def add(self):
        self.k.add(self.a, self.b, self.c)

    def triad(self, scalar):
        self.k.triad(self.a, self.b, self.c, scalar)

    def nstream(self, scalar):
        self.k.nstream(self.a, self.b, self.c, scalar)

    def dot(self):
        return self.k.dot(self.a, self.b, self.c)

    def info(self):
        return {"omp_threads": self._threads}


class StdparStream(NativeStream):
    name = "stdpar"

    def __init__(self, n, dtype):
        super().__init__(n, dtype)
        from hpc import _core

        self.k = _core.stream_stdpar

    def info(self):
        return {"policy": "std::execution::par_unseq", "runtime": "TBB"}
