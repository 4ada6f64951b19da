"""The network's layer kernels on channel-last float32 blocks with a one-cell ghost layer.

A field is an array of shape (Z+2, Y+2, X+2, C): the block's Z x Y x X cells, channels
innermost (the halo engine's layout with quantities = channels), surrounded by one ghost
cell on every side. Kernels read the ghosts and write only the interior of their output,
whose ghosts stay zero until the next halo exchange fills them.

Back ends:
- ``numpy`` (and ``cupy``, the same code on the GPU's array module): 27 shifted GEMMs
  (cells x C_in) @ (C_in x C_out) on the flattened ghosted block through BLAS / cuBLAS (no
  im2col copy: measured 2x faster than im2col + one GEMM here);
- ``numba``: a direct convolution, parallel over z-planes.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


class ArrayKernels:
    """numpy / cupy kernels (xp is the array module)."""

    def __init__(self, xp: Any = np):
        self.xp = xp

    def empty_field(self, shape: tuple[int, int, int], c: int):
        return self.xp.zeros((shape[0] + 2, shape[1] + 2, shape[2] + 2, c), dtype=np.float32)

    def conv3(self, xin, w, relu: bool):
        """3x3x3 convolution of a ghosted field; returns a new ghosted field.

        On the flattened ghosted block, every tap is a constant row offset, so the
        convolution is 27 GEMMs (rows x C_in) @ (C_in x C_out) on shifted contiguous row
        ranges, accumulated; output row q is the cell whose 3x3x3 window starts at q.
        """
        xp = self.xp
        Zp, Yp, Xp, ci = xin.shape
        co = w.shape[4]
        P = Zp * Yp * Xp
        flat = xin.reshape(P, ci)
        span = (2 * Yp + 2) * Xp + 2  # largest tap offset
        L = P - span
        acc = xp.zeros((P, co), dtype=np.float32)
        tmp = xp.empty((L, co), dtype=np.float32)
        for dz in range(3):
            for dy in range(3):
                for dx in range(3):
                    o = (dz * Yp + dy) * Xp + dx
                    xp.matmul(flat[o:o + L], w[dz, dy, dx], out=tmp)
                    acc[:L] += tmp
        if relu:
            xp.maximum(acc, 0, out=acc)
        out = self.empty_field((Zp - 2, Yp - 2, Xp - 2), co)
        out[1:-1, 1:-1, 1:-1, :] = acc.reshape(Zp, Yp, Xp, co)[:Zp - 2, :Yp - 2, :Xp - 2, :]
        return out

    def head(self, xin, w):
        """1x1x1 layer to one channel; returns the interior (Z, Y, X)."""
        inner = xin[1:-1, 1:-1, 1:-1, :]
        return (inner @ w.reshape(w.shape[3], w.shape[4]))[..., 0]

    def pool(self, xin):
        """2x2x2 average pooling (sizes even: checked by weights.check_grid)."""
        Z, Y, X, C = xin.shape[0] - 2, xin.shape[1] - 2, xin.shape[2] - 2, xin.shape[3]
        out = self.empty_field((Z // 2, Y // 2, X // 2), C)
        inner = xin[1:-1, 1:-1, 1:-1, :].reshape(Z // 2, 2, Y // 2, 2, X // 2, 2, C)
        out[1:-1, 1:-1, 1:-1, :] = inner.mean(axis=(1, 3, 5), dtype=np.float32)
        return out

    def up(self, xin):
        """Nearest-neighbour 2x up-sampling."""
        Z, Y, X, C = xin.shape[0] - 2, xin.shape[1] - 2, xin.shape[2] - 2, xin.shape[3]
        out = self.empty_field((2 * Z, 2 * Y, 2 * X), C)
        inner = xin[1:-1, 1:-1, 1:-1, :]
        view = out[1:-1, 1:-1, 1:-1, :].reshape(Z, 2, Y, 2, X, 2, C)
        view[...] = inner[:, None, :, None, :, None, :]
        return out

    def add(self, a, b):
        return a + b

    def to_host(self, a):
        return a if self.xp is np else self.xp.asnumpy(a)

    def from_host(self, a):
        return self.xp.asarray(a)


@lru_cache(maxsize=1)
def _numba_conv():
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def conv3(xin, w, out, relu):
        Z, Y, X = xin.shape[0] - 2, xin.shape[1] - 2, xin.shape[2] - 2
        ci, co = w.shape[3], w.shape[4]
        for z in numba.prange(Z):
            acc = np.empty(co, dtype=np.float32)
            for y in range(Y):
                for x in range(X):
                    acc[:] = 0.0
                    for dz in range(3):
                        for dy in range(3):
                            for dx in range(3):
                                for c in range(ci):
                                    v = xin[z + dz, y + dy, x + dx, c]
                                    for o in range(co):
                                        acc[o] += v * w[dz, dy, dx, c, o]
                    for o in range(co):
                        a = acc[o]
                        if relu and a < 0.0:
                            a = 0.0
                        out[z + 1, y + 1, x + 1, o] = a
    return conv3


class NumbaKernels(ArrayKernels):
    """numba direct convolution; the cheap layers reuse the numpy ones."""

    def __init__(self):
        super().__init__(np)
        self._conv = _numba_conv()

    def conv3(self, xin, w, relu: bool):
        Z, Y, X = xin.shape[0] - 2, xin.shape[1] - 2, xin.shape[2] - 2
        out = self.empty_field((Z, Y, X), w.shape[4])
        self._conv(np.ascontiguousarray(xin), np.ascontiguousarray(w), out, bool(relu))
        return out


def kernels(backend: str) -> ArrayKernels:
    """The kernels for a back end name: numpy, numba or cupy."""
    if backend == "numpy":
        return ArrayKernels(np)
    if backend == "numba":
        return NumbaKernels()
    if backend == "cupy":
        import cupy

        return ArrayKernels(cupy)
    raise ValueError(f"no DCDM network kernels for back end {backend!r}")
