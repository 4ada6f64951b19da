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

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.core.partition import block_range

from .weights import check_grid


@dataclass
class Decomposition:
    """The Cartesian decomposition of an (nz, ny, nx) grid into even-aligned blocks."""

    comm: object  # a Cartesian communicator (non-periodic), same ranks as the solver's
    shape: tuple[int, int, int]  # global (nz, ny, nx)
    dims: tuple[int, int, int]  # ranks per axis (z, y, x)
    coords: tuple[int, int, int]
    lo: tuple[int, int, int]  # this rank's first fine cell per axis
    hi: tuple[int, int, int]  # one past its last

    @property
    def local(self) -> tuple[int, int, int]:
        return tuple(h - l for l, h in zip(self.lo, self.hi))  # type: ignore[return-value]

    def bounds(self, axis: int, coord: int) -> tuple[int, int]:
        """Fine-cell range of the coord-th block along axis."""
        a, b = block_range(self.shape[axis] // 2, self.dims[axis], coord)
        return 2 * a, 2 * b


def decompose(comm, shape: tuple[int, int, int], dims: tuple[int, int, int] | None = None) -> Decomposition:
    """Cut the grid for comm's ranks (collective; every rank gets the same dims)."""
    check_grid(shape)
    p = comm.Get_size()
    coarse = [s // 2 for s in shape]
    if dims is None:
        # Dims_create balances counts, not cells: prefer the factorisation with the largest
        # smallest block so a small grid still fits.
        dims = tuple(MPI.Compute_dims(p, 3))
        if any(c < d for c, d in zip(coarse, dims)):
            best = None
            for dz in range(1, p + 1):
                for dy in range(1, p // dz + 1):
                    if p % (dz * dy):
                        continue
                    d = (dz, dy, p // (dz * dy))
                    if all(c >= k for c, k in zip(coarse, d)):
                        score = min(c // k for c, k in zip(coarse, d))
                        if best is None or score > best[0]:
                            best = (score, d)
            if best is not None:
                dims = best[1]
    dims = tuple(int(d) for d in dims)
    if int(np.prod(dims)) != p:
        raise UsageError(f"process grid {dims} does not match {p} ranks")
    bad = [(a, c, d) for a, (c, d) in enumerate(zip(coarse, dims)) if c < d]
    if bad:
        raise UsageError(f"DCDM: grid {'x'.join(map(str, shape))} is too small for {p} ranks: "
                         f"each rank needs at least 2 cells per axis (process grid "
                         f"{'x'.join(map(str, dims))})")
    cart = comm.Create_cart(list(dims), periods=[False] * 3, reorder=False)
    coords = tuple(cart.Get_coords(cart.Get_rank()))
    lo, hi = [], []
    for axis in range(3):
        a, b = block_range(coarse[axis], dims[axis], coords[axis])
        lo.append(2 * a)
        hi.append(2 * b)
    return Decomposition(cart, tuple(shape), dims, coords, tuple(lo), tuple(hi))  # type: ignore[arg-type]


class Redistributor:
    """Vectors between the solver's row blocks (lexicographic, x fastest) and the 3D blocks."""

    def __init__(self, dec: Decomposition, row_offsets: np.ndarray):
        comm = dec.comm
        p = comm.Get_size()
        rank = comm.Get_rank()
        nz, ny, nx = dec.shape
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
        cz = _owner(z, nz, dec.dims[0])
        cy = _owner(y, ny, dec.dims[1])
        cx = _owner(x, nx, dec.dims[2])
        table = np.array([[[comm.Get_cart_rank([a, b, c]) for c in range(dec.dims[2])]
                           for b in range(dec.dims[1])] for a in range(dec.dims[0])], dtype=np.int64)
        dest = table[cz, cy, cx] if g.size else np.zeros(0, np.int64)
        self.order = np.argsort(dest, kind="stable")  # rows grouped by block, g ascending
        self.row_counts = np.bincount(dest, minlength=p).astype(np.int64)
        # Cells of my block owned by each rank's rows (my block's cells in increasing g are in
        # C order, and owners' row ranges increase with g).
        lz, ly, lx = dec.local
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


def _owner(i: np.ndarray, n: int, parts: int) -> np.ndarray:
    """Block (along one axis) that owns fine index i, with the even-aligned cut."""
    half = n // 2
    r = np.arange(parts + 1, dtype=np.int64)
    offs = 2 * (r * (half // parts) + np.minimum(r, half % parts))
    return np.searchsorted(offs, i, side="right") - 1
