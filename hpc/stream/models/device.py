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
    """Native CUDA kernels (native/cuda/stream.cu), timed with CUDA events; arrays in device,
    managed (``cudaMallocManaged``) or page-faulting (plain host) memory."""

    name = "cuda"
    event_timed = True
    MEM_MODES = ("device", "managed", "pagefault")

    def __init__(self, n, dtype, device: int = 0, mem: str = "device"):
        self.device, self.mem = int(device), mem
        super().__init__(n, dtype)

    def _make(self):
        from hpc import _cuda

        cls = _cuda.stream.StreamF32 if self.dtype.itemsize == 4 else _cuda.stream.StreamF64
        return cls(self.n, self.device, self.mem)

    def last_seconds(self) -> float:
        return self.obj.last_seconds()

    @classmethod
    def devices(cls):
        from hpc import _cuda

        return list(_cuda.stream.devices())

    def info(self):
        d = next((x for x in self.devices() if x["index"] == self.device), {})
        return {"device": d.get("name"), "device_index": self.device, "mem": self.mem,
                "timing": "CUDA events around each kernel"}
