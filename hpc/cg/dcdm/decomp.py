"""Where each rank's block of the grid lies, and moving vectors between the solver's layout
and those blocks.

The network needs a 3D block per rank whose 2x2x2 pooling cells never straddle two ranks, so
the blocks are cut on the coarse (half-resolution) grid: the coarse grid's n/2 cells per axis
are block-partitioned over a Cartesian process grid (MPI_Dims_create) and every coarse block
is doubled. Hence the constraint, checked with a clear error: every grid size is even, and
each axis has at least as many coarse cells as ranks along it.

The solver keeps vectors in lexicographic order (x fastest), row-block partitioned over the
ranks in rank order (any offsets). :class:`Redistributor` moves a vector from that layout to
the blocks and back with one Alltoallv each way; the plan is built once.
"""
from __future__ import annotations

import numpy as np

from hpc.core.decomp import Decomposition
from hpc.core.decomp import decompose as _decompose

from .weights import check_grid


def decompose(comm, shape: tuple[int, int, int], dims: tuple[int, int, int] | None = None) -> Decomposition:
    """Cut the grid for comm's ranks into even-aligned blocks (collective; every rank gets the
    same dims): the suite's one :func:`hpc.core.decomp.decompose` with ``align=2``, after
    DCDM's check that every grid size is even."""
    check_grid(shape)
    return _decompose(comm, tuple(shape), periodic=False, dims=dims, align=2)


class Redistributor:
    """Vectors between the solver's row blocks (lexicographic, x fastest) and the 3D blocks."""

    def __init__(self, dec: Decomposition, row_offsets: np.ndarray):
        comm = dec.cart
        p = comm.Get_size()
        rank = comm.Get_rank()
        nz, ny, nx = dec.global_shape
        row_offsets = np.asarray(row_offsets, dtype=np.int64)
        if row_offsets.shape != (p + 1,) or row_offsets[-1] != nz * ny * nx or row_offsets[0] != 0:
            raise ValueError(f"row offsets {row_offsets} do not partition {nz * ny * nx} rows over {p} ranks")
        self.comm = comm
        self.dec = dec
        self.n_local_rows = int(row_offsets[rank + 1] - row_offsets[rank])
        # Destination block of each of my rows.
        g = np.arange(row_offsets[rank], row_offsets[rank + 1], dtype=np.int64)
        z, rem = np.divmod(g, ny * nx)
        y, x = np.divmod(rem, nx)
        cz, cy, cx = dec.owner(0, z), dec.owner(1, y), dec.owner(2, x)
        table = np.array([[[comm.Get_cart_rank([a, b, c]) for c in range(dec.dims[2])]
                           for b in range(dec.dims[1])] for a in range(dec.dims[0])], dtype=np.int64)
        dest = table[cz, cy, cx] if g.size else np.zeros(0, np.int64)
        self.order = np.argsort(dest, kind="stable")  # rows grouped by block, g ascending
        self.row_counts = np.bincount(dest, minlength=p).astype(np.int64)
        # Cells of my block owned by each rank's rows (my block's cells in increasing g are in
        # C order, and owners' row ranges increase with g).
        lz, ly, lx = dec.local_shape
        zz, yy, xx = np.meshgrid(np.arange(dec.lo[0], dec.hi[0]), np.arange(dec.lo[1], dec.hi[1]),
                                 np.arange(dec.lo[2], dec.hi[2]), indexing="ij")
        gb = ((zz * ny + yy) * nx + xx).ravel()
        owner = np.searchsorted(row_offsets, gb, side="right") - 1
        self.block_counts = np.bincount(owner, minlength=p).astype(np.int64)
        self.block_shape = (lz, ly, lx)

    def to_blocks(self, v: np.ndarray, dtype=np.float32) -> np.ndarray:
        """My rows of a vector -> my block (lz, ly, lx)."""
        send = np.ascontiguousarray(v[self.order], dtype=dtype)
        recv = np.empty(int(self.block_counts.sum()), dtype=dtype)
        self.comm.Alltoallv([send, self.row_counts], [recv, self.block_counts])
        return recv.reshape(self.block_shape)

    def to_rows(self, blk: np.ndarray, dtype=np.float64) -> np.ndarray:
        """My block -> my rows of the vector."""
        send = np.ascontiguousarray(blk, dtype=dtype).ravel()
        recv = np.empty(self.n_local_rows, dtype=dtype)
        self.comm.Alltoallv([send, self.block_counts], [recv, self.row_counts])
        out = np.empty(self.n_local_rows, dtype=dtype)
        out[self.order] = recv
        return out

