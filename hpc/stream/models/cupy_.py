"""CuPy model: element-wise kernels fused by CuPy, one launch per BabelStream kernel."""
from __future__ import annotations

import numpy as np

from .base import StreamModel


class CupyStream(StreamModel):
    name = "cupy"

    def __init__(self, n, dtype, device: int = 0):
        super().__init__(n, dtype)
        import cupy as cp

        cp.cuda.Device(int(device)).use()  # --device N: this rank's arrays and kernels there
        self.cp = cp
        t = "float" if self.dtype.itemsize == 4 else "double"
        self._triad = cp.ElementwiseKernel(f"{t} b, {t} c, {t} s", f"{t} a", "a = b + s * c", "hpc_triad")
        self._nstream = cp.ElementwiseKernel(f"{t} b, {t} c, {t} s", f"{t} a", "a += b + s * c", "hpc_nstream")
        self._dot = cp.ReductionKernel(f"{t} a, {t} b", "float64 y", "(double)a * (double)b",
                                       "x + y", "y = a", "0", "hpc_dot")
        self.a = cp.empty(self.n, self.dtype)
        self.b = cp.empty(self.n, self.dtype)
        self.c = cp.empty(self.n, self.dtype)

    def init_arrays(self, a, b, c):
        self.a.fill(a)
        self.b.fill(b)
        self.c.fill(c)
        self.sync()

    def copy(self):
        self.cp.copyto(self.c, self.a)

    def mul(self, scalar):
        self.cp.multiply(self.c, self.dtype.type(scalar), out=self.b)

    def add(self):
        self.cp.add(self.a, self.b, out=self.c)

    def triad(self, scalar):
        self._triad(self.b, self.c, self.dtype.type(scalar), self.a)

    def nstream(self, scalar):
        self._nstream(self.b, self.c, self.dtype.type(scalar), self.a)

    def dot(self):
        return float(self._dot(self.a, self.b))

    def sync(self):
        self.cp.cuda.Device().synchronize()

    def read_arrays(self):
        return tuple(np.asarray(x.get()) for x in (self.a, self.b, self.c))

    @classmethod
    def devices(cls):
        import cupy

        out = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            p = cupy.cuda.runtime.getDeviceProperties(i)
            name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
            out.append({"index": i, "name": name, "memory_bytes": int(p["totalGlobalMem"])})
        return out

    def info(self):
        from hpc.core.envinfo import gpu_name

        return {"device": gpu_name(), "device_index": int(self.cp.cuda.Device().id)}
