"""Distance oracles: where a rank's distances come from, in matrix or tiled (on-the-fly) mode.

Rows (points) are block-distributed: rank r owns global rows [row0, row0 + n_local). Every
algorithm only asks for distances from its own rows to some global columns (candidates or
medoids), so a rank either keeps its row block of the n x n matrix (``MatrixOracle``) or
recomputes tiles from the replicated data (``TiledOracle``, memory O(n d + n_local * tile)).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .loops import progress

TILE_BYTES = 64 << 20  # budget of one on-the-fly tile per rank


DTYPES = {"float64": np.float64, "float32": np.float32}


def distances(K, A, B, metric: str, dtype=np.float64):
    """Distances between the rows of A and B, stored as dtype: always computed in float64,
    so a float32 distance is the float64 one rounded once."""
    if dtype == np.float64:
        return K.dist(A, B, metric)
    as_ = getattr(K, "dist_as", None)
    return as_(A, B, metric, "float32") if as_ else K.dist(A, B, metric).astype(np.float32)


def chunk_width(n: int, n_local: int, k: int) -> int:
    """Candidate columns per sweep step: a tile and its (k+1)-wide result stay within budget."""
    w = TILE_BYTES // 8 // max(1, n_local, k + 1)
    return int(max(64, min(n, w)))


class Oracle:
    """Distances from this rank's rows to global columns."""

    mode = "?"

    def __init__(self, n: int, row0: int, n_local: int, comm, K, metric: str,
                 X_all: np.ndarray | None = None, dtype=np.float64):
        self.n, self.row0, self.n_local = int(n), int(row0), int(n_local)
        self.comm, self.K, self.metric, self.X_all = comm, K, metric, X_all
        self.dtype = np.dtype(dtype).type  # of the stored matrix and the tiles
        self.rows = np.arange(self.row0, self.row0 + self.n_local, dtype=np.int64)

    def tile(self, c0: int, c1: int):
        """Local rows x columns [c0, c1), as an array of the back end (may be a view)."""
        raise NotImplementedError

    def cols(self, idx: np.ndarray) -> np.ndarray:
        """Local rows x the given global columns, on the host."""
        raise NotImplementedError

    def submatrix(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The full rows x cols block on every rank (collective)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if self.X_all is not None:  # data replicated: no communication
            S = np.ascontiguousarray(self.K.to_host(
                distances(self.K, self.X_all[rows], self.X_all[cols], self.metric, self.dtype)),
                dtype=np.float64)
            S[rows[:, None] == cols[None, :]] = 0.0
            return S
        mine = (rows >= self.row0) & (rows < self.row0 + self.n_local)
        part = self.cols(cols)[rows[mine] - self.row0] if mine.any() else None
        out = np.empty((rows.size, cols.size))
        pieces = self.comm.allgather((np.flatnonzero(mine), part))
        for where, blk in pieces:
            if blk is not None:
                out[where] = blk
        return out

    def info(self) -> dict[str, Any]:
        return {"mode": self.mode}


def _zero_diag(T, row0: int, c0: int, c1: int, xp) -> None:
    """d(i, i) = 0 exactly (the Gram trick and cosine may leave rounding noise there)."""
    n_local = T.shape[0]
    lo, hi = max(row0, c0), min(row0 + n_local, c1)
    if lo < hi:
        r = xp.arange(lo - row0, hi - row0)
        T[r, r + row0 - c0] = 0.0


class MatrixOracle(Oracle):
    """This rank's row block of the distance matrix, kept in memory."""

    mode = "matrix"

    def __init__(self, D_local, n: int, row0: int, comm, K, metric: str,
                 X_all: np.ndarray | None = None):
        super().__init__(n, row0, D_local.shape[0], comm, K, metric, X_all, D_local.dtype)
        self.D = D_local

    @classmethod
    def from_data(cls, X_local: np.ndarray, X_all: np.ndarray, row0: int, comm, K, metric: str,
                  dtype=np.float64):
        n, nl = X_all.shape[0], X_local.shape[0]
        D = K.xp.empty((nl, n), dtype=dtype)
        w = chunk_width(n, nl, 1)
        with progress(n, "distances", comm, unit="pts") as prog:
            for c0 in range(0, n, w):
                c1 = min(n, c0 + w)
                D[:, c0:c1] = distances(K, X_local, X_all[c0:c1], metric, dtype)
                prog.set(c1)
        _zero_diag(D, row0, 0, n, K.xp)
        return cls(D, n, row0, comm, K, metric, X_all)

    def tile(self, c0, c1):
        return self.D[:, c0:c1]

    def cols(self, idx):
        return np.ascontiguousarray(self.K.to_host(self.D[:, np.asarray(idx, dtype=np.int64)]),
                                    dtype=np.float64)

    def info(self):
        return {"mode": self.mode, "matrix_bytes_per_rank": int(self.D.nbytes)}


class TiledOracle(Oracle):
    """Distances recomputed tile by tile from the replicated data: no n^2 storage."""

    mode = "tiled"

    def __init__(self, X_local, X_all, row0: int, comm, K, metric: str, dtype=np.float64):
        super().__init__(X_all.shape[0], row0, X_local.shape[0], comm, K, metric, X_all, dtype)
        self.X_local = K.xp.asarray(X_local)
        self.X_dev = K.xp.asarray(X_all)  # the same array on the host back ends

    def tile(self, c0, c1):
        T = distances(self.K, self.X_local, self.X_dev[c0:c1], self.metric, self.dtype)
        _zero_diag(T, self.row0, c0, c1, self.K.xp)
        return T

    def cols(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        T = np.ascontiguousarray(self.K.to_host(
            distances(self.K, self.X_local, self.X_dev[self.K.xp.asarray(idx)], self.metric,
                      self.dtype)), dtype=np.float64)
        T[self.rows[:, None] == idx[None, :]] = 0.0
        return T

    def info(self):
        item = np.dtype(self.dtype).itemsize
        return {"mode": self.mode, "tile_bytes_per_rank": int(item * self.n_local *
                                                               chunk_width(self.n, self.n_local, 1))}
