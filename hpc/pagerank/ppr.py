"""PowerWalk personalized PageRank: random-walk fingerprints and the batched decomposition.

Semantics (the contract's, networkx's ``personalization={s: 1}``): teleport to s with
probability c = 1 - d, and a walker at a dangling vertex also returns to s. That vector is
exactly the *absorbing* PPR (dangling mass lost)

    pi_abs(s) = c * sum_t (d P)^t e_s,       P = D^-1 A with zero rows at dangling vertices,

renormalised to sum 1 (dangling returns only restart the same process, so they scale the
vector, never reshape it). Everything below works with pi_abs, which is linear in the source,
and normalises at the very end, so the convention introduces no bias.

Offline (``build_fingerprints``): R walks from every vertex u; a walk stops with probability c
at each step and is absorbed at a dangling vertex. F_u(v) = c/R * (visits of v) is an unbiased
estimate of pi_abs(u)(v). Walkers live on the rank that owns their current vertex and move
between ranks in supersteps (one all-to-all each). A walk still alive after ``max_length``
steps is credited with its remaining (at most 1) mass at the vertex where it stops; their
count is reported. Randomness is a counter-based hash of (seed, walker, step), so the index
does not depend on the number of ranks.

Online (``query``): PowerWalk's vertex-centric decomposition, all queries of a batch at once.
For T iterations every residual entry r(v, q) >= threshold is pushed: c*r goes to the
estimate, d*r/outdeg(v) to each out-neighbour (lost at a dangling vertex); entries below the
threshold stay. Linearity gives exactly

    pi_abs(s_q) = x_q + sum_w r(w, q) pi_abs(w),

and the remaining residual is combined with the fingerprints F_w ~ pi_abs(w). The normaliser
uses each fingerprint's full mass (before the top-entry truncation of the index).

Two implementations of the query: ``decompose`` + ``combine`` (SciPy sparse products on the
distributed graph, all queries as one matrix) and ``native_query`` (hpc._core.pagerank_ppr:
one query per OpenMP task over a replicated graph and index; the same arithmetic, plus the
optional ``rel`` cut of small contributions).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.core.memory import require_memory
from hpc.core.partition import block_offsets
from hpc.core.partition import exchange_by_owner as exchange

from .graphio import Graph
from .graphio import mix64 as _mix
from .solver import balanced_offsets, move_blocks

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(0xD1B54A32D192ED03)


def uniform(seed: int, walker: np.ndarray, step: int, stream: int) -> np.ndarray:
    """U[0,1) doubles from (seed, walker id, step, stream): a counter-based generator."""
    with np.errstate(over="ignore"):
        key = _mix(np.array([(int(seed) * 4 + stream) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        z = walker.astype(np.uint64) * _GOLD ^ key ^ (np.uint64(step) * _STEP)
        h = _mix(_mix(z))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def guarantee_parameters(n: int, epsilon: float, failure: float,
                         index_walks: int | None = None) -> dict:
    """Push threshold and walks per residual vertex for FORA's guarantee (Wang, Yang, Xiao,
    Wei, Yang, "FORA: Simple and effective approximate single-source personalized PageRank",
    KDD 2017): relative error ``epsilon`` for every score above delta = 1/n, for each source,
    with probability at least 1 - ``failure``.

    After the push no residual entry r(v) reaches the threshold theta, and every residual
    vertex is combined with R walks, so each walk's share r(v)/R is at most theta/R = 1/W
    with W = (2 epsilon/3 + 2) ln(2/failure) / (epsilon^2 delta): FORA's Chernoff bound on
    bounded samples then gives |pi^(t) - pi(t)| <= epsilon pi(t) whenever pi(t) >= delta.
    With an index of R walks per vertex (``index_walks``, stored in full: keep 0) theta =
    R / W; without one theta = 1/sqrt(W) (FORA's balance of push and walk work, per unit
    mass) and R = ceil(theta W).
    """
    delta = 1.0 / max(int(n), 1)
    W = (2.0 * epsilon / 3.0 + 2.0) * np.log(2.0 / failure) / (epsilon * epsilon * delta)
    if index_walks is not None:
        theta = min(1.0, index_walks / W)
        R = int(index_walks)
    else:
        theta = min(1.0, 1.0 / np.sqrt(W))
        R = int(np.ceil(theta * W))
    return {"epsilon": float(epsilon), "failure": float(failure), "delta": delta,
            "walk_budget_W": float(W), "threshold": float(theta), "walks": R,
            "bound": f"|pi^(t) - pi(t)| <= {epsilon:g} pi(t) for every t with pi(t) >= 1/{n}, "
                     f"each source with probability >= {1 - failure:g} (FORA, KDD 2017)"}


@dataclass
class Fingerprints:
    """Sparse fingerprints of some vertices owned by this rank (CSR by vertex).

    ``vertices`` (sorted global numbers) -> rows; entries ``ids`` (global) and ``vals`` (the
    estimate of pi_abs), each row sorted by value, largest first; ``mass`` is each row's
    total before truncation.
    """

    vertices: np.ndarray
    indptr: np.ndarray
    ids: np.ndarray
    vals: np.ndarray
    mass: np.ndarray
    survivors: int = 0
    walks: int = 0
    cache: dict = field(default_factory=dict)   # matrices derived for one graph partition

    def rows_of(self, v: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.vertices, v)
        ok = pos < self.vertices.size
        ok[ok] = self.vertices[pos[ok]] == v[ok]
        if not ok.all():
            raise RuntimeError("fingerprint missing for a vertex this rank owns")
        return pos


def _round_sources(g: Graph, sources_local: np.ndarray, batch: int,
                   walks: np.ndarray | None = None, unit: int = 1):
    """Split this rank's sources into rounds; every rank runs the same number of rounds.
    With ``walks`` (per source), a round holds at most ``batch`` x ``unit`` walks plus those
    of one source, so walks by degree do not grow a round's memory; with equal walks of
    ``unit`` each, exactly ``batch`` sources."""
    if walks is None:
        walks, unit = np.ones(sources_local.size, dtype=np.int64), 1
    rid = (np.cumsum(walks) - 1) // (int(batch) * int(unit))   # non-decreasing round ids
    cut = np.append(np.unique(rid, return_index=True)[1], rid.size)
    rounds = int(g.comm.allreduce(cut.size - 1, op=MPI.MAX))
    cut = np.concatenate([cut, np.full(rounds + 1 - cut.size, sources_local.size)]) \
        if cut.size < rounds + 1 else cut
    return [sources_local[cut[i]:cut[i + 1]] for i in range(rounds)]


def walk_rounds(g: Graph, walks: int, batch: int, rule: str = "uniform") -> int:
    """Rounds of walks ``build_fingerprints`` runs for every owned vertex (collective)."""
    nwalks = walks_per_vertex(g, walks, rule)
    return len(_round_sources(g, np.arange(g.lo, g.hi, dtype=np.int64), batch, nwalks, walks))


def _native_walker(g: Graph):
    """The C++ superstep (bit-identical to the NumPy one) when hpc._core has it."""
    if "walker" not in g.info:
        try:
            from hpc import _core

            g.info["walker"] = _core.pagerank_walk.Walker(
                np.ascontiguousarray(g.out_indptr, dtype=np.int64),
                np.ascontiguousarray(g.out_indices, dtype=np.int64), g.lo, g.n)
        except (ImportError, AttributeError):
            g.info["walker"] = None
    return g.info["walker"]


WALK_RULES = ("uniform", "degree")


def walks_per_vertex(g: Graph, walks: int, rule: str = "uniform") -> np.ndarray:
    """Walks from each owned vertex: ``walks`` each (``uniform``), or (``degree``) ``walks``
    x ceil(outdeg / mean outdeg), mean = m / n over the whole graph.

    Why ``degree``: a query's residual r(u) is combined with F_u, whose entries come in
    quanta of c r(u) / R_u (one walk visit), so the score noise is set by the per-walk share
    r(u) / R_u. The per-edge push leaves r(u) < threshold x outdeg(u) (a hub keeps up to
    its degree's worth of mass for its fingerprint); R_u proportional to the degree bounds
    the share by threshold x mean outdeg / walks on every vertex. The cost is
    sum_u ceil(outdeg(u) / mean) walks (1.8 n on kron:18:16, n on a regular graph)."""
    if rule not in WALK_RULES:
        raise UsageError(f"walk rule: expected one of {', '.join(WALK_RULES)}, got {rule!r}")
    if rule == "uniform":
        return np.full(g.nlocal, int(walks), dtype=np.int64)
    mean = max(g.m / max(g.n, 1), 1.0)
    return int(walks) * np.maximum(1, np.ceil(g.outdeg / mean)).astype(np.int64)


def build_fingerprints(g: Graph, sources_local: np.ndarray, walks: int, damping: float,
                       seed: int, max_length: int = 64, keep: int = 0,
                       batch: int = 4096, native: bool | None = None,
                       progress: Callable[[int], None] | None = None,
                       rule: str = "uniform") -> Fingerprints:
    """Fingerprints of ``sources_local`` (global numbers this rank owns; collective).

    ``keep`` > 0 stores only the top ``keep`` entries per vertex (the index); 0 keeps all.
    ``native``: the C++ superstep (default: when built) or the NumPy one; same walks.
    ``rule``: walks per vertex (``walks_per_vertex``); ``walks`` is the least of them.
    Walk j of vertex u has the random stream u x Wmax + j (Wmax: the most walks of any
    vertex), so the walks do not depend on the number of ranks.
    """
    comm = g.comm
    n, lo = g.n, g.lo
    c = 1.0 - damping
    sources_local = np.unique(np.asarray(sources_local, dtype=np.int64))
    deg = g.outdeg
    rows_ptr, rows_ids, rows_vals, masses = [np.zeros(1, np.int64)], [], [], []
    survivors = 0
    walker = _native_walker(g) if native is not False else None
    if native and walker is None:
        raise RuntimeError("native walks requested but hpc._core.pagerank_walk is not built")
    nwalks = walks_per_vertex(g, walks, rule)
    wmax = int(comm.allreduce(int(nwalks.max()) if nwalks.size else int(walks), op=MPI.MAX))
    for done, srcs in enumerate(_round_sources(g, sources_local, batch,
                                               nwalks[sources_local - lo], walks)):
        if progress is not None:
            progress(done)          # rounds finished so far (every rank runs as many)
        # walker state lives on the owner of the current vertex
        cnt_w = nwalks[srcs - lo]
        src = np.repeat(srcs, cnt_w)
        first = np.cumsum(cnt_w) - cnt_w
        wid = src * wmax + (np.arange(src.size, dtype=np.int64) - np.repeat(first, cnt_w))
        cur = src.copy()
        visits, stops = [], []                    # keys src*n + vertex
        step = 0
        while True:
            alive = int(comm.allreduce(cur.size, op=MPI.SUM))
            if alive == 0:
                break
            if step == max_length:
                # survivors: their remaining (<= 1) mass is credited where they stop
                stops.append(src * n + cur)
                survivors += cur.size
                break
            visits.append(src * n + cur)          # the visit, weight c
            if walker is not None:
                src, wid, nxt = walker.step(src, wid, cur, int(seed), step, c)
            else:
                go = uniform(seed, wid, step, 0) >= c  # continue with probability d
                li = cur - lo
                go &= deg[li] > 0                 # absorbed at a dangling vertex
                src, wid, li = src[go], wid[go], li[go]
                k = np.minimum((uniform(seed, wid, step, 1) * deg[li]).astype(np.int64), deg[li] - 1)
                nxt = g.out_indices[g.out_indptr[li] + k]
            src, wid, cur = exchange(comm, g.owner(nxt), [src, wid, nxt])
            step += 1
        # one sort per round: counts of every (source, vertex) key, weight c (visits) or 1
        k0, w0 = _count(visits, c)
        if stops:
            ks, ws = _count(stops, 1.0)
            k0, inv = np.unique(np.concatenate([k0, ks]), return_inverse=True)
            w0 = np.bincount(inv, weights=np.concatenate([w0, ws]), minlength=k0.size)
        k1, w1 = exchange(comm, g.owner(k0 // n), [k0, w0])
        uk, inv = np.unique(k1, return_inverse=True)
        s_of, v_of = np.divmod(uk, n)
        w = np.bincount(inv, weights=w1, minlength=uk.size) / nwalks[s_of - lo]
        # rows in source order, each sorted by value (largest first, ties by id); top `keep`
        order = np.lexsort((v_of, -w, s_of))
        s_of, v_of, w = s_of[order], v_of[order], w[order]
        start = np.searchsorted(s_of, srcs)
        cnt = np.searchsorted(s_of, srcs, side="right") - start
        masses.append(np.bincount(np.searchsorted(srcs, s_of), weights=w, minlength=srcs.size))
        if keep > 0:
            rank_in_row = np.arange(s_of.size) - np.repeat(start, cnt)
            sel = rank_in_row < keep
            v_of, w = v_of[sel], w[sel]
            cnt = np.minimum(cnt, keep)
        rows_ids.append(v_of)
        rows_vals.append(w)
        rows_ptr.append(cnt.astype(np.int64))
    indptr = np.cumsum(np.concatenate(rows_ptr))
    ids = np.concatenate(rows_ids) if rows_ids else np.empty(0, np.int64)
    vals = np.concatenate(rows_vals) if rows_vals else np.empty(0)
    surv = int(comm.allreduce(survivors, op=MPI.SUM))
    mass = np.concatenate(masses) if masses else np.empty(0)
    return Fingerprints(sources_local, indptr, ids.astype(np.int64), vals, mass, surv, walks)


def _count(keys: list[np.ndarray], weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and weight x their multiplicity."""
    if not keys:
        return np.empty(0, np.int64), np.empty(0)
    uk, cnt = np.unique(np.concatenate(keys), return_counts=True)
    return uk, weight * cnt


# --------------------------------------------------------------------------------------------
# the online decomposition
# --------------------------------------------------------------------------------------------
@dataclass
class PushState:
    """Per rank, sparse (owned vertices x queries): the estimate X and the residual R of the
    forward push (PPR = X + the residual's walk part; not a domain decomposition)."""

    X: sp.csr_matrix
    R: sp.csr_matrix
    pushes: int
    iterations: int


def push_operator(g: Graph, damping: float) -> sp.csr_matrix:
    """(d D^-1 A_local)^T, n x nlocal: column v spreads d/outdeg(v) to each out-neighbour.
    A dangling vertex has an empty column (its mass is absorbed). Cached on the graph."""
    key = ("push", damping)
    if key not in g.info:
        deg = g.outdeg
        scale = np.zeros(g.nlocal)
        np.divide(damping, deg, out=scale, where=deg > 0)
        vals = np.repeat(scale, deg)
        A = sp.csr_matrix((vals, g.out_indices, g.out_indptr), shape=(g.nlocal, g.n))
        g.info[key] = A.T.tocsr()
    return g.info[key]


def decompose(g: Graph, sources: np.ndarray, damping: float, iterations: int,
              threshold: float, per_edge: bool = False) -> PushState:
    """Push every query's mass ``iterations`` times (entries >= threshold); collective.

    ``sources``: the global vertex of every query (the same array on every rank). One
    superstep per iteration: a local sparse product gives the mass each out-neighbour
    receives, and one all-to-all delivers it to the neighbour's owner.
    """
    comm = g.comm
    c = 1.0 - damping
    nq, nl, lo = int(sources.size), g.nlocal, g.lo
    mine = np.flatnonzero((sources >= lo) & (sources < g.hi))
    R = sp.csr_matrix((np.ones(mine.size), (sources[mine] - lo, mine)), shape=(nl, nq))
    X = sp.csr_matrix((nl, nq))
    PT = push_operator(g, damping)
    pushes, it = 0, 0
    for step in range(iterations):
        if per_edge:   # Andersen-Chung-Lang: push when r(v) >= threshold * outdeg(v)
            rowdeg = np.repeat(np.maximum(g.outdeg, 1), np.diff(R.indptr))
            big = R.data >= threshold * rowdeg
        else:
            big = R.data >= threshold
        npush = int(comm.allreduce(int(big.sum()), op=MPI.SUM))
        if npush == 0:
            break
        it = step + 1
        pushes += npush
        Rp = R.copy()
        Rp.data = np.where(big, R.data, 0.0)
        Rp.eliminate_zeros()
        R.data = np.where(big, 0.0, R.data)
        R.eliminate_zeros()
        X = X + c * Rp
        C = PT @ Rp                               # n x nq: mass arriving at every vertex
        if comm.Get_size() == 1:
            R = R + C
            continue
        C = C.tocoo()
        w, q, v = exchange(comm, g.owner(C.row), [C.row.astype(np.int64), C.col.astype(np.int64), C.data])
        R = R + sp.csr_matrix((v, (w - lo, q)), shape=(nl, nq))
    return PushState(sp.csr_matrix(X), sp.csr_matrix(R), pushes, it)


@dataclass
class Answer:
    """Per-query results gathered on rank 0 (None elsewhere)."""

    topk_ids: np.ndarray | None      # q x K global vertex numbers (-1 padding)
    topk_scores: np.ndarray | None   # q x K normalised scores (0 padding)
    full: list | None                # with want_full: per query (ids, scores)


def fingerprint_matrix(g: Graph, fp: Fingerprints) -> tuple[sp.csr_matrix, np.ndarray]:
    """(K, mass): K = [F; S], 2 nlocal x n. Row v - lo of F is F_v (empty where no
    fingerprint); S places the estimate of owned vertex v in column v. Cached per index."""
    key = ("K", g.lo, g.hi, g.n)
    if fp.cache.get("key") != key:
        nl = g.nlocal
        cnt = np.zeros(nl, dtype=np.int64)
        cnt[fp.vertices - g.lo] = np.diff(fp.indptr)
        ptr = np.zeros(2 * nl + 1, dtype=np.int64)
        np.cumsum(np.concatenate([cnt, np.ones(nl, np.int64)]), out=ptr[1:])
        ids = np.concatenate([fp.ids, np.arange(g.lo, g.hi, dtype=np.int64)])
        vals = np.concatenate([fp.vals, np.ones(nl)])
        mass = np.zeros(2 * nl)
        mass[fp.vertices - g.lo] = fp.mass
        mass[nl:] = 1.0
        fp.cache.update(key=key, K=sp.csr_matrix((vals, ids, ptr), shape=(2 * nl, g.n)), mass=mass)
    return fp.cache["K"], fp.cache["mass"]


def combine(g: Graph, dec: PushState, fp: Fingerprints, nq: int, topk: int,
            want_full: bool = False) -> Answer:
    """x + sum_w r(w) F_w, normalised per query; top-K per query (collective).

    One local sparse product [R; X]^T [F; S] gives every query's partial vector; queries
    are block-distributed, so the rows for each rank are contiguous.
    """
    comm, p, n = g.comm, g.comm.Get_size(), g.n
    K, mass = fingerprint_matrix(g, fp)
    rows = np.flatnonzero(np.diff(dec.R.indptr) > 0)
    if rows.size and (mass[rows] == 0).any():
        raise RuntimeError("fingerprint missing for a residual vertex")
    L = sp.vstack([dec.R, dec.X], format="csr").T.tocsr()      # nq x 2 nlocal
    norm = np.empty(nq)
    comm.Allreduce(L @ mass, norm, op=MPI.SUM)
    E = L @ K                                                  # nq x n, partial vectors
    qoff = block_offsets(nq, p)
    r = comm.Get_rank()
    if p == 1:
        M = E                     # a product has no duplicate entries: nothing to merge
    else:
        Ec = E.tocoo()
        q, v, w = exchange(comm, np.searchsorted(qoff, Ec.row, side="right") - 1,
                           [Ec.row.astype(np.int64), Ec.col.astype(np.int64), Ec.data])
        M = sp.csr_matrix((w, (q, v)), shape=(nq, n))
        M.sum_duplicates()
    mine = np.arange(qoff[r], qoff[r + 1])
    ids = np.full((mine.size, topk), -1, dtype=np.int64)
    scores = np.zeros((mine.size, topk))
    full_local = []
    for i, qi in enumerate(mine):
        b, e = M.indptr[qi], M.indptr[qi + 1]
        cols, vals = M.indices[b:e], M.data[b:e] / norm[qi]
        if vals.size > topk:
            part = np.argpartition(-vals, topk - 1)[:topk]
        else:
            part = np.arange(vals.size)
        order = part[np.lexsort((cols[part], -vals[part]))]
        ids[i, :order.size] = cols[order]
        scores[i, :order.size] = vals[order]
        if want_full:
            full_local.append((cols.astype(np.int64), vals))
    got = comm.gather((mine, ids, scores, full_local if want_full else None), root=0)
    if comm.Get_rank() != 0:
        return Answer(None, None, None)
    T_ids = np.full((nq, topk), -1, dtype=np.int64)
    T_sc = np.zeros((nq, topk))
    full = [None] * nq if want_full else None
    for m, i_, s_, f_ in got:
        T_ids[m] = i_
        T_sc[m] = s_
        if want_full:
            for qi, fv in zip(m, f_):
                full[qi] = fv
    return Answer(T_ids, T_sc, full)


# --------------------------------------------------------------------------------------------
# the native query engine (hpc._core.pagerank_ppr): the same decomposition, one query per task
# --------------------------------------------------------------------------------------------
@dataclass
class NativeStats:
    """Batch totals of the native engine (summed over ranks)."""

    pushes: int
    iterations: int
    residual_entries: int
    residual_mass: float
    combined_entries: int


def _native_module():
    try:
        from hpc import _core

        return _core.pagerank_ppr
    except (ImportError, AttributeError):
        raise RuntimeError("the native PPR engine is not built (make build)") from None


def _allgather_rows(comm, counts: np.ndarray, *arrays: np.ndarray) -> tuple:
    """Concatenate per-rank CSR pieces (rows in rank order) on every rank: (indptr, *data)."""
    if comm.Get_size() == 1:
        cnt, parts = counts, arrays
    else:
        cnt = np.concatenate(comm.allgather(counts))
        parts = tuple(np.concatenate(comm.allgather(a)) for a in arrays)
    ptr = np.zeros(cnt.size + 1, dtype=np.int64)
    np.cumsum(cnt, out=ptr[1:])
    return (ptr, *parts)


def _graph_csr(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """The whole out-edge CSR on every rank (collective; cached on the graph)."""
    if "csr_all" not in g.info:
        ptr, idx = _allgather_rows(g.comm, g.outdeg.astype(np.int64),
                                   np.ascontiguousarray(g.out_indices, dtype=np.int64))
        g.info["csr_all"] = (ptr, idx)
    return g.info["csr_all"]


def native_engine(g: Graph, fp: Fingerprints | None, damping: float):
    """A native engine holding the whole graph and the fingerprints of ``fp`` (every rank
    gets all rows; vertices without a fingerprint have mass 0). ``fp`` None: no fingerprints
    (for ``residual_support``). Collective; cached on ``fp``."""
    mod = _native_module()
    key = ("engine", g.n, damping)
    if fp is not None and fp.cache.get("engine_key") == key:
        return fp.cache["engine"]
    # every rank holds the whole graph and index
    require_memory(replicated_bytes(g, fp), "the replicated native PPR engine (whole graph "
                   "and index on every rank; --engine partitioned keeps them distributed)",
                   g.comm)
    gptr, gidx = _graph_csr(g)
    if fp is None:
        return mod.Engine(gptr, gidx, np.zeros(g.n + 1, np.int64), np.empty(0, np.int64),
                          np.empty(0), np.zeros(g.n), damping)
    cnt = np.zeros(g.nlocal, dtype=np.int64)
    cnt[fp.vertices - g.lo] = np.diff(fp.indptr)
    # rows of the owned vertices in vertex order (fp.vertices is sorted, a subset of lo..hi)
    mass = np.zeros(g.nlocal)
    mass[fp.vertices - g.lo] = fp.mass
    fptr, fids, fvals, fmass = _allgather_rows(g.comm, cnt, np.ascontiguousarray(fp.ids, np.int64),
                                               np.ascontiguousarray(fp.vals, np.float64), mass)
    eng = mod.Engine(gptr, gidx, fptr, fids, fvals, fmass, damping)
    fp.cache.update(engine_key=key, engine=eng)
    return eng


def native_support(g: Graph, sources: np.ndarray, damping: float, iterations: int,
                   threshold: float, per_edge: bool = False) -> np.ndarray:
    """The owned vertices whose fingerprints the batch's residual needs (collective)."""
    comm = g.comm
    off = block_offsets(sources.size, comm.Get_size())
    r = comm.Get_rank()
    eng = native_engine(g, None, damping)
    mine = eng.residual_support(np.ascontiguousarray(sources[off[r]:off[r + 1]], np.int64),
                                iterations, threshold, per_edge)
    flag = np.zeros(g.n, dtype=np.uint8)
    flag[mine] = 1
    comm.Allreduce(MPI.IN_PLACE, flag, op=MPI.MAX)
    return np.flatnonzero(flag[g.lo:g.hi]).astype(np.int64) + g.lo


def native_query(g: Graph, eng, sources: np.ndarray, iterations: int, threshold: float,
                 topk: int, per_edge: bool = False, rel: float = 0.0, want_full: bool = False,
                 threads: int = 1) -> tuple[Answer, NativeStats]:
    """Answer the batch with the native engine: queries block-distributed over the ranks
    (every rank holds the whole graph and index), results gathered on rank 0 (collective).

    ``rel`` > 0 drops fingerprint contributions below rel x the K-th score of a first pass
    over the largest 16 entries of each residual row; 0 combines every stored entry.
    """
    comm = g.comm
    off = block_offsets(sources.size, comm.Get_size())
    r = comm.Get_rank()
    out = eng.query(np.ascontiguousarray(sources[off[r]:off[r + 1]], np.int64), iterations,
                    threshold, per_edge, topk, want_full, threads, rel)
    ids, scores, st = out[0], out[1], out[2]
    tot = np.array([st["pushes"], st["residual_entries"], st["combined_entries"]], np.int64)
    comm.Allreduce(MPI.IN_PLACE, tot, op=MPI.SUM)
    stats = NativeStats(int(tot[0]), int(comm.allreduce(st["iterations"], op=MPI.MAX)), int(tot[1]),
                        float(comm.allreduce(st["residual_mass"], op=MPI.SUM)), int(tot[2]))
    return _gather_answer(comm, ids, scores, out[3] if want_full else None), stats


def _gather_answer(comm, ids: np.ndarray, scores: np.ndarray, full_csr) -> Answer:
    """Each rank's block of queries (top-K arrays, the full vectors as a CSR or None) put
    together on rank 0 in query order (collective; None elsewhere)."""
    full_local = None
    if full_csr is not None:
        fptr, fids, fvals = full_csr
        full_local = [(fids[fptr[i]:fptr[i + 1]], fvals[fptr[i]:fptr[i + 1]])
                      for i in range(ids.shape[0])]
    if comm.Get_size() == 1:
        return Answer(ids, scores, full_local)
    got = comm.gather((ids, scores, full_local), root=0)
    if comm.Get_rank() != 0:
        return Answer(None, None, None)
    full = [f for part in got for f in part[2]] if full_csr is not None else None
    return Answer(np.concatenate([x[0] for x in got]), np.concatenate([x[1] for x in got]), full)


# --------------------------------------------------------------------------------------------
# the partitioned native engine (hpc._core.pagerank_ppr_part): each rank holds the rows of its
# own vertex block, all queries of a batch advance together, shares and partial vectors are
# routed to their owner / asking rank in batched rounds
# --------------------------------------------------------------------------------------------
ENGINES = ("replicated", "partitioned")
TPUT_MAX_RANKS = 64   # the asking rank keeps the ranks that sent an entry in a 64-bit mask


def replicated_bytes(g: Graph, fp: Fingerprints | None) -> float:
    """Per-rank bytes of the replicated engine: the gathered int64/float64 graph and index
    plus the engine's copy (int32 ids, float64 values); collective."""
    entries = int(g.comm.allreduce(int(fp.ids.size) if fp is not None else 0, op=MPI.SUM))
    return 28.0 * (g.m + entries) + 40.0 * g.n


def engine_nbytes(g: Graph, fp: Fingerprints | None) -> int:
    """Bytes of graph and index in a replicated engine (its ``nbytes()``, without building
    one; collective): row pointers of both, int32 ids, float64 values and masses."""
    entries = int(g.comm.allreduce(int(fp.ids.size) if fp is not None else 0, op=MPI.SUM))
    return 8 * (g.n + 1) + 4 * g.m + 8 * (g.n + 1) + 12 * entries + 8 * g.n


def choose_engine(g: Graph, fp: Fingerprints | None, engine: str | None = None) -> str:
    """``engine``, or by memory when None/'auto' (collective): the replicated engine (every
    rank answers its queries alone, no messages) when one rank runs or when a whole copy of
    graph and index per rank takes at most half of the free memory on every host, else the
    partitioned one."""
    if engine not in (None, "auto"):
        if engine not in ENGINES:
            raise UsageError(f"engine: expected one of {', '.join(ENGINES)} or auto, got "
                             f"{engine!r}")
        return engine
    if g.comm.Get_size() == 1:
        return "replicated"
    from hpc.core.exchange import node_comm
    from hpc.core.memory import available_bytes

    need = replicated_bytes(g, fp) * node_comm(g.comm).Get_size()
    fits = bool(g.comm.allreduce(need <= 0.5 * available_bytes(), op=MPI.LAND))
    return "replicated" if fits else "partitioned"


def _part_module():
    try:
        from hpc import _core

        return _core.pagerank_ppr_part
    except (ImportError, AttributeError):
        raise RuntimeError("the partitioned PPR engine is not built (make build)") from None


def _route(comm, counts: np.ndarray, keys: np.ndarray, vals: np.ndarray | None = None,
           extra: int = 0) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, int]:
    """Deliver (key, value) pairs already grouped by destination rank (``counts`` per rank)
    in two collectives: an Alltoall of the counts, then one Alltoallv of key and value bits
    side by side. Returns (keys, values, how many came from each rank, the sum of ``extra``
    over the ranks: a number that travels with the counts, saving an Allreduce); ``vals``
    None: keys only (values None)."""
    if comm.Get_size() == 1:
        return keys, vals, np.asarray(counts, np.int64), int(extra)
    p = comm.Get_size()
    send = np.empty((p, 2), np.int64)
    send[:, 0], send[:, 1] = counts, extra
    got = np.empty((p, 2), np.int64)
    comm.Alltoall(send, got)
    recv = np.ascontiguousarray(got[:, 0])
    w = 1 if vals is None else 2
    if vals is None:
        buf = np.ascontiguousarray(keys, np.int64)
    elif (buf := _pairs_of(keys, vals)) is None:
        buf = np.empty((keys.size, 2), np.int64)
        buf[:, 0] = keys
        buf[:, 1] = np.ascontiguousarray(vals, np.float64).view(np.int64)
    out = np.empty((int(recv.sum()), w), np.int64)
    comm.Alltoallv([buf, (w * counts, w * (np.cumsum(counts) - counts)), MPI.INT64_T],
                   [out, (w * recv, w * (np.cumsum(recv) - recv)), MPI.INT64_T])
    # the columns as they are (strided views: the engine reads them through their stride)
    rk = out[:, 0] if vals is not None else out.reshape(-1)
    rv = None if vals is None else out[:, 1].view(np.float64)
    return rk, rv, recv, int(got[:, 1].sum())


def _pairs_of(keys: np.ndarray, vals: np.ndarray) -> np.ndarray | None:
    """The (m, 2) int64 buffer whose columns ``keys`` and ``vals`` are (as the partitioned
    engine's ``partial``/``top``/``more`` return them), or None."""
    base = keys.base
    if (base is None or vals.base is not base or not isinstance(base, np.ndarray)
            or base.dtype != np.int64 or base.shape != (keys.size, 2)
            or not base.flags.c_contiguous or keys.dtype != np.int64
            or vals.dtype != np.float64):
        return None
    at = base.__array_interface__["data"][0]
    if (keys.__array_interface__["data"][0] != at or vals.__array_interface__["data"][0] != at + 8
            or (keys.size > 1 and (keys.strides != (16,) or vals.strides != (16,)))):
        return None
    return base


def _reply(comm, vals: np.ndarray, sent: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Send ``vals`` (answers to the keys that arrived, ``got`` per rank) back to the ranks
    that asked (``sent`` per rank): the reverse of a ``_route`` (collective)."""
    if comm.Get_size() == 1:
        return vals
    out = np.empty(int(sent.sum()), np.float64)
    comm.Alltoallv([vals, (got, np.cumsum(got) - got), MPI.DOUBLE],
                   [out, (sent, np.cumsum(sent) - sent), MPI.DOUBLE])
    return out


def _blocks_to_all(comm, x: np.ndarray, qoff: np.ndarray) -> np.ndarray:
    """Each rank's block ``qoff[r]:qoff[r + 1]`` of a per-query float64 array, put together on
    every rank (one Allgatherv)."""
    x = np.ascontiguousarray(x, np.float64)
    if comm.Get_size() == 1:
        return x
    out = np.empty(int(qoff[-1]))
    comm.Allgatherv(x, [out, (np.diff(qoff), qoff[:-1]), MPI.DOUBLE])
    return out


def _tput_threshold(tau: np.ndarray, p: int) -> np.ndarray:
    """TPUT's threshold tau / p, a little lower: p floors below it sum to less than tau
    despite rounding."""
    return np.ascontiguousarray(tau * ((1.0 - 1e-12) / p))


def _tput(comm, eng, qoff: np.ndarray, topk: int, lower: np.ndarray | None,
          threads: int) -> np.ndarray:
    """The asking ranks' exact top K of the summed partial vectors by TPUT's rounds (the
    engine's ``top`` documents the bounds), up to the answers to the candidates' requests
    (collective; ``eng.ask_finish`` of them gives the ids and scores): each rank's K largest
    entries give tau1, a lower bound of every query's K-th score; every rank then sends its
    entries >= tau1 / p with its floor (its largest unsent entry); the asking rank asks the
    ranks that did not send a candidate for its entry. ``lower``: a lower bound of every
    query's K-th score already known on every rank (the K-th score of the heads, under the
    rel cut) takes the place of tau1 and its round. The same ids and scores as summing every
    partial vector (``answer``), from a fraction of them."""
    p, r = comm.Get_size(), comm.Get_rank()
    qlo, qhi = int(qoff[r]), int(qoff[r + 1])
    if lower is None:
        c, k, v = eng.top(qoff, topk, threads)
        k, v, src, _ = _route(comm, c, k, v)
        tau = _blocks_to_all(comm, eng.ask_begin(k, v, src, qlo, qhi, topk, threads), qoff)
        low = np.zeros(qhi - qlo)
    else:
        eng.ask_begin(np.empty(0, np.int64), np.empty(0), np.zeros(p, np.int64), qlo, qhi,
                      topk, threads)
        tau, low = lower, np.ascontiguousarray(lower[qlo:qhi])
    thr = _tput_threshold(tau, p)
    c, k, v = eng.more(qoff, thr, threads)   # each query's floor rides with its entries
    k, v, src, _ = _route(comm, c, k, v)
    c, req = eng.ask_more(k, v, src, low, topk, threads)
    got_k, _, got, _ = _route(comm, c, req)
    return _reply(comm, eng.values(got_k, threads), c, got)


def _move_rows(comm, indptr: np.ndarray, arrays: list[np.ndarray], src_off: np.ndarray,
               dst_off: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """CSR rows held in contiguous vertex blocks ``src_off`` moved to blocks ``dst_off``
    (collective: the row lengths through ``move_blocks``, then one Alltoallv per array;
    both block lists are known, so no count exchange)."""
    p, r = comm.Get_size(), comm.Get_rank()
    if p == 1 or np.array_equal(src_off, dst_off):
        return indptr, list(arrays)
    lens = move_blocks(comm, np.diff(indptr).astype(np.float64), src_off, dst_off)
    ptr = np.zeros(lens.size + 1, dtype=np.int64)
    np.cumsum(lens.astype(np.int64), out=ptr[1:])

    def spans(rows_ptr: np.ndarray, mine: tuple[int, int], theirs: np.ndarray) -> np.ndarray:
        # entries of my rows inside each of their blocks
        lo, hi = mine
        return (rows_ptr[np.clip(theirs[1:], lo, hi) - lo]
                - rows_ptr[np.clip(theirs[:-1], lo, hi) - lo]).astype(np.int64)

    sc = spans(indptr, (int(src_off[r]), int(src_off[r + 1])), dst_off)
    rc = spans(ptr, (int(dst_off[r]), int(dst_off[r + 1])), src_off)
    out = []
    for a in arrays:
        buf = np.empty(int(rc.sum()), dtype=a.dtype)
        t = MPI._typedict[a.dtype.char]
        comm.Alltoallv([np.ascontiguousarray(a), (sc, np.cumsum(sc) - sc), t],
                       [buf, (rc, np.cumsum(rc) - rc), t])
        out.append(buf)
    return ptr, out


def _index_rows(g: Graph, fp: Fingerprints) -> tuple[np.ndarray, np.ndarray]:
    """(indptr over all nlocal owned vertices, mass): vertices without a fingerprint get an
    empty row and mass 0."""
    cnt = np.zeros(g.nlocal, dtype=np.int64)
    cnt[fp.vertices - g.lo] = np.diff(fp.indptr)
    ptr = np.zeros(g.nlocal + 1, dtype=np.int64)
    np.cumsum(cnt, out=ptr[1:])
    mass = np.zeros(g.nlocal)
    mass[fp.vertices - g.lo] = fp.mass
    return ptr, mass


def partitioned_engine(g: Graph, fp: Fingerprints | None, damping: float,
                       keep_blocks: bool = False):
    """The partitioned engine of this rank (collective): a contiguous vertex block with its
    out-edge rows and, with ``fp``, the fingerprints of its vertices (vertices without one
    have mass 0). The blocks hold near-equal bytes of graph and index rows (the graph's own
    vertex blocks are equal in vertices, but fingerprints vary in length): rows move to them
    once. Nothing is gathered: per rank about (N + E + N keep) / p. Cached on the graph;
    a new ``fp`` rebalances the blocks, unless ``keep_blocks`` (fingerprints built for a
    batch already pushed), which only moves its rows to the current blocks."""
    key = ("part_engine", damping)
    st = g.info.get(key)
    comm = g.comm
    if st is None or (fp is not None and not keep_blocks and st["basis"] is not fp):
        mod = _part_module()
        cost = 8.0 + 4.0 * g.outdeg
        if fp is not None:
            cost = cost + 16.0 + 12.0 * np.diff(_index_rows(g, fp)[0])
        off = (balanced_offsets(comm, g.n, g.lo, cost) if comm.Get_size() > 1
               else np.asarray(g.offsets, dtype=np.int64))
        require_memory(12.0 * (g.nlocal + g.out_indices.size), "the partitioned PPR engine",
                       comm)
        ptr, (idx,) = _move_rows(comm, np.asarray(g.out_indptr, np.int64),
                                 [np.ascontiguousarray(g.out_indices, np.int64)], g.offsets, off)
        eng = mod.PartEngine(np.ascontiguousarray(off, dtype=np.int64), comm.Get_rank(),
                             np.ascontiguousarray(ptr), np.ascontiguousarray(idx), damping)
        st = {"engine": eng, "offsets": off, "basis": fp, "fp": None}
        g.info[key] = st
    if fp is not None and st["fp"] is not fp:
        ptr, mass = _index_rows(g, fp)
        ptr, (ids, vals) = _move_rows(comm, ptr, [np.ascontiguousarray(fp.ids, np.int64),
                                                  np.ascontiguousarray(fp.vals, np.float64)],
                                      g.offsets, st["offsets"])
        mass = move_blocks(comm, mass, g.offsets, st["offsets"])
        st["engine"].set_index(np.ascontiguousarray(ptr), np.ascontiguousarray(ids),
                               np.ascontiguousarray(vals), np.ascontiguousarray(mass))
        st["fp"] = fp
    return st["engine"]


def partitioned_state(g: Graph, damping: float) -> dict | None:
    """The cached partitioned engine of ``g``: {'engine', 'offsets' (its vertex blocks),
    'fp' (the fingerprints loaded)}, or None."""
    return g.info.get(("part_engine", damping))


def partitioned_push(g: Graph, eng, sources: np.ndarray, iterations: int, threshold: float,
                     per_edge: bool = False, threads: int = 1) -> int:
    """Start a batch (``sources``: every query's global vertex, the same array on every rank)
    and push it: each round every rank pushes the entries of its vertices that meet the rule
    and one Alltoallv delivers the shares to their owners (the pushes counted with the
    Alltoall of the counts). Returns the rounds that pushed (collective)."""
    comm = g.comm
    eng.begin(np.ascontiguousarray(sources, np.int64))
    rounds = 0
    for _ in range(iterations):
        counts, keys, vals, pushes = eng.push(threshold, per_edge, threads)
        # the round's pushes travel with the counts (no rank pushed: nothing was routed)
        keys, vals, _, total = _route(comm, counts, keys, vals, extra=int(pushes))
        if total == 0:
            break
        rounds += 1
        eng.receive(keys, vals, threads)
    return rounds


def partitioned_support(g: Graph, eng) -> np.ndarray:
    """The vertices of this rank's graph block (g.lo..g.hi, where the walks start) whose
    fingerprints the pushed batch's residual needs (collective)."""
    v = eng.support()
    if g.comm.Get_size() > 1:
        v = np.unique(exchange(g.comm, g.owner(v), [v])[0])
    return v


def partitioned_answer(g: Graph, eng, nq: int, rounds: int, topk: int, rel: float = 0.0,
                       want_full: bool = False, threads: int = 1
                       ) -> tuple[Answer, NativeStats]:
    """Combine the pushed batch with the fingerprints and assemble each query at its asking
    rank (queries block-distributed, as the replicated engine's), results gathered on rank 0
    (collective). With ``rel`` > 0 the asking rank finds the K-th score of the heads and the
    owners then add only the tail contributions above rel x that score. The top K is
    assembled from a few entries of the partial vectors (``_exact_top``); ``want_full``
    sends every partial vector to the asking rank."""
    comm = g.comm
    p, r = comm.Get_size(), comm.Get_rank()
    qoff = block_offsets(nq, p).astype(np.int64)
    qlo, qhi = int(qoff[r]), int(qoff[r + 1])
    norm, missing = eng.combine(rel, topk, threads)
    # the top K by TPUT, or every partial vector to the asking rank
    tput = p <= TPUT_MAX_RANKS and not want_full
    kth = None
    if rel > 0:
        # the K-th score of the heads: every partial vector of the heads to the asking rank
        # (one route; the heads are a fifth of the entries), then every rank's cut
        keys, vals, _, _ = _route(comm, *eng.partial(qoff))
        kth = eng.answer(keys, vals, np.zeros(qhi - qlo), qlo, qhi, topk, False, True,
                         threads)[1][:, 0]
        kth = _blocks_to_all(comm, kth, qoff)
        # with TPUT next, the partial vectors come out of the tails split at its threshold
        eng.tails(np.ascontiguousarray(rel * kth), _tput_threshold(kth, p) if tput else None,
                  threads)
    if tput:
        # the final scores are >= the heads': the heads' K-th score bounds the K-th below
        vals = _tput(comm, eng, qoff, topk, kth, threads)
    else:
        keys, vals, _, _ = _route(comm, *eng.partial(qoff))
    # the norms, whether a rank misses a fingerprint (which vertex: only on the error path)
    # and the stats in one Allreduce (the counts stay exact in float64 below 2^53)
    st = eng.stats()
    tot = np.concatenate([norm, [float(missing >= 0), st["pushes"], st["residual_entries"],
                                 st["combined_entries"], st["residual_mass"]]])
    if p > 1:
        comm.Allreduce(MPI.IN_PLACE, tot, op=MPI.SUM)
    if tot[nq] > 0:
        missing = int(comm.allreduce(int(missing), op=MPI.MAX))
        raise RuntimeError(f"ppr query: no fingerprint for residual vertex {missing}")
    norm = np.ascontiguousarray(tot[qlo:qhi])
    if tput:
        out = eng.ask_finish(vals, norm, topk, False, threads)
    else:
        out = eng.answer(keys, vals, norm, qlo, qhi, topk, want_full, False, threads)
    stats = NativeStats(int(tot[nq + 1]), rounds, int(tot[nq + 2]), float(tot[nq + 4]),
                        int(tot[nq + 3]))
    return _gather_answer(comm, out[0], out[1], out[2] if want_full else None), stats


def partitioned_query(g: Graph, eng, sources: np.ndarray, iterations: int, threshold: float,
                      topk: int, per_edge: bool = False, rel: float = 0.0,
                      want_full: bool = False, threads: int = 1) -> tuple[Answer, NativeStats]:
    """Answer the batch with the partitioned engine (collective; the answer on rank 0): the
    replicated engine's arithmetic (``native_query``), with the graph and index rows left on
    their owners."""
    rounds = partitioned_push(g, eng, sources, iterations, threshold, per_edge, threads)
    return partitioned_answer(g, eng, int(sources.size), rounds, topk, rel, want_full, threads)


def needed_vertices(g: Graph, dec: PushState) -> np.ndarray:
    """The vertices (global numbers, owned here) whose fingerprints the residual needs."""
    rows = np.flatnonzero(np.diff(dec.R.indptr) > 0)
    return rows.astype(np.int64) + g.lo


# --------------------------------------------------------------------------------------------
# exact PPR (the oracle)
# --------------------------------------------------------------------------------------------
def exact_ppr(A, sources: np.ndarray, damping: float, tol: float = 1e-13,
              max_iter: int = 10_000, block: int = 256) -> np.ndarray:
    """Exact PPR (networkx's convention) of every source, dense q x n, by batched power
    iteration of the absorbing walk and renormalisation (serial SciPy)."""
    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    PT = sp.csr_matrix(A.multiply(inv[:, None])).T.tocsr() * damping
    c = 1.0 - damping
    out = np.empty((sources.size, n))
    for b0 in range(0, sources.size, block):
        s = sources[b0:b0 + block]
        r = np.zeros((n, s.size))
        r[s, np.arange(s.size)] = 1.0
        x = c * r
        for _ in range(max_iter):
            r = PT @ r
            x += c * r
            if np.abs(r).sum(axis=0).max() < tol:
                break
        out[b0:b0 + s.size] = (x / x.sum(axis=0)).T
    return out


def power_iteration_ppr(PT, dangling: np.ndarray, s: int, damping: float,
                        tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """One query by networkx's own iteration (dangling mass and teleport to s): the
    per-query baseline of the benchmark. PT = (D^-1 A)^T."""
    n = PT.shape[0]
    x = np.zeros(n)
    x[s] = 1.0
    for _ in range(max_iter):
        xn = damping * (PT @ x)
        xn[s] += damping * x[dangling].sum() + (1.0 - damping)
        if np.abs(xn - x).sum() < tol:
            return xn
        x = xn
    return x


TIE_TOL = 1e-12   # exact_ppr's scores are within its L1 residual (< 1e-13) of the truth


def precision_at_k(est_ids: np.ndarray, exact: np.ndarray, k: int, strict: bool = False
                   ) -> float:
    """Share of the estimated top k that belongs to the exact top k, ties-aware: an id counts
    when its exact score reaches the k-th largest exact score less ``TIE_TOL`` (scores tied
    at the k-th place are all "the top k"; the oracle cannot order them). ``strict``: the
    exact top k is one fixed set (score descending, then id ascending), however close the
    k-th and (k+1)-th scores. When fewer than k vertices have a positive exact score, k
    shrinks to their number."""
    k = min(k, int((exact > 0).sum()))
    if k == 0:
        return 1.0
    ids = est_ids[:k]
    ids = ids[ids >= 0]
    if strict:
        top = np.lexsort((np.arange(exact.size), -exact))[:k]
        return float(np.isin(ids, top).sum()) / k
    kth = np.partition(exact, exact.size - k)[exact.size - k]
    return float((exact[ids] >= kth - TIE_TOL).sum()) / k


def precision_summary(topk_ids: np.ndarray, exact: np.ndarray, k: int) -> dict:
    """precision@``k`` of a batch: row i of ``topk_ids`` is source i's estimated top ids,
    row i of ``exact`` its exact PPR. The ties-aware mean and min, the strict ones, and the
    mean over the sources that reach more than ``k`` vertices (a source reaching at most k,
    e.g. a dangling one, is exact for any estimate); ``per_source`` the ties-aware figures."""
    rows = range(exact.shape[0])
    p = np.array([precision_at_k(topk_ids[i], exact[i], k) for i in rows])
    strict = np.array([precision_at_k(topk_ids[i], exact[i], k, strict=True) for i in rows])
    hard = (exact > 0).sum(axis=1) > k
    return {"mean": float(p.mean()), "min": float(p.min()),
            "strict_mean": float(strict.mean()), "strict_min": float(strict.min()),
            "nontrivial_mean": float(p[hard].mean()) if hard.any() else 1.0,
            "nontrivial_sources": int(hard.sum()), "per_source": p}
