"""Models whose arrays live behind a compiled object: Kokkos Views and native CUDA buffers."""
from __future__ import annotations

from .base import StreamModel


class _Owned(StreamModel):
    """Delegates every kernel to an object with BabelStream's methods."""

    def _make(self):
        raise NotImplementedError

    def __init__(self, n, dtype):
        super().__init__(n, dtype)
        self.obj = self._make()

    def init_arrays(self, a, b, c):
        self.obj.init(a, b, c)

    def copy(self):
        self.obj.copy()

    def mul(self, scalar):
        self.obj.mul(scalar)

    def add(self):
        self.obj.add()

    def triad(self, scalar):
        self.obj.triad(scalar)

    def nstream(self, scalar):
        self.obj.nstream(scalar)

    def dot(self):
        return self.obj.dot()

    def read_arrays(self):
        return self.obj.read()


class KokkosStream(_Owned):
    name = "kokkos"

    def _make(self):
        from hpc import _kokkos

        cls = _kokkos.StreamF32 if self.dtype.itemsize == 4 else _kokkos.StreamF64
        return cls(self.n)

    def info(self):
        from hpc import _kokkos

        return {"execution_space": _kokkos.execution_space, "concurrency": _kokkos.concurrency}


class CudaStream(_Owned):
    name = "cuda"

    def _make(self):
        from hpc import _cuda

        cls = _cuda.stream.StreamF32 if self.dtype.itemsize == 4 else _cuda.stream.StreamF64
        return cls(self.n)

    def info(self):
        from hpc.core.envinfo import gpu_name

        return {"device": gpu_name()}
