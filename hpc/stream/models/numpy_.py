"""NumPy models: with ``out=`` (no temporaries) and naive (expressions allocate temporaries).

The gap between the two is the point: the naive spelling moves more bytes and allocates.
"""
from __future__ import annotations

import numpy as np

from .base import HostArrays


class NumpyStream(HostArrays):
    name = "numpy"

    def __init__(self, n, dtype):
        super().__init__(n, dtype)
        self.tmp = np.empty(self.n, self.dtype)

    def init_arrays(self, a, b, c):
        self.a.fill(a)
        self.b.fill(b)
        self.c.fill(c)

    def copy(self):
        np.copyto(self.c, self.a)

    def mul(self, scalar):
        np.multiply(self.c, self.dtype.type(scalar), out=self.b)

    def add(self):
        np.add(self.a, self.b, out=self.c)

    def triad(self, scalar):
        np.multiply(self.c, self.dtype.type(scalar), out=self.a)
        np.add(self.a, self.b, out=self.a)

    def nstream(self, scalar):
        np.multiply(self.c, self.dtype.type(scalar), out=self.tmp)
        self.tmp += self.b
        self.a += self.tmp

    def dot(self):
        return float(np.dot(self.a, self.b))


class NumpyNaiveStream(HostArrays):
    name = "numpy-naive"

    def init_arrays(self, a, b, c):
        self.a = np.full(self.n, a, self.dtype)
        self.b = np.full(self.n, b, self.dtype)
        self.c = np.full(self.n, c, self.dtype)

    def copy(self):
        self.c = self.a.copy()

    def mul(self, scalar):
        self.b = self.dtype.type(scalar) * self.c

    def add(self):
        self.c = self.a + self.b

    def triad(self, scalar):
        self.a = self.b + self.dtype.type(scalar) * self.c

    def nstream(self, scalar):
        self.a = self.a + self.b + self.dtype.type(scalar) * self.c

    def dot(self):
        return float((self.a * self.b).sum())
