"""Distributed inference of the DCDM network: every rank runs the layers on its own block.

Each 3x3x3 convolution first fills its input's one-cell ghost layer with the halo-exchange
engine (:class:`hpc.halo.engine.HaloExchange`, all 26 neighbours, zeros beyond the domain --
the network's 'same' zero padding); pooling, up-sampling, additions and the 1x1x1 head are
local because the blocks are cut on the coarse grid (see :mod:`.decomp`). Every cell is
computed from the same values with the same kernel whatever the number of ranks, so the
output does not depend on the rank count (to float32 rounding of the GEMM's summation order
only, which im2col keeps per cell: the tests compare across rank counts).
"""
from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from typing import Iterator

import numpy as np

from hpc.core.decomp import Decomposition
from hpc.halo.engine import HaloExchange

from .arch import HALF_RES, forward
from .kernels import ArrayKernels, kernels
from .weights import Model


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block's GEMMs on n BLAS threads (threadpoolctl, when installed).

    The 16x16 GEMMs are short: a multi-threaded OpenBLAS spinning on an oversubscribed node
    was measured 15x slower than one thread (16^3 solve: 144 s against 9 s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        with nullcontext():
            yield
        return
    with threadpool_limits(limits=max(1, int(n or 1)), user_api="blas"):
        yield


class DistNet:
    """The network on a decomposition (collective construction, evaluation and free)."""

    def __init__(self, model: Model, dec: Decomposition, backend: str = "numpy",
                 halo_method: str = "datatype", threads: int = 1):
        self.model = model
        self.dec = dec
        self.threads = threads
        self.k: ArrayKernels = kernels(backend)
        self.backend = backend
        self.w = {name: self.k.from_host(w) for name, w in model.weights.items()}
        fine = dec.local_shape
        coarse = tuple(s // 2 for s in fine)
        c = model.channels
        # Halo exchanges keyed by (level, channels); the conv_in input has one channel.
        kw = dict(radius=1, dtype=np.float32, method=halo_method, fill=0.0, neighbors="all")
        self._halos = {
            ("fine", 1): HaloExchange(dec.cart, fine, quantities=1, **kw),
            ("fine", c): HaloExchange(dec.cart, fine, quantities=c, **kw),
            ("coarse", c): HaloExchange(dec.cart, coarse, quantities=c, **kw),
        }
        self.evaluations = 0
        self.time_conv = 0.0
        self.time_halo = 0.0

    def free(self) -> None:
        for h in self._halos.values():
            h.free()
        self._halos = {}

    # -- the graph's operations -----------------------------------------------------------
    def conv(self, x, name: str, relu: bool):
        level = "coarse" if name in HALF_RES else "fine"
        halo = self._halos[(level, x.shape[-1])]
        t0 = time.perf_counter()
        if self.backend == "cupy":  # the engine exchanges host arrays
            h = self.k.to_host(x)
            halo.exchange(h)
            x = self.k.from_host(h)
        else:
            halo.exchange(x)
        t1 = time.perf_counter()
        y = self.k.conv3(x, self.w[name], relu)
        self.time_halo += t1 - t0
        self.time_conv += time.perf_counter() - t1
        return y

    def pool(self, x):
        return self.k.pool(x)

    def up(self, x):
        return self.k.up(x)

    def add(self, a, b):
        return self.k.add(a, b)

    def head(self, x):
        return self.k.head(x, self.w["head"])

    # -- evaluation -------------------------------------------------------------------------
    def __call__(self, block: np.ndarray) -> np.ndarray:
        """The direction on my block, from the residual on my block ((lz, ly, lx), host)."""
        if tuple(block.shape) != tuple(self.dec.local_shape):
            raise ValueError(f"block shape {block.shape} != local {self.dec.local_shape}")
        x = self.k.empty_field(self.dec.local_shape, 1)
        x[1:-1, 1:-1, 1:-1, 0] = self.k.from_host(np.asarray(block, dtype=np.float32))
        with blas_threads(self.threads):
            y = forward(self, x)
        self.evaluations += 1
        return self.k.to_host(y)


def serial_forward(model: Model, r: np.ndarray, backend: str = "numpy", threads: int = 1) -> np.ndarray:
    """The network on a whole (nz, ny, nx) grid in one process, no MPI (reference, tools)."""
    k = kernels(backend)
    w = {name: k.from_host(v) for name, v in model.weights.items()}

    class _Ops:
        def conv(self, x, name, relu):
            return k.conv3(x, w[name], relu)

        def pool(self, x):
            return k.pool(x)

        def up(self, x):
            return k.up(x)

        def add(self, a, b):
            return k.add(a, b)

        def head(self, x):
            return k.head(x, w["head"])

    x = k.empty_field(tuple(r.shape), 1)
    x[1:-1, 1:-1, 1:-1, 0] = k.from_host(np.asarray(r, dtype=np.float32))
    with blas_threads(threads):
        return k.to_host(forward(_Ops(), x))
