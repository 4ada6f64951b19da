"""Structured test matrices, each rank generating only its own rows.

Grid points are numbered lexicographically, x fastest: i = x + nx*(y + ny*z). Dirichlet
boundaries (neighbours outside the grid are dropped).

- ``poisson2d:N``: 5-point Laplacian on N x N, diagonal 4, off-diagonals -1.
- ``poisson3d:N``: 7-point Laplacian on N^3, diagonal 6, off-diagonals -1.
- ``hpcg:N``: HPCG's 27-point operator on N^3, diagonal 26, off-diagonals -1. With b = A 1,
  the exact solution is all ones (HPCG's reference problem).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpc.core.errors import UsageError
from hpc.core.partition import block_offsets

from .dcsr import DistCSR

# stencil name -> (dimensions, offsets, diagonal value); off-diagonals are -1
STENCILS: dict[str, tuple[int, list[tuple[int, int, int]], float]] = {
    "poisson2d": (2, [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0)], 4.0),
    "poisson3d": (3, [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)], 6.0),
    "hpcg": (3, [(dx, dy, dz) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if (dx, dy, dz) != (0, 0, 0)], 26.0),
}
PROBLEMS = tuple(STENCILS)


def grid_dims(kind: str, N: int) -> tuple[int, int, int]:
    d = STENCILS[kind][0]
    return (N, N, 1) if d == 2 else (N, N, N)


def stencil_rows(kind: str, dims: tuple[int, int, int], lo: int, hi: int,
                 scale: float = 1.0) -> sp.csr_matrix:
    """Rows [lo, hi) of the stencil matrix on a grid of dims (global column indices)."""
    _, offsets, diag = STENCILS[kind]
    nx, ny, nz = dims
    n = nx * ny * nz
    g = np.arange(lo, hi, dtype=np.int64)
    x, y, z = g % nx, (g // nx) % ny, g // (nx * ny)
    # Column lists per row in ascending global index: offsets sorted by (dz, dy, dx) plus the diagonal.
    entries = sorted([(dz, dy, dx, -1.0) for dx, dy, dz in offsets] + [(0, 0, 0, diag)])
    cols, vals, valid = [], [], []
    for dz, dy, dx, v in entries:
        xx, yy, zz = x + dx, y + dy, z + dz
        ok = (xx >= 0) & (xx < nx) & (yy >= 0) & (yy < ny) & (zz >= 0) & (zz < nz)
        cols.append(xx + nx * (yy + ny * zz))
        valid.append(ok)
        vals.append(v * scale)
    C = np.stack(cols, axis=1)
    V = np.broadcast_to(np.array(vals), C.shape)
    M = np.stack(valid, axis=1)
    counts = M.sum(axis=1)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    A = sp.csr_matrix((V[M].astype(np.float64), C[M], indptr), shape=(hi - lo, n))
    A.has_sorted_indices = True
    return A


def structured(kind: str, N: int, comm, row_offsets=None, dims=None, backend: str | None = None,
               scale: float = 1.0) -> DistCSR:
    """The stencil matrix of `kind` on an N-point-per-side grid, rows generated where owned."""
    if kind not in STENCILS:
        raise UsageError(f"unknown problem {kind!r}; known: {', '.join(PROBLEMS)}")
    dims = tuple(dims) if dims is not None else grid_dims(kind, N)
    n = int(np.prod(dims))
    p, r = comm.Get_size(), comm.Get_rank()
    off = block_offsets(n, p) if row_offsets is None else np.asarray(row_offsets, dtype=np.int64)
    local = stencil_rows(kind, dims, int(off[r]), int(off[r + 1]), scale)
    A = DistCSR(comm, local, (n, n), row_offsets=off, backend=backend)
    A.grid, A.stencil = dims, kind
    return A


def poisson2d(N: int, comm, **kw) -> DistCSR:
    return structured("poisson2d", N, comm, **kw)


def poisson3d(N: int, comm, **kw) -> DistCSR:
    return structured("poisson3d", N, comm, **kw)


def hpcg(N: int, comm, **kw) -> DistCSR:
    return structured("hpcg", N, comm, **kw)


def parse_problem(spec: str) -> tuple[str, int]:
    """'poisson3d:64' -> ('poisson3d', 64); a UsageError names what is wrong."""
    kind, sep, size = spec.partition(":")
    if kind not in STENCILS:
        raise UsageError(f"--problem {spec!r}: unknown problem {kind!r} (known: {', '.join(PROBLEMS)})")
    try:
        N = int(size) if sep else -1
    except ValueError:
        N = -1
    if N < 1:
        raise UsageError(f"--problem {spec!r}: expected {kind}:N with a positive integer N")
    return kind, N


def make_problem(spec: str, comm, **kw) -> DistCSR:
    """Build the matrix named by a problem spec (e.g. 'hpcg:32')."""
    kind, N = parse_problem(spec)
    dims = grid_dims(kind, N)
    from hpc.core.memory import require_memory

    n = int(np.prod(dims))
    nnz_row = len(STENCILS[kind][1]) + 1
    require_memory(3 * 16 * nnz_row * n / comm.Get_size(), f"--problem {spec}", comm)
    return structured(kind, N, comm, **kw)
