"""OneBatchPAM: FasterPAM's eager swaps with the loss estimated on one random batch of points,
for n far beyond n^2 work (de Mathelin, Richard, Mougeot & Vayatis, "OneBatchPAM: A Fast and
Frugal K-Medoids Algorithm", AAAI 2025 / arXiv:2501.19285).

Every point is a candidate medoid, but the loss of a medoid set is summed over a uniform batch
of m << n points only, so a sweep costs O(n m) distances instead of O(n^2). Here the batch
plays the role the points play in algorithms.py: the batch is block-distributed over the ranks
(each rank keeps its batch rows' nearest and second nearest medoid), candidates are the columns
of batch x all-points tiles (stored, or recomputed from the replicated data), and each block of
candidates ends in one reduction of (k+1) sums, exactly as FasterPAM's. The swaps are therefore
the sequential OneBatchPAM's (FasterPAM on the batch estimate) at any rank count. At the end
every point is assigned to its nearest medoid and the true loss is summed over all n points.
"""
from __future__ import annotations

import math
import time

import numpy as np
from mpi4py import MPI

from hpc.core.memory import available_bytes
from hpc.core.partition import block_range

from .algorithms import Result, Solver
from .loops import progress
from .oracle import Oracle, TiledOracle, chunk_width, distances


def default_batch(n: int, k: int) -> int:
    """The default batch: 100 ln(k n) points (at most n); 1,773 for n = 10^6, k = 50."""
    return int(min(n, max(k + 1, math.ceil(100 * math.log(max(2, k * n))))))


class BatchOracle(TiledOracle):
    """Distances from this rank's batch points (global ids ``rows``, any order-preserving
    subset) to all points: a stored block when it fits (``store=True``), else tiles
    recomputed from the replicated data."""

    def __init__(self, rows: np.ndarray, X_all: np.ndarray, comm, K, metric: str,
                 dtype=np.float64, store: bool = False):
        rows = np.asarray(rows, dtype=np.int64)
        super().__init__(X_all[rows], X_all, 0, comm, K, metric, dtype)
        self.rows = rows
        self.n_local = rows.size
        self.D = None
        if store:
            n = self.n
            self.D = K.xp.empty((rows.size, n), dtype=dtype)
            w = chunk_width(n, rows.size, 1)
            with progress(n, "batch distances", comm, unit="pts") as prog:
                for c0 in range(0, n, w):
                    c1 = min(n, c0 + w)
                    self.D[:, c0:c1] = self._tile(c0, c1)
                    prog.set(c1)
        self.mode = "batch-matrix" if store else "batch-tiled"

    def _tile(self, c0: int, c1: int):
        T = distances(self.K, self.X_local, self.X_dev[c0:c1], self.metric, self.dtype)
        r = np.flatnonzero((self.rows >= c0) & (self.rows < c1))  # d(i, i) = 0 exactly
        if r.size:
            T[r, self.rows[r] - c0] = 0.0
        return T

    def tile(self, c0, c1):
        return self.D[:, c0:c1] if self.D is not None else self._tile(c0, c1)

    def info(self):
        return {"mode": self.mode, "batch_bytes_per_rank":
                int(self.D.nbytes) if self.D is not None else 0}


def onebatch(full: Oracle, k: int, init: str, rng: np.random.Generator, maxiter: int,
             batch_size: int | None = None) -> tuple[Result, Solver]:
    """OneBatchPAM over the points behind ``full`` (a matrix or tiled oracle with the
    replicated data ``X_all``). Returns the result (true loss over all points) and a solver
    over ``full`` holding every local point's assignment."""
    t0 = time.perf_counter()
    comm, n = full.comm, full.n
    m = default_batch(n, k) if batch_size is None else int(min(n, batch_size))
    batch = np.sort(rng.choice(n, size=m, replace=False))
    lo, hi = block_range(m, comm.Get_size(), comm.Get_rank())
    item = np.dtype(full.dtype).itemsize
    fits = float(item) * (hi - lo) * n <= 0.5 * available_bytes()
    store = bool(comm.allreduce(fits, op=MPI.LAND))
    oracle = BatchOracle(batch[lo:hi], full.X_all, comm, full.K, full.metric, full.dtype, store)
    solver = Solver(oracle, comm, full.K, k)
    meds = {"build": solver.init_build, "lab": lambda: solver.init_lab(rng),
            "random": lambda: solver.init_random(rng)}[init]()
    solver.assign(meds)
    t1 = time.perf_counter()
    res = solver.one_medoid(meds) if k == 1 else solver.fasterpam(maxiter)
    t2 = time.perf_counter()
    everyone = Solver(full, comm, full.K, k)
    loss = everyone.assign(res.medoids)  # the true loss, over all n points
    out = Result(res.medoids.copy(), loss, res.swaps, res.iterations, res.converged,
                 np.asarray(meds), t1 - t0, t2 - t1,
                 {"batch_size": m, "batch_loss": float(res.loss),
                  "batch_distances": oracle.mode})
    return out, everyone

