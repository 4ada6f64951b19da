"""HPCG's linear system on one rank: the matrix of every multigrid level, its halo, the vectors.

Each level holds this rank's rows of the 27-point operator on its box (26 on the diagonal, -1
for every other point of the 3x3x3 neighbourhood inside the global grid, no wrap-around) as a
general sparse matrix (:class:`hpc._core.hpcg.Ell`: values and column indices stored and read).
Local columns ``[0, nrow)`` are this rank's points; columns ``nrow + k`` are the ghosts, the
points of the up to 26 neighbouring boxes this rank's rows touch, in the order of
:class:`hpc.core.exchange.GhostPlan` (by owner, then the owner's local row): a vector of length
``ncol = nrow + nghost`` holds both, and :meth:`Level.halo` fills the ghosts from their owners.

Level ``k + 1`` is level ``k`` coarsened by 2 in every dimension on the same process grid;
coarse point ``(x, y, z)`` is fine point ``(2x, 2y, 2z)`` of the same rank (``f2c``), so
restriction (injection) and prolongation need no communication.
"""
from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI

from hpc.core.exchange import GhostPlan

from .geometry import Geometry, global_row, owner_rank

N_LEVELS = 4          # HPCG: the fine grid and 3 coarsenings
STENCIL = 27


def _core():
    from hpc._core import hpcg
    return hpcg


def local_coords(g: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local ``(x, y, z)`` of every local row (x fastest)."""
    i = np.arange(g.nrow, dtype=np.int64)
    return i % g.nx, (i // g.nx) % g.ny, i // (g.nx * g.ny)


class Level:
    """One multigrid level on one rank (collective to build: its ghost plan)."""

    def __init__(self, geom: Geometry, comm):
        h = _core()
        self.geom, self.comm = geom, comm
        g = geom
        nrow = g.nrow
        cols, vals, nnz, b = h.generate(g.nx, g.ny, g.nz, g.npx, g.npy, g.npz, g.ipx, g.ipy, g.ipz)
        self.generated = (cols, vals, nnz, b)   # kept for CheckProblem, dropped after it
        lo = g.rank * nrow
        own = (cols >= lo) & (cols < lo + nrow)
        ext = (cols >= 0) & ~own
        self.ghost_ids = np.unique(cols[ext])   # rank-major ids, grouped by owner
        local = np.zeros(cols.shape, dtype=np.int32)
        local[own] = cols[own] - lo
        local[ext] = nrow + np.searchsorted(self.ghost_ids, cols[ext])
        self.nrow = nrow
        self.ncol = nrow + int(self.ghost_ids.size)
        self.A = h.Ell(local, vals, nnz, self.ncol)
        self.b = b                               # HPCG's b on every level (used on the fine one)
        self.nnz_local = int(nnz.sum())
        self.plan: GhostPlan | None = None
        self._channel = None                     # the plan's float64 transfer (halo)
        self.interior = self.boundary = None     # rows without / with a ghost column
        if g.size > 1:
            offsets = np.arange(g.size + 1, dtype=np.int64) * nrow
            self.plan = GhostPlan(comm, self.ghost_ids, offsets, assume_unique=True, validate=False)
            self.interior = self.A.rows_touching_ghosts(False)
            self.boundary = self.A.rows_touching_ghosts(True)
        self.f2c: np.ndarray | None = None       # fine rows of the next level's rows
        self.coarse: Level | None = None
        self.rc: np.ndarray | None = None        # the residual restricted to the next level
        # MG work vectors of this level: the correction x (with ghosts), A x for the
        # reference restriction
        self.x = np.zeros(self.ncol)
        self.Axf = np.zeros(self.ncol)
        self.levels_scheduled = 0

    def halo(self, x: np.ndarray) -> None:
        """Fill the ghost entries ``x[nrow:]`` from their owners (HPCG's ExchangeHalo)."""
        if self.plan is not None:
            # the plan's float64 channel driven directly (x is always a float64 vector of
            # ncol entries here): pack, start, wait, unpack, without the per-call checks of
            # GhostPlan.exchange (7 exchanges per CG iteration)
            ch = self._channel
            if ch is None:
                ch = self._channel = self.plan.channel(np.float64, 1)
            np.take(x, self.plan.send_idx, out=ch.send)
            ch.start()
            ch.wait()
            x[self.nrow:] = ch.recv

    def global_rows(self) -> np.ndarray:
        """HPCG's global row number of every local row."""
        return global_row(self.geom, *local_coords(self.geom))

    def free(self) -> None:
        """Release the ghost plan's persistent requests (collective over neighbours)."""
        if self.plan is not None:
            self.plan.free()
            self.plan = None
            self._channel = None


class Problem:
    """The fine system ``A x = b`` (exact solution all ones), its multigrid hierarchy and
    the setup time (HPCG's: generation, halo setup and the coarse levels)."""

    def __init__(self, geom: Geometry, comm, levels: int = N_LEVELS):
        t0 = time.perf_counter()
        self.comm, self.geom = comm, geom
        self.levels = [Level(geom, comm)]
        for _ in range(levels - 1):
            fine = self.levels[-1]
            g = fine.geom
            fine.f2c = _core().f2c_map(g.nx, g.ny, g.nz)
            fine.coarse = Level(g.coarse(), comm)
            fine.rc = np.zeros(fine.coarse.nrow)
            self.levels.append(fine.coarse)
        fine = self.levels[0]
        self.b = fine.b
        self.xexact = np.ones(fine.nrow)
        self.setup_s = _max(comm, time.perf_counter() - t0)
        self.nnz_global = [int(_sum_int(comm, lv.nnz_local)) for lv in self.levels]
        self.rows_global = [lv.nrow * geom.size for lv in self.levels]

    @property
    def fine(self) -> Level:
        return self.levels[0]

    def free(self) -> None:
        for lv in self.levels:
            lv.free()


def _max(comm, v: float) -> float:
    return float(comm.allreduce(float(v), op=MPI.MAX)) if comm.Get_size() > 1 else float(v)


def _sum_int(comm, v: int) -> int:
    return int(comm.allreduce(int(v), op=MPI.SUM)) if comm.Get_size() > 1 else int(v)


# -- CheckProblem -----------------------------------------------------------------------------
def expected_rows(g: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HPCG's definition of this rank's rows, computed independently of the generator:
    ``(cols, vals, nnz)`` with rank-major column ids, the stencil in (z, y, x) offset order,
    ``-1`` where a neighbour is outside the global grid."""
    lx, ly, lz = local_coords(g)
    x0, y0, z0 = g.origin
    gnx, gny, gnz = g.global_shape
    gx, gy, gz = lx + x0, ly + y0, lz + z0
    cols = np.full((g.nrow, STENCIL), -1, dtype=np.int64)
    vals = np.zeros((g.nrow, STENCIL))
    k = 0
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                qx, qy, qz = gx + dx, gy + dy, gz + dz
                inside = (qx >= 0) & (qx < gnx) & (qy >= 0) & (qy < gny) & (qz >= 0) & (qz < gnz)
                ox, oy, oz = qx // g.nx, qy // g.ny, qz // g.nz
                own = owner_rank(g, ox, oy, oz)
                loc = (qx - ox * g.nx) + g.nx * ((qy - oy * g.ny) + g.ny * (qz - oz * g.nz))
                cols[:, k] = np.where(inside, own * g.nrow + loc, -1)
                vals[:, k] = np.where(inside, 26.0 if (dx, dy, dz) == (0, 0, 0) else -1.0, 0.0)
                k += 1
    nnz = (cols >= 0).sum(axis=1)
    return cols, vals, nnz


def check_level(lv: Level, rng: np.random.Generator, samples: int = 64) -> list[str]:
    """HPCG's CheckProblem for one level: every stored row equals the definition (columns,
    values, count) and b = A 1; a sample of rows read back from the optimised matrix. Returns
    the problems found (empty: passed)."""
    errors: list[str] = []
    cols, vals, nnz, b = lv.generated
    ec, ev, en = expected_rows(lv.geom)
    if not np.array_equal(nnz, en):
        errors.append(f"level {lv.geom.nx}x{lv.geom.ny}x{lv.geom.nz}: nonzeros per row differ")
    # the generator compacts each row's entries to the front, in the stencil's order
    order = np.argsort(ec < 0, axis=1, kind="stable")
    ecc = np.take_along_axis(ec, order, axis=1)
    evc = np.take_along_axis(ev, order, axis=1)
    if not np.array_equal(cols.reshape(ecc.shape), ecc):
        errors.append("column indices differ from the 27-point definition")
    if not np.array_equal(vals.reshape(evc.shape), evc):
        errors.append("values differ from the definition (26 diagonal, -1 off-diagonal)")
    if not np.array_equal(b, 26.0 - (en - 1)):
        errors.append("b differs from A * ones")
    # the optimised storage: the same entries per row, whatever their order
    ghost_of = np.concatenate([lv.geom.rank * lv.nrow + np.arange(lv.nrow), lv.ghost_ids])
    for i in rng.choice(lv.nrow, size=min(samples, lv.nrow), replace=False):
        c, v = lv.A.row(int(i))
        got = sorted(zip(ghost_of[c].tolist(), v.tolist()))
        want = sorted((int(a), float(w)) for a, w in zip(ec[i], ev[i]) if a >= 0)
        if got != want:
            errors.append(f"stored row {int(i)} differs from the definition")
            break
    return errors


def check_problem(problem: Problem, seed: int = 0) -> list[str]:
    """CheckProblem on every level (each rank checks its rows; the caller agrees on the
    outcome). Drops the generator's arrays afterwards."""
    rng = np.random.default_rng(seed + problem.geom.rank)
    errors: list[str] = []
    for lv in problem.levels:
        errors += check_level(lv, rng)
        lv.generated = None
    return errors
