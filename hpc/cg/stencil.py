"""Matrix-free operator for the structured problems, ghost planes through hpc.halo's engine.

The grid is split into z-slabs (a (p, 1, 1) Cartesian decomposition from
:func:`hpc.core.decomp.decompose`), so a rank's cells are a contiguous range of lexicographic
rows: the same row-block layout as DistCSR, with plane-aligned offsets. y = A x is computed
from shifted views of the haloed field: 7-point: 6 x - sum of the 6 face neighbours (5-point
in 2-D); 27-point: 27 x - the 3x3x3 box sum (separable: 3 passes). Ghost cells beyond the
physical boundary are 0 (homogeneous Dirichlet, as in the assembled matrix).

Everything other than the product (diagonal, the local block a preconditioner factors, the
gathers) is delegated to the assembled DistCSR of the same problem, built only on first use.
"""
from __future__ import annotations

import numpy as np

from hpc.core.decomp import decompose
from hpc.core.errors import UsageError
from hpc.core.partition import block_offsets
from hpc.halo.engine import HaloExchange
from hpc.sparse.generators import STENCILS, grid_dims, structured


class StencilOperator:
    def __init__(self, kind: str, N: int, comm, backend: str = "native"):
        nx, ny, nz = grid_dims(kind, N)
        p = comm.Get_size()
        if p > nz if nz > 1 else p > ny:
            raise UsageError(f"--operator stencil splits the grid into slabs: {p} ranks need at "
                             f"least {p} planes, the grid has {nz if nz > 1 else ny}")
        self.kind, self.N, self.comm, self.backend = kind, N, comm, backend
        self.grid = (nx, ny, nz)
        self.stencil = kind
        self.diag_value = STENCILS[kind][2]
        self.three_d = nz > 1
        gshape = (nz, ny, nx) if self.three_d else (ny, nx)
        dims = [p, 1, 1] if self.three_d else [p, 1]
        self.dec = decompose(comm, gshape, periodic=False, dims=dims)
        self.local_shape = self.dec.local_shape
        neighbors = "all" if kind == "hpcg" else "faces"
        self.halo = HaloExchange(self.dec.cart, self.local_shape, 1, periodic=False, fill=0.0,
                                 neighbors=neighbors, method="pack",
                                 packer="native" if backend == "native" else "numpy")
        self.field = self.halo.allocate()
        plane = nx * ny if self.three_d else nx
        self.row_offsets = plane * block_offsets(gshape[0], p)
        self.col_offsets = self.row_offsets
        self.shape = (nx * ny * nz, nx * ny * nz)
        self.rank, self.size = comm.Get_rank(), p
        self._assembled = None
        self.exchange = "halo"

    # -- the product ------------------------------------------------------------------
    def spmv(self, x, out=None):
        u = self.field
        inner = self.halo.interior(u)
        inner[...] = x.reshape(self.local_shape)
        self.halo.exchange(u)
        y = out if out is not None else np.empty(self.local_rows)
        Y = y.reshape(self.local_shape)
        if self.kind == "hpcg":
            # box sum over 3x3x3 neighbourhoods, one axis at a time
            s = u[:, :, :-2] + u[:, :, 1:-1] + u[:, :, 2:]
            s = s[:, :-2, :] + s[:, 1:-1, :] + s[:, 2:, :]
            s = s[:-2] + s[1:-1] + s[2:]
            np.multiply(27.0, inner, out=Y)
            Y -= s
        elif self.three_d:
            np.multiply(6.0, inner, out=Y)
            Y -= u[:-2, 1:-1, 1:-1]
            Y -= u[2:, 1:-1, 1:-1]
            Y -= u[1:-1, :-2, 1:-1]
            Y -= u[1:-1, 2:, 1:-1]
            Y -= u[1:-1, 1:-1, :-2]
            Y -= u[1:-1, 1:-1, 2:]
        else:
            np.multiply(4.0, inner, out=Y)
            Y -= u[:-2, 1:-1]
            Y -= u[2:, 1:-1]
            Y -= u[1:-1, :-2]
            Y -= u[1:-1, 2:]
        return y

    __matmul__ = spmv

    # -- layout -----------------------------------------------------------------------
    @property
    def row_range(self):
        return int(self.row_offsets[self.rank]), int(self.row_offsets[self.rank + 1])

    col_range = row_range

    @property
    def local_rows(self) -> int:
        lo, hi = self.row_range
        return hi - lo

    local_cols = local_rows

    def diagonal(self) -> np.ndarray:
        return np.full(self.local_rows, self.diag_value)

    def _xp(self):
        return np

    @property
    def assembled(self):
        """The same operator as a DistCSR (same row layout), for preconditioners that factor."""
        if self._assembled is None:
            self._assembled = structured(self.kind, self.N, self.comm, row_offsets=self.row_offsets,
                                         backend=self.backend)
        return self._assembled

    def __getattr__(self, name):
        # plan/A_loc/gather/nnz/local_slice/gather_vector...: the assembled matrix's
        if name.startswith("__") or name in ("_assembled",):
            raise AttributeError(name)
        return getattr(self.assembled, name)

    def free(self) -> None:
        self.halo.free()
