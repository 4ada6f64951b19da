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

The batch estimate overfits: among n candidates, the medoid of a cluster is chosen on the
~m/k batch points of that cluster. A refinement on all points follows (the alternating
(Voronoi) step of Park & Jun with a sampled estimate): every medoid moves to the member of
its cluster with the least distance sum to a uniform sample of REFINE_SAMPLE members of that
cluster (every member a candidate; O(n * REFINE_SAMPLE) distances per round, spread over the
ranks by their own points); a round is kept only when the true loss over all n points falls,
so the refinement never makes the result worse, and stops after REFINE_ROUNDS rounds or the
first round that does not improve.
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


REFINE_SAMPLE = 400  # members per cluster the refinement's distance sums are taken over
REFINE_ROUNDS = 3
ROWS_PER_TILE = 8192


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
    rounds, moved = (refine(everyone, rng, REFINE_SAMPLE, REFINE_ROUNDS) if 1 < k < n
                     else (0, 0))
    out = Result(everyone.med.copy(), everyone.loss, res.swaps, res.iterations, res.converged,
                 np.asarray(meds), t1 - t0, time.perf_counter() - t1,
                 {"batch_size": m, "batch_loss": float(res.loss),
                  "batch_distances": oracle.mode, "onebatch_loss": float(loss),
                  "refine_rounds": rounds, "refine_moved": moved,
                  "refine_s": time.perf_counter() - t2})
    return out, everyone


def refine(solver: Solver, rng: np.random.Generator, sample: int,
           rounds: int) -> tuple[int, int]:
    """Sampled alternating refinement of ``solver``'s medoids on all its points (see the
    module docstring). Returns (rounds kept, medoid moves kept); the solver ends on the best
    medoids, its loss the true loss over all points."""
    o, comm, k = solver.o, solver.comm, solver.k
    K, X = o.K, o.X_all
    kept = moved = 0
    for r in range(rounds):
        lab = solver._labels_all()
        members = np.split(np.argsort(lab, kind="stable"),
                           np.cumsum(np.bincount(lab, minlength=k))[:-1])
        # the same sample on every rank (the same generator state everywhere)
        S = [c if c.size <= sample else np.sort(rng.choice(c, size=sample, replace=False))
             for c in members]
        best = np.full(k, np.inf)
        best_id = np.full(k, -1, dtype=np.int64)
        cur = np.full(k, np.inf)  # the current medoid's sum (from the rank that owns it)
        prog = progress(k, f"onebatch refine {r + 1}", comm, unit="clusters")
        for c in range(k):
            prog.set(c)
            mine = solver.rows[solver.near_i == c]
            if not mine.size:
                continue
            Xs = K.xp.asarray(X[S[c]])
            for a in range(0, mine.size, ROWS_PER_TILE):
                ids = mine[a:a + ROWS_PER_TILE]
                cost = np.asarray(K.to_host(distances(K, K.xp.asarray(X[ids]), Xs, o.metric,
                                                       o.dtype)), dtype=np.float64).sum(axis=1)
                i = int(np.argmin(cost))
                if cost[i] < best[c]:
                    best[c], best_id[c] = cost[i], ids[i]
                at = np.flatnonzero(ids == solver.med[c])
                if at.size:
                    cur[c] = cost[at[0]]
        prog.close()
        if comm.Get_size() > 1:  # per cluster: the least sum, ties to the lowest point id
            allb = np.array(comm.allgather(best))
            alli = np.array(comm.allgather(best_id))
            cur = np.min(comm.allgather(cur), axis=0)
            key = np.where(np.isfinite(allb), allb, np.inf)
            best = key.min(axis=0)
            tie = key == best[None, :]
            best_id = np.where(tie, alli, np.iinfo(np.int64).max).min(axis=0)
        new = solver.med.copy()
        move = (best_id >= 0) & (best < cur)
        new[move] = best_id[move]
        if not move.any():
            break
        old, old_loss = solver.med.copy(), solver.loss
        if not solver.assign(new) < old_loss:
            solver.assign(old)
            break
        kept += 1
        moved += int(move.sum())
    return kept, moved

