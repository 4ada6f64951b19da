"""Numba model: each kernel one parallel pass (prange), compiled once and cached on disk."""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .base import HostArrays

_opts = dict(parallel=True, cache=True, nogil=True, boundscheck=False)


@njit(**_opts)
def _init(a, b, c, va, vb, vc):
    for i in prange(a.size):
        a[i] = va
        b[i] = vb
        c[i] = vc


@njit(**_opts)
def _copy(a, c):
    for i in prange(a.size):
        c[i] = a[i]


@njit(**_opts)
def _mul(b, c, s):
    for i in prange(b.size):
        b[i] = s * c[i]


@njit(**_opts)
def _add(a, b, c):
    for i in prange(a.size):
        c[i] = a[i] + b[i]


@njit(**_opts)
def _triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


@njit(**_opts)
def _nstream(a, b, c, s):
    for i in prange(a.size):
        a[i] += b[i] + s * c[i]


@njit(**_opts)
def _dot(a, b):
    acc = 0.0  # float64 accumulator, as in the native model
    for i in prange(a.size):
        acc += np.float64(a[i]) * np.float64(b[i])
    return acc


class NumbaStream(HostArrays):
    name = "numba"

    def _s(self, x):
        return self.dtype.type(x)

    def init_arrays(self, a, b, c):
        _init(self.a, self.b, self.c, self._s(a), self._s(b), self._s(c))

    def copy(self):
        _copy(self.a, self.c)

    def mul(self, scalar):
        _mul(self.b, self.c, self._s(scalar))

    def add(self):
        _add(self.a, self.b, self.c)

    def triad(self, scalar):
        _triad(self.a, self.b, self.c, self._s(scalar))

    def nstream(self, scalar):
        _nstream(self.a, self.b, self.c, self._s(scalar))

    def dot(self):
        return float(_dot(self.a, self.b))

    def info(self):
        try:
            layer = numba.threading_layer()
        except ValueError:  # no parallel region has run yet
            layer = None
        return {"numba_threads": numba.get_num_threads(), "threading_layer": layer}
