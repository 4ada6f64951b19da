"""The paper's algorithms on block-distributed points (any oracle, any back end).

State per rank, for its own points o: nearest medoid (near_i, near_d), second nearest
(seco_i, seco_d) and DM[o, m] = d(o, medoid m). Every loss change (ΔTD) is a sum over points,
so each rank sums over its own points and the sums are reduced (Allreduce): the SWAP phase
evaluates candidates in column tiles, one reduction per tile.

Semantics follow the reference implementations exactly where they are deterministic (the
`kmedoids` package): BUILD, the PAM/FastPAM1 best-swap selection with its tie order (lowest
candidate, then lowest medoid slot), FasterPAM's eager circular sweep (first improving
candidate in index order, stop after a full cycle without a swap) and its stop rules.
FasterPAM is parallelised over candidate blocks speculatively: a block is evaluated against the
current medoids in one pass and one reduction; the first improving candidate in it is swapped,
and the sweep resumes right after it. The result is the sequential algorithm's, swap for swap.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

from .loops import progress
from .oracle import Oracle, chunk_width

B0 = 32  # first speculative block after a swap (FasterPAM, CLARANS); doubles while none improve
# candidate columns gathered at once by the distributed FasterPAM (this many bytes of them)
SLAB_BYTES = 32 << 20
# distance entries per call of the native one-rank SWAP loop (a progress line between calls)
NATIVE_WORK = 1 << 24
# points from which the native loop evaluates a candidate per thread (fewer: one thread, as a
# fork per candidate group would cost more than the group)
NATIVE_PAR_ROWS = 16384
# HPC_KMEDOIDS_LOOP=blocked keeps the blocked loop on one rank too (the strong-scaling
# benchmark's like-for-like 1-rank baseline)
NATIVE_LOOP = os.environ.get("HPC_KMEDOIDS_LOOP", "native") != "blocked"


@dataclass
class Result:
    medoids: np.ndarray          # in slot order (labels index this)
    loss: float
    swaps: int = 0
    iterations: int = 0
    converged: bool = True
    init_medoids: np.ndarray | None = None
    build_s: float = 0.0
    swap_s: float = 0.0
    extra: dict = field(default_factory=dict)


class Solver:
    """k-medoids state and moves over one oracle's points."""

    def __init__(self, oracle: Oracle, comm, K, k: int):
        self.o, self.comm, self.K, self.k = oracle, comm, K, int(k)
        self.n = oracle.n
        # one candidate-block width on every rank: the blocks end in collective reductions,
        # so it comes from the largest row block (a rank-local width diverged when n % p != 0)
        nl = oracle.n_local if comm.Get_size() == 1 else comm.allreduce(oracle.n_local,
                                                                         op=MPI.MAX)
        self.C = chunk_width(self.n, nl, self.k)
        self.rows = oracle.rows
        self.loss = math.nan

    # -- reductions ---------------------------------------------------------------------
    def allsum(self, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, dtype=np.float64)
        if self.comm.Get_size() > 1:
            self.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
        return a

    def total(self, x: float) -> float:
        return float(self.allsum(np.array([x]))[0])

    # -- state --------------------------------------------------------------------------
    def assign(self, meds) -> float:
        """Nearest and second nearest medoid of every local point (the reference's order)."""
        meds = np.asarray(meds, dtype=np.int64).copy()
        self.med = meds
        self.is_med = np.zeros(self.n, dtype=bool)
        self.is_med[meds] = True
        k, nl = self.k, self.o.n_local
        self.DM = np.ascontiguousarray(self.o.cols(meds))
        self.near_i = np.zeros(nl, dtype=np.int64)
        self.near_d = self.DM[:, 0].copy()
        self.seco_i = np.full(nl, -1, dtype=np.int64)
        self.seco_d = np.full(nl, np.inf)
        for m in range(1, k):
            d = self.DM[:, m]
            c1 = (d < self.near_d) | (self.rows == meds[m])
            c2 = ~c1 & ((self.seco_i < 0) | (d < self.seco_d))
            self.seco_i = np.where(c1, self.near_i, np.where(c2, m, self.seco_i))
            self.seco_d = np.where(c1, self.near_d, np.where(c2, d, self.seco_d))
            self.near_i = np.where(c1, m, self.near_i)
            self.near_d = np.where(c1, d, self.near_d)
        self.loss = self.total(float(self.near_d.sum()))
        return self.loss

    def native_loop(self):
        """hpc._core.kmedoids_swap when the eager SWAP can run in one native loop: one rank,
        the native back end and the full matrix in memory (else None: the blocked loop)."""
        from .oracle import MatrixOracle

        if (not NATIVE_LOOP or self.comm.Get_size() != 1 or not getattr(self.K, "__name__", "").endswith(".native")
                or not isinstance(self.o, MatrixOracle) or not isinstance(self.o.D, np.ndarray)
                or self.o.D.shape != (self.n, self.n) or self.k < 2):
            return None
        from hpc import _core

        return _core.kmedoids_swap

    def removal_loss(self) -> np.ndarray:
        return self.allsum(np.bincount(self.near_i, weights=self.seco_d - self.near_d,
                                       minlength=self.k))

    def _second(self, sel: np.ndarray, b: int, doj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Second nearest of points `sel` after medoid slot b changed: starts at (b, doj)."""
        M = self.DM[sel].copy()
        M[np.arange(sel.size), self.near_i[sel]] = np.inf
        M[:, b] = np.inf
        i = np.argmin(M, axis=1)
        d = M[np.arange(sel.size), i]
        better = d < doj
        return np.where(better, i, b), np.where(better, d, doj)

    def swap(self, b: int, j: int) -> float:
        """Medoid slot b becomes point j; update the assignment; return the new loss."""
        self._swap_local(b, j)
        self.loss = self.total(float(self.near_d.sum()))
        return self.loss

    def _swap_local(self, b: int, j: int) -> None:
        self.is_med[self.med[b]] = False
        self.med[b] = j
        self.is_med[j] = True
        doj = self.o.cols(np.array([j]))[:, 0]
        self.DM[:, b] = doj
        ni, nd, si, sd = self.near_i, self.near_d, self.seco_i, self.seco_d
        isj = self.rows == j
        was = (ni == b) & ~isj
        # nearest medoid replaced: the new one if closer than the second, else the second
        a1 = was & (doj < sd)
        a2 = was & ~a1
        other = ~was & ~isj
        b1 = other & (doj < nd)
        b2 = other & ~b1 & (doj < sd)
        b3 = other & ~b1 & ~b2 & (si == b)
        nd[a1] = doj[a1]
        ni[a2], nd[a2] = si[a2], sd[a2]
        si[b1], sd[b1] = ni[b1], nd[b1]
        ni[b1], nd[b1] = b, doj[b1]
        si[b2], sd[b2] = b, doj[b2]
        fix = np.flatnonzero(a2 | b3)
        if fix.size:
            si[fix], sd[fix] = self._second(fix, b, doj[fix])
        if isj.any():  # the new medoid itself
            t = np.flatnonzero(isj)
            keep = ni[t] != b
            si[t[keep]], sd[t[keep]] = ni[t[keep]], nd[t[keep]]
            ni[t], nd[t] = b, 0.0

    def evaluate(self, meds) -> float:
        """Loss of a medoid set on all points (no state change)."""
        return self.total(float(self.o.cols(np.asarray(meds)).min(axis=1).sum()))

    # -- ΔTD over a tile ----------------------------------------------------------------
    def _fast_tile(self, T) -> np.ndarray:
        part = self.K.fastpam_delta(T, self.near_i, self.near_d, self.seco_d, self.k)
        return self.allsum(part)

    def _cand_values(self, part: np.ndarray, rl: np.ndarray, c_ids: np.ndarray):
        """Best slot per candidate and its ΔTD (FastPAM1's find_best_swap); medoids -> +inf."""
        ploss = rl[None, :] + part[:, :self.k]
        m = np.argmin(ploss, axis=1)
        v = ploss[np.arange(m.size), m] + part[:, self.k]
        v[self.is_med[c_ids]] = np.inf
        return m, v

    # -- initialisation -----------------------------------------------------------------
    def init_build(self) -> np.ndarray:
        """PAM BUILD: greedy, each medoid the point that lowers the loss most (O(k n^2))."""
        n, C = self.n, self.C
        s = np.empty(n)
        for c0 in range(0, n, C):
            c1 = min(n, c0 + C)
            s[c0:c1] = self.allsum(self.K.colsum(self.o.tile(c0, c1)))
        meds = [int(np.argmin(s))]
        near_d = self.o.cols(np.array(meds))[:, 0].copy()
        is_med = np.zeros(n, dtype=bool)
        is_med[meds[0]] = True
        prog = progress(self.k * n, "build", self.comm)
        prog.set(n)
        for m in range(1, self.k):
            g = np.empty(n)
            for c0 in range(0, n, C):
                c1 = min(n, c0 + C)
                g[c0:c1] = self.allsum(self.K.build_gain(self.o.tile(c0, c1), near_d))
                prog.set(m * n + c1, medoids=m)
            g[is_med] = np.inf
            i = int(np.argmin(g))
            meds.append(i)
            is_med[i] = True
            np.minimum(near_d, self.o.cols(np.array([i]))[:, 0], out=near_d)
        prog.close()
        return np.array(meds, dtype=np.int64)

    def init_lab(self, rng: np.random.Generator) -> np.ndarray:
        """Linear Approximative BUILD: each medoid chosen by BUILD on a fresh subsample of
        10 + sqrt(n) non-medoids, the gain measured on that subsample only (O(n k) overall)."""
        n = self.n
        size = 10 + int(math.ceil(math.sqrt(n)))
        meds: list[int] = []
        is_med = np.zeros(n, dtype=bool)
        for _ in range(self.k):
            pool = np.flatnonzero(~is_med)
            S = np.sort(rng.choice(pool, size=min(size, pool.size), replace=False))
            cols = np.concatenate([S, np.array(meds, dtype=np.int64)])
            sub = self.o.submatrix(S, cols)
            near = sub[:, S.size:].min(axis=1) if meds else np.full(S.size, np.inf)
            td = np.minimum(sub[:, :S.size], near[:, None]).sum(axis=0)
            i = int(S[np.argmin(td)])
            meds.append(i)
            is_med[i] = True
        return np.array(meds, dtype=np.int64)

    def init_random(self, rng: np.random.Generator) -> np.ndarray:
        return np.sort(rng.choice(self.n, size=self.k, replace=False)).astype(np.int64)

    # -- k = 1 --------------------------------------------------------------------------
    def one_medoid(self, meds) -> Result:
        """k = 1: the medoid is the point with the least total distance (ties: the initial)."""
        n, C = self.n, self.C
        s = np.empty(n)
        for c0 in range(0, n, C):
            c1 = min(n, c0 + C)
            s[c0:c1] = self.allsum(self.K.colsum(self.o.tile(c0, c1)))
        first = int(meds[0])
        best = int(np.argmin(s))
        if not s[best] < s[first]:
            best = first
        self.assign([best])
        return Result(np.array([best]), self.loss, int(best != first), 1, True)

    # -- SWAP ---------------------------------------------------------------------------
    def best_swap(self, pam: bool) -> tuple[float, int, int]:
        """The best (ΔTD, slot, candidate) over all non-medoids; ties: lowest j, lowest slot."""
        n, C, k = self.n, self.C, self.k
        rl = None if pam else self.removal_loss()
        best = (0.0, -1, -1)
        prog = progress(n, "pam swap" if pam else "fastpam1 swap", self.comm)
        for c0 in range(0, n, C):
            c1 = min(n, c0 + C)
            prog.set(c0, loss=f"{self.loss:.8g}")
            T = self.o.tile(c0, c1)
            ids = np.arange(c0, c1)
            if pam:
                part = self.allsum(self.K.pam_delta(T, self.near_i, self.near_d, self.seco_d, k))
                m = np.argmin(part, axis=1)
                v = part[np.arange(m.size), m]
                v[self.is_med[ids]] = np.inf
            else:
                m, v = self._cand_values(self._fast_tile(T), rl, ids)
            t = int(np.argmin(v))
            if v[t] < best[0]:
                best = (float(v[t]), int(m[t]), c0 + t)
        prog.close()
        return best

    def pam_swap(self, maxiter: int, pam: bool) -> Result:
        """PAM (pam=True) or FastPAM1: one best swap per iteration, identical swaps."""
        swaps = it = 0
        converged = False
        while it < maxiter:
            it += 1
            v, b, j = self.best_swap(pam)
            if not v < 0:
                converged = True
                break
            swaps += 1
            before = self.loss
            if self.swap(b, j) >= before:
                converged = True  # no progress possible (numerical noise)
                break
        return Result(self.med.copy(), self.loss, swaps, it, converged)

    def fastpam2(self, maxiter: int) -> Result:
        """FastPAM2: the best candidate of every medoid slot, executed in order of ΔTD while
        each still improves the loss (re-evaluated after the first swap of the iteration)."""
        n, C, k = self.n, self.C, self.k
        swaps = it = 0
        converged = False
        while it < maxiter:
            it += 1
            rl = self.removal_loss()
            bv = np.zeros(k)
            bj = np.full(k, -1, dtype=np.int64)
            for c0 in range(0, n, C):
                c1 = min(n, c0 + C)
                ids = np.arange(c0, c1)
                part = self._fast_tile(self.o.tile(c0, c1))
                P = rl[None, :] + part[:, :k] + part[:, k:k + 1]
                P[self.is_med[ids]] = np.inf
                t = np.argmin(P, axis=0)
                vmin = P[t, np.arange(k)]
                upd = vmin < bv
                bv[upd], bj[upd] = vmin[upd], ids[t[upd]]
            order = np.argsort(bv, kind="stable")
            if not bv[order[0]] < 0:
                converged = True
                break
            before = self.loss
            done = 0
            for m in order:
                if not bv[m] < 0:
                    break
                j = int(bj[m])
                if done:
                    if self.is_med[j]:
                        continue
                    part = self._fast_tile(self.o.cols(np.array([j])))
                    v = self.removal_loss()[m] + part[0, m] + part[0, k]
                    if not v < 0:
                        continue
                self.swap(int(m), j)
                swaps += 1
                done += 1
            if self.loss >= before:
                converged = True
                break
        return Result(self.med.copy(), self.loss, swaps, it, converged)

    def fasterpam(self, maxiter: int) -> Result:
        """FasterPAM: eager swaps in a circular sweep; a full cycle without one ends it.

        Distributed as speculative blocks of candidates, each one pass over the rank's points
        and one reduction; the first improving candidate of a block is swapped and the scan
        goes on through the rest of the block, whose terms are updated for the points the
        swap changed (native back end with the matrix; else evaluated again) and reduced with
        the swap's new removal losses. The swaps are the sequential algorithm's, at any rank
        count. On one rank with the matrix (native back end) the whole sweep runs natively,
        candidate by candidate (native/src/kmedoids_swap.cpp): the same swaps."""
        if self.native_loop() is not None:
            return self._fasterpam_native(maxiter)
        n, C = self.n, self.C
        rl = self.removal_loss()
        lastswap, swaps, it = n, 0, 0
        converged = False
        par = self.comm.Get_size() > 1
        terms, correct = self._candidate_terms()
        # where the time goes (the record's swap_* metrics): the passes over the rank's points,
        # the waits for the block reductions (communication and the ranks' imbalance), the
        # swaps (their updates of the rest of a block included; one reduction each); blocks
        # per sweep, candidates in the passes
        st = {"compute_s": 0.0, "wait_s": 0.0, "swap_update_s": 0.0, "blocks": 0,
              "candidates": 0}
        per_sweep: list[int] = []
        cpu0 = time.process_time()
        while it < maxiter:
            it += 1
            before_swaps, before_loss = swaps, self.loss
            blocks_before = st["blocks"]
            j, B = 0, B0
            prog = progress(n, f"fasterpam sweep {it}", self.comm)
            while j < n and j != lastswap:
                prog.set(j, swaps=swaps, loss=f"{self.loss:.8g}")
                end = lastswap if lastswap > j else n
                j1 = min(end, j + B, j + C)
                t0 = time.perf_counter()
                local = terms(j, j1, end)  # this rank's terms, kept for the updates
                t1 = time.perf_counter()
                part = self.allsum(local.copy()) if par else local  # (in place)
                st["compute_s"] += t1 - t0
                st["wait_s"] += time.perf_counter() - t1
                st["blocks"] += 1
                st["candidates"] += j1 - j
                B = min(2 * B, C)
                while True:  # the first improving candidate of [j, j1), again after a swap
                    m, v = self._cand_values(part, rl, np.arange(j, j1))
                    hit = np.flatnonzero(v < 0)
                    if not hit.size:
                        j = j1
                        break
                    t = int(hit[0])
                    c = j + t
                    swaps += 1
                    lastswap = c
                    B = B0
                    t_sw = time.perf_counter()
                    old = (self.near_i.copy(), self.near_d.copy(), self.seco_d.copy())
                    self._swap_local(int(m[t]), c)
                    j = c + 1
                    rest = local[t + 1:]
                    if rest.shape[0]:
                        rest = correct(j, j1, rest, old)
                    rl, part = self._removal_with(rest)
                    local = rest
                    st["swap_update_s"] += time.perf_counter() - t_sw
                    if j >= j1:
                        break
            prog.close()
            per_sweep.append(st["blocks"] - blocks_before)
            if swaps == before_swaps or self.loss >= before_loss:
                converged = True
                break
        res = Result(self.med.copy(), self.loss, swaps, it, converged)
        # reductions: one per candidate block and one per swap (0 on one rank)
        res.extra = {"swap_loop": "blocked", "swap_blocks": st["blocks"],
                     "swap_blocks_per_sweep": per_sweep,
                     "swap_candidates": st["candidates"],
                     "swap_reductions": (st["blocks"] + swaps) if par else 0,
                     "swap_compute_s": st["compute_s"], "swap_wait_s": st["wait_s"],
                     "swap_update_s": st["swap_update_s"],
                     # this rank's CPU seconds in the SWAP (steadier than wall time on a
                     # shared host)
                     "swap_cpu_s": time.process_time() - cpu0}
        return res

    def _removal_with(self, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """After a swap: the removal losses, the loss (into self.loss) and the sum over ranks
        of `rest` (a block's remaining terms), in one reduction."""
        k = self.k
        v = np.empty(k + 1 + rest.size)
        v[:k] = np.bincount(self.near_i, weights=self.seco_d - self.near_d, minlength=k)
        v[k] = float(self.near_d.sum())
        v[k + 1:] = rest.ravel()
        v = self.allsum(v)
        self.loss = float(v[k])
        return v[:k].copy(), v[k + 1:].reshape(rest.shape)

    def _candidate_terms(self):
        """``(terms, correct)``: ``terms(j0, j1, end)`` is this rank's ΔTD terms of candidates
        [j0, j1) (a (j1 - j0) x (k + 1) float64 array, FastPAM1's; ``end`` the end of the
        sweep); ``correct(j0, j1, rest, old)`` the terms ``rest`` of [j0, j1) after a swap
        that changed (near_i, near_d, seco_d) from ``old``.

        With the matrix in memory and the native back end, the candidates' columns are
        gathered a slab at a time (SLAB_BYTES; a row's entries read as one contiguous run, and
        the slab stays valid across swaps: D does not change), each candidate's terms summed
        over the points closer to it than to their second medoid only, and a swap's update
        touches only the points it changed; else the back end's tile kernel, evaluated again
        after a swap."""
        from .oracle import MatrixOracle

        o, k = self.o, self.k

        def tile_terms(j0: int, j1: int, end: int = 0) -> np.ndarray:
            return np.ascontiguousarray(self.K.fastpam_delta(
                o.tile(j0, j1), self.near_i, self.near_d, self.seco_d, k), dtype=np.float64)

        if not (getattr(self.K, "__name__", "").endswith(".native") and isinstance(o, MatrixOracle)
                and isinstance(o.D, np.ndarray) and o.n_local > 0):
            return tile_terms, lambda j0, j1, rest, old: tile_terms(j0, j1)
        from hpc import _core

        sw = _core.kmedoids_swap
        width = max(B0, SLAB_BYTES // (o.D.dtype.itemsize * o.n_local))
        slab: list = [0, 0, None]  # first and end column, the gathered columns

        def cols(j0: int, j1: int, end: int) -> np.ndarray:
            if not (slab[0] <= j0 and j1 <= slab[1]):
                s1 = max(j1, min(end, j0 + width))
                slab[:] = [j0, s1, sw.gather(o.D, j0, s1)]
            return slab[2][j0 - slab[0]:j1 - slab[0]]

        def terms(j0: int, j1: int, end: int) -> np.ndarray:
            return sw.fasterpam_partials(cols(j0, j1, end), self.near_i, self.near_d,
                                         self.seco_d, k)

        def correct(j0: int, j1: int, rest: np.ndarray, old) -> np.ndarray:
            oi, od, os_ = old
            S = np.flatnonzero((oi != self.near_i) | (od != self.near_d) | (os_ != self.seco_d))
            if S.size:
                rest = np.ascontiguousarray(rest)
                sw.fasterpam_correct(cols(j0, j1, j1), S, oi, od, os_, self.near_i,
                                     self.near_d, self.seco_d, rest)
            return rest

        return terms, correct

    def native_sweeps(self, name: str, maxiter: int, sweep: Callable[[int, int, int], tuple],
                      show_loss: bool = False) -> tuple[int, int, bool]:
        """Drive a native SWAP sweep (FasterPAM's or FasterMSC's, state updated in place) to
        convergence: ``sweep(j, lastswap, budget)`` scans candidates from j for about
        NATIVE_WORK distances and returns (next j, lastswap, swaps, loss); the progress line
        is updated between calls. Returns (swaps, sweeps, converged)."""
        n = self.n
        lastswap, swaps, it = n, 0, 0
        budget = max(1, NATIVE_WORK // n)
        while it < maxiter:
            it += 1
            before_swaps, before_loss = swaps, self.loss
            j = 0
            prog = progress(n, f"{name} sweep {it}", self.comm)
            while j < n and j != lastswap:
                if show_loss:
                    prog.set(j, swaps=swaps, loss=f"{self.loss:.8g}")
                else:
                    prog.set(j, swaps=swaps)
                j, lastswap, s, self.loss = sweep(j, lastswap, budget)
                swaps += s
            prog.close()
            if swaps == before_swaps or self.loss >= before_loss:
                return swaps, it, True
        return swaps, it, False

    def _fasterpam_native(self, maxiter: int) -> Result:
        """FasterPAM's sweeps in hpc._core.kmedoids_swap, through :meth:`native_sweeps`."""
        sw = self.native_loop()
        cpu0 = time.process_time()
        rl = self.removal_loss()
        swaps, it, converged = self.native_sweeps(
            "fasterpam", maxiter, lambda j, last, budget: sw.fasterpam_sweep(
                self.o.D, self.DM, self.med, self.is_med, rl, self.near_i, self.seco_i,
                self.near_d, self.seco_d, self.loss, j, last, budget, NATIVE_PAR_ROWS),
            show_loss=True)
        res = Result(self.med.copy(), self.loss, swaps, it, converged)
        res.extra = {"swap_loop": "native", "swap_cpu_s": time.process_time() - cpu0}
        return res

    def clarans_local(self, rng: np.random.Generator, maxneighbor: int) -> tuple[int, int]:
        """FastCLARANS from the current medoids: random non-medoid candidates, each evaluated
        for all k slots at once; stop after maxneighbor non-improving candidates in a row.
        Candidates are drawn and evaluated in blocks (one reduction per block); the first
        improving one is taken. Returns (swaps, candidates evaluated)."""
        n = self.n
        rl = self.removal_loss()
        counter = swaps = evaluated = 0
        B = B0
        while counter < maxneighbor:
            cand = rng.integers(0, n, size=min(B, self.C))
            m, v = self._cand_values(self._fast_tile(self.o.cols(cand)), rl, cand)
            valid = ~self.is_med[cand]
            hit = np.flatnonzero(v < 0)
            upto = int(hit[0]) if hit.size else cand.size
            seen = int(valid[:upto].sum())
            if counter + seen >= maxneighbor:  # stopped before reaching the improving one
                evaluated += maxneighbor - counter
                break
            evaluated += seen
            if hit.size:
                t = int(hit[0])
                evaluated += 1
                self.swap(int(m[t]), int(cand[t]))
                rl = self.removal_loss()
                swaps += 1
                counter, B = 0, B0
            else:
                counter += seen
                B = min(2 * B, self.C)
        return swaps, evaluated

    # -- alternating (Voronoi iteration) ------------------------------------------------
    def _labels_all(self) -> np.ndarray:
        """Every point's cluster, on every rank (one Allgatherv)."""
        mine = np.ascontiguousarray(self.near_i, dtype=np.int64)
        p = self.comm.Get_size()
        if p == 1:
            return mine.copy()
        counts = np.array(self.comm.allgather(mine.size), dtype=np.int64)
        out = np.empty(self.n, dtype=np.int64)
        self.comm.Allgatherv(mine, [out, counts, np.concatenate([[0], np.cumsum(counts)[:-1]]),
                                    MPI.INT64_T])
        return out

    def alternating(self, maxiter: int) -> Result:
        """Alternating k-medoids (the k-means-style Voronoi iteration; "Alternate" in facility
        location, Park & Jun 2009): each medoid becomes the member of its cluster with the
        least total distance to the cluster, then every point is reassigned; until no medoid
        changes. As the `kmedoids` package's ``alternating``: medoid slots in order, the
        first member of least sum, the old medoid kept on ties. One pass over the matrix per
        iteration (a one-hot product per tile, one reduction per tile)."""
        n, C, k = self.n, self.C, self.k
        it = swaps = 0
        onehot = np.zeros((self.o.n_local, k))
        while it < maxiter:
            it += 1
            lab = self._labels_all()
            onehot[:] = 0.0
            onehot[np.arange(self.o.n_local), self.near_i] = 1.0
            own = np.empty(n)  # per point: the sum of its distances to its own cluster
            prog = progress(n, f"alternating {it}", self.comm)
            for c0 in range(0, n, C):
                c1 = min(n, c0 + C)
                prog.set(c0, loss=f"{self.loss:.8g}")
                T = np.asarray(self.K.to_host(self.o.tile(c0, c1)), dtype=np.float64)
                part = self.allsum(T.T @ onehot)
                own[c0:c1] = part[np.arange(c1 - c0), lab[c0:c1]]
            prog.close()
            meds = self.med.copy()
            for m in range(k):
                first = int(meds[m])
                members = np.flatnonzero(lab == m)
                members = members[members != first]
                if members.size:
                    j = int(members[np.argmin(own[members])])
                    if own[j] < own[first]:
                        meds[m] = j
            changed = int((meds != self.med).sum())
            if not changed:
                break
            swaps += changed
            self.assign(meds)
        return Result(self.med.copy(), self.loss, swaps, it, True)

    # -- checks -------------------------------------------------------------------------
    def min_delta(self, K=None) -> float:
        """The most negative ΔTD of any single swap (>= 0 at a local optimum); a full pass."""
        K = K or self.K
        n, C, k = self.n, self.C, self.k
        if k == 1:
            s = np.empty(n)
            for c0 in range(0, n, C):
                c1 = min(n, c0 + C)
                s[c0:c1] = self.allsum(K.colsum(self.o.tile(c0, c1)))
            return float(s.min() - self.loss)
        rl = self.removal_loss()
        best = np.inf
        for c0 in range(0, n, C):
            c1 = min(n, c0 + C)
            part = self.allsum(K.fastpam_delta(self.o.tile(c0, c1), self.near_i, self.near_d,
                                               self.seco_d, k))
            _, v = self._cand_values(part, rl, np.arange(c0, c1))
            best = min(best, float(v.min()))
        return best if np.isfinite(best) else 0.0

    def medoid_silhouette(self) -> float:
        """Mean over points of 1 - near/second (0 where both are 0; 0 for k = 1)."""
        if self.k == 1:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(self.seco_d > 0, 1.0 - self.near_d / self.seco_d, 0.0)
        return self.total(float(s.sum())) / self.n


def run(solver: Solver, method: str, init: str, rng: np.random.Generator, maxiter: int,
        samples: int = 5, sample_size: int | None = None, restarts: int = 2,
        neighbors: float = 0.1, comm_self=None, keep: bool = True) -> Result:
    """Initialise and optimise with one method; times BUILD and SWAP separately."""
    if method == "clara":
        return clara(solver, init, rng, maxiter, samples, sample_size, comm_self, keep)
    t0 = time.perf_counter()
    if method == "clarans":
        return clarans(solver, init, rng, restarts, neighbors)
    meds = {"build": solver.init_build, "lab": lambda: solver.init_lab(rng),
            "random": lambda: solver.init_random(rng)}[init]()
    res = run_from(solver, method, meds, maxiter)
    res.build_s = time.perf_counter() - t0 - res.swap_s  # init + assignment
    return res


def run_from(solver: Solver, method: str, meds, maxiter: int) -> Result:
    """A SWAP method from given initial medoids (slot order kept)."""
    t0 = time.perf_counter()
    meds = np.asarray(meds, dtype=np.int64)
    solver.assign(meds)
    t1 = time.perf_counter()
    if solver.k == 1 and method != "alternating":
        res = solver.one_medoid(meds)
    elif method in ("pam", "fastpam1"):
        res = solver.pam_swap(maxiter, pam=method == "pam")
    elif method == "fastpam2":
        res = solver.fastpam2(maxiter)
    elif method == "fasterpam":
        res = solver.fasterpam(maxiter)
    elif method == "alternating":
        res = solver.alternating(maxiter)
    else:
        raise ValueError(method)
    res.init_medoids = meds
    res.build_s, res.swap_s = t1 - t0, time.perf_counter() - t1
    return res


def clarans(solver: Solver, init: str, rng, restarts: int, neighbors: float) -> Result:
    """FastCLARANS: `restarts` local searches (the first from --init, the others random)."""
    t0 = time.perf_counter()
    n, k = solver.n, solver.k
    maxneighbor = max(1, int(math.ceil(neighbors * (n - k))))
    best = None
    swaps = evaluated = 0
    build_s = 0.0
    first = None
    for r in range(restarts):
        ts = time.perf_counter()
        if r == 0 and init == "build":
            meds = solver.init_build()
        elif r == 0 and init == "lab":
            meds = solver.init_lab(rng)
        else:
            meds = solver.init_random(rng)
        first = meds if first is None else first
        solver.assign(meds)
        build_s += time.perf_counter() - ts
        if k < n and k > 1:
            s, e = solver.clarans_local(rng, maxneighbor)
            swaps += s
            evaluated += e
        elif k == 1:
            solver.one_medoid(meds)
        if best is None or solver.loss < best[0]:
            best = (solver.loss, solver.med.copy())
    solver.assign(best[1])
    t = time.perf_counter() - t0
    return Result(best[1], solver.loss, swaps, restarts, True, first, build_s, t - build_s,
                  {"neighbors_evaluated": evaluated, "maxneighbor": maxneighbor})


def clara(solver: Solver, init: str, rng, maxiter: int, samples: int,
          sample_size: int | None, comm_self, keep: bool = True) -> Result:
    """FastCLARA: FasterPAM on `samples` random samples of 80 + 4k points, every sample's
    medoids evaluated on all points and the best kept.

    keep (ELKI's default): every sample after the first holds the best medoids so far, and
    FasterPAM starts from them, so each sample can only improve on them; the samples are then
    sequential, each solved on every rank alike (a sample is small) and evaluated in parallel.
    Without keep, independent samples from --init, spread over the ranks. Either way the
    result does not depend on the rank count."""
    if keep:
        return _clara_keep(solver, init, rng, maxiter, samples, sample_size, comm_self)
    from .oracle import MatrixOracle

    t0 = time.perf_counter()
    n, k, comm = solver.n, solver.k, solver.comm
    size, rank = comm.Get_size(), comm.Get_rank()
    m = min(n, sample_size or 80 + 4 * k)
    draws = [np.sort(rng.choice(n, size=m, replace=False)) for _ in range(samples)]
    seeds = rng.integers(0, 2**63 - 1, size=samples)
    found: dict[int, np.ndarray] = {}
    swaps = 0
    for s, S in enumerate(draws):
        sub = solver.o.submatrix(S, S)  # collective when rows are not replicated
        if s % size != rank:
            continue
        inner = Solver(MatrixOracle(sub, m, 0, comm_self, solver.K, solver.o.metric), comm_self,
                       solver.K, k)
        r = run(inner, "fasterpam", init, np.random.default_rng(int(seeds[s])), maxiter)
        swaps += r.swaps
        found[s] = S[r.medoids]
    allfound: dict[int, np.ndarray] = {}
    for d in comm.allgather(found):
        allfound.update(d)
    swaps = int(comm.allreduce(swaps))
    t1 = time.perf_counter()
    losses = [solver.evaluate(allfound[s]) for s in range(samples)]
    best = int(np.argmin(losses))
    solver.assign(allfound[best])
    return Result(allfound[best], solver.loss, swaps, samples, True, allfound[0], t1 - t0,
                  time.perf_counter() - t1, {"sample_size": m, "sample_losses": losses})


def _clara_keep(solver: Solver, init: str, rng, maxiter: int, samples: int,
                sample_size: int | None, comm_self) -> Result:
    """FastCLARA keeping the best medoids in the next sample (see :func:`clara`)."""
    from .oracle import MatrixOracle

    t0 = time.perf_counter()
    n, k = solver.n, solver.k
    m = min(n, sample_size or 80 + 4 * k)
    best_meds: np.ndarray | None = None
    best_loss = math.inf
    first = None
    swaps = 0
    losses: list[float] = []
    eval_s = 0.0
    for _ in range(samples):
        seed = int(rng.integers(0, 2**63 - 1))
        if best_meds is None:
            S = np.sort(rng.choice(n, size=m, replace=False))
        else:
            pool = np.setdiff1d(np.arange(n), best_meds, assume_unique=True)
            S = np.sort(np.concatenate([best_meds, rng.choice(pool, size=m - k, replace=False)]))
        sub = solver.o.submatrix(S, S)  # collective: the same sample on every rank
        inner = Solver(MatrixOracle(sub, m, 0, comm_self, solver.K, solver.o.metric),
                       comm_self, solver.K, k)
        if best_meds is None:
            r = run(inner, "fasterpam", init, np.random.default_rng(seed), maxiter)
        else:  # start from the kept medoids, in their slot order
            r = run_from(inner, "fasterpam", np.searchsorted(S, best_meds), maxiter)
        swaps += r.swaps
        meds = S[r.medoids]
        first = meds if first is None else first
        te = time.perf_counter()
        loss = solver.evaluate(meds)
        eval_s += time.perf_counter() - te
        losses.append(loss)
        if loss < best_loss:
            best_loss, best_meds = loss, meds
    te = time.perf_counter()
    solver.assign(best_meds)
    eval_s += time.perf_counter() - te
    t = time.perf_counter() - t0
    return Result(best_meds, solver.loss, swaps, samples, True, first, t - eval_s, eval_s,
                  {"sample_size": m, "sample_losses": losses, "keep_medoids": True})
