"""Medoid silhouette clustering on block-distributed points: FastMSC, FasterMSC, DynMSC and
PAMMEDSIL (Lenssen & Schubert, SISAP 2022 and Information Systems 120, 2024; Van der Laan,
Pollard & Bryan 2003).

The medoid silhouette of a point is 1 - a/b, a and b the distances to its nearest and second
nearest medoid (a/b taken as 0 when a or b is 0); the methods maximise its mean, i.e. minimise
L = sum_o a_o/b_o. Each rank keeps, for its own points, the three nearest medoids (the change
of L when a medoid is removed needs the third); every change of L is a sum over points, summed
on each rank and reduced, one reduction per block of candidates, as in algorithms.py.

The semantics are those of the `kmedoids` package (the reference the tests hold these to): the
same initial assignment and tie order, the same update of the three nearest after a swap, the
special case k = 2 (no third medoid: the loss of a swap is summed directly), FastMSC's best swap
(first candidate with the largest gain, first medoid slot among equals), FasterMSC's eager sweep
(first improving candidate, stop after a full pass without a swap), DynMSC's descent from k_max
to k_min removing the medoid of least removal gain, and k = 1 (the medoid of least total
distance; its ``loss`` is that total distance, as in the package).
"""
from __future__ import annotations

import time

import numpy as np

from . import algorithms
from .algorithms import B0, Result, Solver
from .loops import progress

MSC_METHODS = ("fastmsc", "fastermsc", "pammedsil", "dynmsc")


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b elementwise, 0 where a or b is 0 (the package's convention for the loss)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    zero = (a == 0) | (b == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(zero, 0.0, a / np.where(zero, 1.0, b))


class MSCSolver(Solver):
    """The k-medoids state plus the third nearest medoid, and the medoid-silhouette moves.

    ``loss`` here is L = sum of near/second over all points (smaller is better); the result's
    loss is the average medoid silhouette 1 - L/n (larger is better)."""

    #: PAMMEDSIL keeps the general three-nearest state at k = 2; the others the package's
    #: special form (distances by slot, ties to slot 1)
    general_k2 = False

    @property
    def slot2(self) -> bool:
        return self.k == 2 and not self.general_k2

    # -- state --------------------------------------------------------------------------
    def assign(self, meds) -> float:
        """Nearest, second and third nearest medoid of every local point (the package's
        initial assignment: a point that is a medoid is nearest to itself)."""
        meds = np.asarray(meds, dtype=np.int64).copy()
        self.med = meds
        self.is_med = np.zeros(self.n, dtype=bool)
        self.is_med[meds] = True
        k, nl = self.k, self.o.n_local
        self.DM = np.ascontiguousarray(self.o.cols(meds))
        ni = np.zeros(nl, dtype=np.int64)
        nd = self.DM[:, 0].copy() if k else np.zeros(nl)
        si = np.full(nl, -1, dtype=np.int64)
        sd = np.zeros(nl)
        ti = np.full(nl, -1, dtype=np.int64)
        td = np.zeros(nl)
        for m in range(1, k):
            d = self.DM[:, m]
            c1 = (d < nd) | (self.rows == meds[m])
            c2 = ~c1 & ((si < 0) | (d < sd))
            c3 = ~c1 & ~c2 & ((ti < 0) | (d < td))
            ti = np.where(c1 | c2, si, np.where(c3, m, ti))
            td = np.where(c1 | c2, sd, np.where(c3, d, td))
            si = np.where(c1, ni, np.where(c2, m, si))
            sd = np.where(c1, nd, np.where(c2, d, sd))
            ni = np.where(c1, m, ni)
            nd = np.where(c1, d, nd)
        self.near_i, self.near_d, self.seco_i, self.seco_d = ni, nd, si, sd
        self.third_i, self.third_d = ti, td
        if self.slot2:  # the package keeps d(o, m0), d(o, m1) by slot and the label (ties: slot 1)
            self.near_i = np.where(self.DM[:, 0] < self.DM[:, 1], 0, 1).astype(np.int64)
        self.loss = self._msc_loss()
        return self.loss

    def _msc_loss(self) -> float:
        if self.slot2:
            d0, d1 = self.DM[:, 0], self.DM[:, 1]
            part = np.where(self.near_i == 0, ratio(d0, d1), ratio(d1, d0))
        else:
            part = ratio(self.near_d, self.seco_d)
        return self.total(float(part.sum()))

    def msc_removal(self) -> np.ndarray:
        """Gain of L when each medoid is removed (<= 0; the package's removal loss)."""
        ns = ratio(self.near_d, self.seco_d)
        a = ns - ratio(self.seco_d, self.third_d)
        b = ns - ratio(self.near_d, self.third_d)
        return self.allsum(np.bincount(self.near_i, weights=a, minlength=self.k)
                           + np.bincount(self.seco_i, weights=b, minlength=self.k))

    def _third(self, sel: np.ndarray, b: int, doj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Third nearest of points `sel` (near and second already updated): the nearest medoid
        other than those two and b, if closer than (b, doj); ties keep b."""
        M = self.DM[sel].copy()
        r = np.arange(sel.size)
        M[r, self.near_i[sel]] = np.inf
        M[r, self.seco_i[sel]] = np.inf
        M[:, b] = np.inf
        i = np.argmin(M, axis=1)
        d = M[r, i]
        better = d < doj
        return np.where(better, i, b), np.where(better, d, doj)

    def swap(self, b: int, j: int) -> float:
        """Medoid slot b becomes point j; the three nearest updated as the package does."""
        self.is_med[self.med[b]] = False
        self.med[b] = j
        self.is_med[j] = True
        doj = self.o.cols(np.array([j]))[:, 0]
        self.DM[:, b] = doj
        if self.slot2:
            other = 1 - b
            do = self.DM[:, other]
            isj = self.rows == j
            self.DM[isj, b] = 0.0
            to_b = isj | (doj < do) | ((doj == do) & (self.near_i == b))
            self.near_i = np.where(to_b, b, other).astype(np.int64)
            self.loss = self._msc_loss()
            return self.loss
        ni, nd, si, sd, ti, td = (self.near_i, self.near_d, self.seco_i, self.seco_d,
                                  self.third_i, self.third_d)
        isj = self.rows == j
        t3 = (ti < 0) | (doj < td)
        A = ~isj & (ni == b)
        B = ~isj & ~A & (si == b)
        C = ~isj & ~A & ~B
        A1 = A & (doj < sd)
        A2 = A & ~A1 & t3
        A3 = A & ~A1 & ~A2
        B1 = B & (doj < nd)
        B2 = B & ~B1 & t3
        B3 = B & ~B1 & ~B2
        C1 = C & (doj < nd)
        C2 = C & ~C1 & (doj < sd)
        C3 = C & ~C1 & ~C2 & t3
        C4 = C & ~C1 & ~C2 & ~C3 & (ti == b)
        J1 = isj & (ni != b)
        J2 = J1 & (si != b)
        n_i, n_d, s_i, s_d, t_i, t_d = ni.copy(), nd.copy(), si.copy(), sd.copy(), ti.copy(), td.copy()
        # point j itself: nearest to itself
        t_i[J2], t_d[J2] = si[J2], sd[J2]
        s_i[J1], s_d[J1] = ni[J1], nd[J1]
        n_i[isj], n_d[isj] = b, 0.0
        # nearest medoid replaced
        n_d[A1] = doj[A1]
        n_i[A2 | A3], n_d[A2 | A3] = si[A2 | A3], sd[A2 | A3]
        s_i[A2], s_d[A2] = b, doj[A2]
        s_i[A3], s_d[A3] = ti[A3], td[A3]
        # second nearest replaced
        s_i[B1], s_d[B1] = ni[B1], nd[B1]
        n_i[B1], n_d[B1] = b, doj[B1]
        s_d[B2] = doj[B2]
        s_i[B3], s_d[B3] = ti[B3], td[B3]
        # neither replaced
        t_i[C1 | C2], t_d[C1 | C2] = si[C1 | C2], sd[C1 | C2]
        s_i[C1], s_d[C1] = ni[C1], nd[C1]
        n_i[C1], n_d[C1] = b, doj[C1]
        s_i[C2], s_d[C2] = b, doj[C2]
        t_i[C3], t_d[C3] = b, doj[C3]
        self.near_i, self.near_d, self.seco_i, self.seco_d = n_i, n_d, s_i, s_d
        fix = np.flatnonzero(A3 | B3 | C4)
        if fix.size:
            t_i[fix], t_d[fix] = self._third(fix, b, doj[fix])
        self.third_i, self.third_d = t_i, t_d
        self.loss = self._msc_loss()
        return self.loss

    def remove(self, b: int) -> float:
        """DynMSC: drop medoid slot b (the last slot moves into b), update the three nearest."""
        k = self.k
        last = k - 1
        self.is_med[self.med[b]] = False
        self.med[b] = self.med[last]
        self.med = self.med[:last].copy()
        self.DM[:, b] = self.DM[:, last]
        self.DM = np.ascontiguousarray(self.DM[:, :last])
        ni, si, ti = self.near_i.copy(), self.seco_i.copy(), self.third_i.copy()
        nd, sd, td = self.near_d.copy(), self.seco_d.copy(), self.third_d.copy()
        gone_n, gone_s, gone_t = ni == b, (ni != b) & (si == b), (ni != b) & (si != b) & (ti == b)
        for arr in (ni, si, ti):
            arr[arr == last] = b
        # nearest gone: second and third move up; second gone: third moves up
        ni[gone_n], nd[gone_n] = si[gone_n], sd[gone_n]
        si[gone_n | gone_s], sd[gone_n | gone_s] = ti[gone_n | gone_s], td[gone_n | gone_s]
        self.k = last
        self.near_i, self.near_d, self.seco_i, self.seco_d = ni, nd, si, sd
        fix = np.flatnonzero(gone_n | gone_s | gone_t)
        if fix.size and last >= 3:
            # The package's scan (kmedoids 0.5.5): slots in order, skipping near and second;
            # a slot replaces the current third if closer, or while the current is slot b,
            # which marks "none yet" -- so the medoid now in slot b is kept only when no
            # eligible slot follows it. Not always the true third nearest, but the same
            # swaps, removals and loss as the package.
            cur_i = np.full(fix.size, b, dtype=np.int64)
            cur_d = np.zeros(fix.size)
            n_f, s_f = ni[fix], si[fix]
            for m in range(last):
                d = self.DM[fix, m]
                upd = (m != n_f) & (m != s_f) & ((cur_i == b) | (d < cur_d))
                cur_i = np.where(upd, m, cur_i)
                cur_d = np.where(upd, d, cur_d)
            ti[fix], td[fix] = cur_i, cur_d
        self.third_i, self.third_d = ti, td
        if self.slot2:  # back to the slot form of k = 2
            self.near_i = np.where(self.DM[:, 0] < self.DM[:, 1], 0, 1).astype(np.int64)
        self.loss = self._msc_loss()
        return self.loss

    # -- gains over a tile of candidates ------------------------------------------------
    def _gain_tile(self, T, ids: np.ndarray, rl: np.ndarray | None):
        """Per candidate: (best slot b, gain of L) for k >= 3, or (b, new L) for k = 2;
        medoids get gain -inf (new L +inf)."""
        k = self.k
        if self.slot2:
            part = self.allsum(self.K.msc2_loss(T, self.DM[:, 0], self.DM[:, 1]))
            b = np.where(part[:, 1] < part[:, 0], 1, 0)
            v = part[np.arange(b.size), b]
            v[self.is_med[ids]] = np.inf
            return b, v
        part = self.allsum(self.K.msc_delta(T, self.near_i, self.seco_i, self.near_d,
                                            self.seco_d, self.third_d, k))
        ploss = rl[None, :] + part[:, :k]
        b = np.argmax(ploss, axis=1)  # the first slot of the largest gain
        v = ploss[np.arange(b.size), b] + part[:, k]
        v[self.is_med[ids]] = -np.inf
        return b, v

    def _improves(self, v: np.ndarray) -> np.ndarray:
        return v < self.loss if self.slot2 else v > 0

    # -- the methods --------------------------------------------------------------------
    def fastmsc(self, maxiter: int, pammedsil: bool = False) -> Result:
        """FastMSC (or PAMMEDSIL, the same swaps found O(k^2) slower): the best swap per
        iteration; stop when none improves or the loss does not fall."""
        n, C = self.n, self.C
        swaps = it = 0
        while it < maxiter:
            it += 1
            rl = self.msc_removal() if self.k > 2 else None
            best_v, best_b, best_j = (np.inf if self.slot2 else 0.0), -1, -1
            prog = progress(n, f"{'pammedsil' if pammedsil else 'fastmsc'} {it}", self.comm)
            for c0 in range(0, n, C):
                c1 = min(n, c0 + C)
                prog.set(c0, swaps=swaps)
                ids = np.arange(c0, c1)
                T = self.o.tile(c0, c1)
                b, v = self._pam_tile(T, ids) if pammedsil else self._gain_tile(T, ids, rl)
                if self.slot2:
                    t = int(np.argmin(v))
                    if v[t] < best_v:
                        best_v, best_b, best_j = float(v[t]), int(b[t]), c0 + t
                else:
                    t = int(np.argmax(v))
                    if v[t] > best_v:
                        best_v, best_b, best_j = float(v[t]), int(b[t]), c0 + t
            prog.close()
            if best_j < 0 or not (best_v < self.loss if self.slot2 else best_v > 0):
                break
            swaps += 1
            before = self.loss
            if not self.swap(best_b, best_j) < before:
                break  # numerically stuck
        return Result(self.med.copy(), self.loss, swaps, it, True)

    def _pam_tile(self, T, ids: np.ndarray):
        """PAMMEDSIL's evaluation: every (medoid, candidate) pair in its own pass over the
        points (the candidate's own point skipped: its ratio term vanishes)."""
        own = (ids >= self.o.row0) & (ids < self.o.row0 + self.o.n_local)
        skip = np.where(own, ids - self.o.row0, -1).astype(np.int64)
        t = np.where(self.third_i < 0, np.inf, self.third_d)
        part = self.K.pammedsil_gain(T, self.near_i, self.seco_i, self.near_d, self.seco_d, t,
                                     self.k, skip)
        r = skip[own]
        part[own] += ratio(self.near_d[r], self.seco_d[r])[:, None]
        part = self.allsum(part)
        best = np.maximum(part.max(axis=1), 0.0)  # the package starts its search at gain 0
        b = np.argmax(part, axis=1)
        best[self.is_med[ids]] = -np.inf
        return b, best

    def fastermsc(self, maxiter: int) -> Result:
        """FasterMSC: eager swaps (the first improving candidate in index order); a pass from
        0 to the last swap without a swap ends it. Speculative blocks as FasterPAM's; on one
        rank with the matrix (native back end) the sweep runs natively, the same swaps."""
        if self.native_loop() is not None and (self.k > 2 or self.slot2):
            return self._fastermsc_native(maxiter)
        n, C = self.n, self.C
        lastswap, swaps, it = n, 0, 0
        rl = self.msc_removal() if self.k > 2 else None
        while it < maxiter:
            it += 1
            before_swaps, before_loss = swaps, self.loss
            j, B = 0, B0
            prog = progress(n, f"fastermsc sweep {it}", self.comm)
            while j < n and j != lastswap:
                prog.set(j, swaps=swaps)
                end = lastswap if lastswap > j else n
                j1 = min(end, j + B, j + C)
                ids = np.arange(j, j1)
                b, v = self._gain_tile(self.o.tile(j, j1), ids, rl)
                hit = np.flatnonzero(self._improves(v))
                if hit.size:
                    t = int(hit[0])
                    swaps += 1
                    lastswap = j + t
                    self.swap(int(b[t]), j + t)
                    rl = self.msc_removal() if self.k > 2 else None
                    j, B = j + t + 1, B0
                else:
                    j, B = j1, min(2 * B, C)
            prog.close()
            if swaps == before_swaps or self.loss >= before_loss:
                break
        return Result(self.med.copy(), self.loss, swaps, it, True)

    def _fastermsc_native(self, maxiter: int) -> Result:
        """FasterMSC's sweeps in hpc._core.kmedoids_swap, through :meth:`native_sweeps`."""
        sw = self.native_loop()
        rl = self.msc_removal() if self.k > 2 else np.zeros(self.k)
        swaps, it, _ = self.native_sweeps(
            "fastermsc", maxiter, lambda j, last, budget: sw.fastermsc_sweep(
                self.o.D, self.DM, self.med, self.is_med, rl, self.near_i, self.seco_i,
                self.third_i, self.near_d, self.seco_d, self.third_d, self.loss, j, last,
                budget, self.slot2, algorithms.NATIVE_PAR_ROWS))
        return Result(self.med.copy(), self.loss, swaps, it, True)

    def max_gain(self) -> float:
        """The largest decrease of L by any single swap (<= 0 at a local optimum); a full
        pass over the candidates."""
        n, C = self.n, self.C
        rl = self.msc_removal() if self.k > 2 else None
        best = -np.inf
        for c0 in range(0, n, C):
            c1 = min(n, c0 + C)
            ids = np.arange(c0, c1)
            if self.k == 2:  # the general form at k = 2: new losses, summed directly
                d0, d1 = self.DM[:, 0], self.DM[:, 1]
                part = self.allsum(self.K.msc2_loss(self.o.tile(c0, c1), d0, d1))
                v = self.loss - part.min(axis=1)
                v[self.is_med[ids]] = -np.inf
            else:
                _, v = self._gain_tile(self.o.tile(c0, c1), ids, rl)
            best = max(best, float(v.max()))
        return best if np.isfinite(best) else 0.0

    def one_medoid_td(self, meds) -> Result:
        """k = 1: the medoid of least total distance; the loss is that total distance (the
        package's, for every method)."""
        res = self.one_medoid(meds)
        res.loss = self.total(float(self.near_d.sum()))
        return res

    def silhouette_value(self) -> float:
        """The average medoid silhouette 1 - L/n of the current medoids."""
        return 1.0 - self.loss / self.n


def msc_result(solver: MSCSolver, res: Result) -> Result:
    """Turn L into the reported average medoid silhouette (k = 1: the total distance)."""
    if solver.k > 1:
        res.loss = solver.silhouette_value()
    return res


def run_msc(solver: MSCSolver, method: str, meds, maxiter: int, min_k: int = 2) -> Result:
    """A medoid silhouette method from given initial medoids (slot order kept)."""
    t0 = time.perf_counter()
    meds = np.asarray(meds, dtype=np.int64)
    if method == "dynmsc":
        res = dynmsc(solver, meds, maxiter, min_k)
    else:
        solver.general_k2 = method == "pammedsil"
        solver.assign(meds)
        if solver.k == 1:
            res = solver.one_medoid_td(meds)
        elif method == "fastermsc":
            res = msc_result(solver, solver.fastermsc(maxiter))
        else:
            res = msc_result(solver, solver.fastmsc(maxiter, pammedsil=method == "pammedsil"))
    res.init_medoids = meds
    res.swap_s = time.perf_counter() - t0
    return res


def dynmsc(solver: MSCSolver, meds: np.ndarray, maxiter: int, min_k: int) -> Result:
    """DynMSC: FasterMSC at k_max, then remove the medoid whose removal loses least... as the
    package: the slot of the smallest removal gain, down to max(min_k, 2); the k with the
    largest average medoid silhouette is kept (its state restored at the end)."""
    k_max = solver.k
    solver.assign(meds)
    if k_max == 1:
        res = solver.one_medoid_td(meds)
        res.extra = {"k_best": 1, "silhouettes": [res.loss]}
        return res
    sils = [0.0] * (k_max - 1)  # index k - 2, as the package's losses
    best_sil, best_meds = 0.0, None
    swaps = iters = 0
    # the whole descent's progress (one FasterMSC per k; each prints its own sweeps too)
    prog = progress(k_max - max(2, min_k) + 1, "dynmsc", solver.comm, unit="k")
    while solver.k >= 3 and solver.k >= min_k:
        r = solver.fastermsc(maxiter)
        swaps += r.swaps
        iters += r.iterations
        rl = solver.msc_removal()
        sil = solver.silhouette_value()
        sils[solver.k - 2] = sil
        prog.set(k_max - solver.k + 1, k=solver.k, silhouette=f"{sil:.6f}")
        if sil > best_sil:
            best_sil, best_meds = sil, solver.med.copy()
        if solver.k - 1 < min_k:
            break
        solver.remove(int(np.argmin(rl)))
    if solver.k == 2 and min_k <= 2:
        r = solver.fastermsc(maxiter)
        swaps += r.swaps
        iters += r.iterations
        sil = solver.silhouette_value()
        sils[0] = sil
        prog.set(k_max - 1, k=2, silhouette=f"{sil:.6f}")
        if sil > best_sil:
            best_sil, best_meds = sil, solver.med.copy()
    prog.close()
    if best_meds is None:
        best_meds = solver.med.copy()
    solver.k = best_meds.size
    solver.C = solver.C
    solver.assign(best_meds)
    res = Result(best_meds, best_sil, swaps, iters, True)
    res.extra = {"k_best": int(best_meds.size), "silhouettes": sils[max(0, min_k - 2):]}
    return res
