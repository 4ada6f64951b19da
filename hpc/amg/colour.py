"""Multicolour Gauss-Seidel for hpc.amg (``order="multicolour"``), partition independent and
parallel across ranks.

The colouring (:func:`colour`) is the greedy colouring of A's graph in decreasing priority,
the priority of a row a hash (splitmix64) of its global index: it depends only on the global
graph, so it is the same at any rank count. Distributed, it comes from Jones-Plassmann rounds
(a row whose uncoloured neighbours all have lower priority takes the smallest colour its
coloured neighbours leave free; one ghost exchange of the colours per round), which give
exactly the greedy colouring. Hashed priorities on stencils give about 8-15 colours.

The sweep (:class:`MultiColourPlan`) updates the rows colour by colour; rows of one colour
share no edge, so every rank updates its rows of a colour at once, and one ghost exchange of
that colour's boundary values (a :class:`hpc.core.exchange.GhostPlan` per colour) follows each
colour. Forward colours then backward is symmetric Gauss-Seidel in one global order (the
colours', the same at any partition): the V-cycle stays a symmetric positive definite
preconditioner, and its result is the one-rank result at any rank count (each row sums its
entries in the global column order, so to the bit where the inputs agree).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.exchange import GhostPlan
from hpc.sparse import DistCSR

_CORE: list = []


def _core():
    if not _CORE:
        from hpc import _core

        _CORE.append(_core.amg_colour)
    return _CORE[0]


def hash64(i: np.ndarray, seed: int = 0) -> np.ndarray:
    """splitmix64 of the global indices ``i`` (uint64) and the seed: the same value for an
    index whatever rank holds it."""
    i = np.asarray(i, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = i + np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def combined_block(A: DistCSR) -> tuple[type, np.ndarray, np.ndarray, sp.csr_matrix]:
    """(index dtype, indptr, indices, block) of this rank's rows with the columns numbered own
    rows first [0, n) and ghosts after (n + the slot in ``A.plan().ghost_ids``), each row's
    entries in the global column order (collective: builds A's plan)."""
    pl = A.plan()
    n = A.local_rows
    lo = A.row_range[0]
    if pl.n_ghost == 0:  # the own block alone, in local numbering already
        L = A.A_loc
        dt = np.int64 if max(L.nnz, n) >= 2**31 - 1 else np.int32
        return dt, L.indptr.astype(dt, copy=False), L.indices.astype(dt, copy=False), L
    L = A.local
    cols = L.indices.astype(np.int64)
    own = (cols >= lo) & (cols < lo + n)
    comb = np.where(own, cols - lo, n + np.searchsorted(pl.ghost_ids, cols))
    dt = np.int64 if max(L.nnz, n + pl.n_ghost) >= 2**31 - 1 else np.int32
    return dt, L.indptr.astype(dt), comb.astype(dt), L


def _coupled(A: DistCSR) -> bool:
    """Whether some rank's rows reach another rank's columns (collective)."""
    return bool(A.comm.allreduce(A.plan().n_ghost > 0, op=MPI.LOR))


def colour(A: DistCSR, seed: int = 0) -> tuple[np.ndarray, int]:
    """The hashed-priority greedy colouring of a symmetric ``A``'s graph (collective).

    Returns
    -------
    (colour of each own row, int32; number of colours). No two rows joined by a stored
    off-diagonal entry share a colour; the colouring does not depend on the partition.
    """
    pl = A.plan()
    n = A.local_rows
    lo = A.row_range[0]
    dt, ip, ix, _ = combined_block(A)
    gid = np.concatenate((np.arange(lo, lo + n, dtype=np.int64), pl.ghost_ids))
    key = hash64(gid, seed)
    col = np.full(n + pl.n_ghost, -1, dtype=np.int32)
    fn = getattr(_core(), f"colour_{'i32' if dt == np.int32 else 'i64'}")
    if not _coupled(A):
        fn(ip, ix, key, gid, col)
    else:
        while True:  # Jones-Plassmann rounds, the ghosts' colours exchanged after each
            _, left = fn(ip, ix, key, gid, col)
            pl.start(col[:n])
            col[n:] = pl.wait()
            if A.comm.allreduce(int(left)) == 0:
                break
    mine = col[:n].copy()
    return mine, int(A.comm.allreduce(int(mine.max()) + 1 if n else 0, op=MPI.MAX))


class MultiColourPlan:
    """A rank's share of the multicolour symmetric Gauss-Seidel sweep of ``A`` (collective
    setup; see the module docstring).

    Parameters
    ----------
    A : DistCSR
        Square and symmetric, rows and columns partitioned alike, positive diagonal.
    colouring : (ndarray, int), optional
        This rank's rows' colours and the number of colours, from :func:`colour` (computed
        here when not given).

    Attributes
    ----------
    colours : ndarray of int32
        This rank's rows' colours.
    ncolours : int
    coupled : bool
        Some rank's rows reach other ranks' columns (the sweep exchanges ghosts).
    """

    def __init__(self, A: DistCSR, colouring: tuple[np.ndarray, int] | None = None):
        pl = A.plan()
        self.A, self.n, self.n_ghost = A, A.local_rows, pl.n_ghost
        self.colours, self.ncolours = colour(A) if colouring is None else colouring
        self.coupled = _coupled(A)
        dt, ip, ix, L = combined_block(A)
        boundary = np.diff(A.A_gh.indptr) > 0
        boundary[pl.send_idx] = True  # rows other ranks read: exchanged right after
        sfx = "i32" if dt == np.int32 else "i64"
        self.kernel: Any = getattr(_core(), f"MultiColourGS_{sfx}")(
            ip, ix, np.ascontiguousarray(L.data, dtype=np.float64),
            np.ascontiguousarray(A.A_loc.diagonal(), dtype=np.float64), self.colours,
            boundary.astype(np.uint8), self.n + self.n_ghost, self.ncolours)
        # one plan per colour: the ghosts of that colour, exchanged right after its sweep;
        # None for a colour no rank needs from another
        self.plans: list[GhostPlan | None] = []
        self.slots: list[np.ndarray] = []
        if self.coupled:
            pl.start(self.colours)
            gcol = pl.wait().copy()
            need = np.bincount(gcol, minlength=self.ncolours).astype(np.int64)
            anyone = np.empty_like(need)
            A.comm.Allreduce(need, anyone, op=MPI.SUM)
            for c in range(self.ncolours):
                s = np.flatnonzero(gcol == c)
                self.slots.append(s + self.n)
                self.plans.append(GhostPlan(A.comm, pl.ghost_ids[s], A.row_offsets,
                                            method=pl.method, assume_unique=True,
                                            validate=False) if anyone[c] else None)

    def sweep(self, b: np.ndarray, x: np.ndarray, sweeps: int = 1, zero: bool = False) -> None:
        """``sweeps`` symmetric sweeps on A x = b, x (this rank's rows) in place (collective
        where coupled). ``zero``: x is zero on entry, so the ghosts are zeros without an
        exchange."""
        b = np.ascontiguousarray(b, dtype=np.float64)
        if not self.coupled:
            self.kernel.symmetric(b, x, sweeps)
            return
        n = self.n
        xe = np.zeros(n + self.n_ghost)
        xe[:n] = x
        if not zero:
            pl = self.A.plan()
            pl.start(x)
            xe[n:] = pl.wait()
        seq: list[int] = []
        for _ in range(sweeps):
            for c in list(range(self.ncolours)) + list(range(self.ncolours - 1, -1, -1)):
                if not seq or seq[-1] != c:  # a colour twice in a row: the same values
                    seq.append(c)
        for k, c in enumerate(seq):
            g = self.plans[c] if k + 1 < len(seq) else None
            self.kernel.sweep(b, xe, c, 0)  # the boundary rows, then send them
            if g is not None:
                g.start(xe[:n])
            self.kernel.sweep(b, xe, c, 1)  # the interior rows while they travel
            if g is not None:
                xe[self.slots[c]] = g.wait()
        x[:] = xe[:n]
