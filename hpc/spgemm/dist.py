"""Distributed SpGEMM C = A B over MPI: 1D row blocks and 2D Sparse SUMMA.

1D: A and C are owned by row blocks (A's DistCSR partition). Each rank lists the rows of B that
its columns of A touch, asks their owners for them (Alltoall of counts, Alltoallv of row ids),
and receives every row in ONE Alltoallv (lengths, columns and value bits packed in one int64
buffer per peer); then it multiplies locally with A's columns renumbered to the fetched rows.

2D: Sparse SUMMA on a q x q grid (p = q^2), as in CombBLAS. Rank (i, j) holds block A_ij
(row block i, column block j of A) and B_ij; at stage s, A_is is broadcast along grid row i
and B_sj along grid column j, and rank (i, j) multiplies them locally. The q partial products
are merged at the end by the same hash kernel ([C_1 .. C_q] times a stack of identities).
The blocks are distributed before (``distribute``) and C is returned to 1D rows after
(``collect``); neither is part of the timed multiply.

Every routine records communication (bytes this rank sent, seconds) separately from local
compute seconds in a :class:`Costs`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.partition import block_offsets
from hpc.sparse.dcsr import DistCSR

from . import local as L
from .renumber import renumber, within


@dataclass
class Costs:
    """What one distributed multiply cost on this rank."""

    comm_s: float = 0.0          # seconds in communication calls
    comm_bytes: int = 0          # payload bytes this rank sent (to other ranks)
    compute_s: float = 0.0       # seconds in local kernels (symbolic + numeric, and merges)
    stats: dict = field(default_factory=dict)  # kernel statistics, summed over calls

    def add_stats(self, st: dict) -> None:
        for k, v in st.items():
            if isinstance(v, (int, float)) and k != "threads":
                self.stats[k] = self.stats.get(k, 0) + v


def _displ(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def _alltoallv_i64(comm, send: np.ndarray, scount: np.ndarray, costs: Costs) -> np.ndarray:
    """Alltoallv of int64 with counts exchanged first; accounts bytes sent to other ranks."""
    p, r = comm.Get_size(), comm.Get_rank()
    rcount = np.empty(p, dtype=np.int64)
    comm.Alltoall(scount.astype(np.int64), rcount)
    recv = np.empty(int(rcount.sum()), dtype=np.int64)
    comm.Alltoallv([send, scount, _displ(scount), MPI.INT64_T],
                   [recv, rcount, _displ(rcount), MPI.INT64_T])
    costs.comm_bytes += 8 * int(scount.sum() - scount[r]) + 8 * (p - 1)
    return recv, rcount


def _serve(B: DistCSR, rows: np.ndarray, costs: Costs):
    """Exchange the requests for rows ``rows`` (sorted unique global ids) of B (collective).

    Returns the rows asked of each owner (``req_count``), the rows each peer asked of this rank
    (``got``), their lengths in request order, the positions of their entries in ``B.local``
    and the entries served to each peer."""
    comm = B.comm
    p = comm.Get_size()
    owner = np.searchsorted(B.row_offsets, rows, side="right") - 1
    req_count = np.bincount(owner, minlength=p).astype(np.int64)  # rows sorted: grouped by owner
    req, got = _alltoallv_i64(comm, rows.astype(np.int64), req_count, costs)
    Bl = B.local
    lr = req - B.row_offsets[comm.Get_rank()]
    lens = np.diff(Bl.indptr).astype(np.int64)[lr]
    starts = Bl.indptr[lr].astype(np.int64)
    # positions in B.local of the served entries, peer by peer (requests come grouped)
    tot = int(lens.sum())
    pos = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(tot)
    ent_peer = np.repeat(np.repeat(np.arange(p), got), lens)
    ent_count = np.bincount(ent_peer, minlength=p).astype(np.int64)
    return req_count, got, lens, pos, ent_count


def _pack_by_peer(got: np.ndarray, lens: np.ndarray, ent_count: np.ndarray,
                  payloads: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One int64 block per peer: [its rows' lengths | each payload's entries, in turn]."""
    send_count = got + len(payloads) * ent_count
    send = np.empty(int(send_count.sum()), dtype=np.int64)
    off, roff, eoff = _displ(send_count), _displ(got), _displ(ent_count)
    for q in range(got.size):
        o, g, e = int(off[q]), int(got[q]), int(ent_count[q])
        send[o:o + g] = lens[roff[q]:roff[q] + g]
        o += g
        for a in payloads:
            send[o:o + e] = a[eoff[q]:eoff[q] + e]
            o += e
    return send, send_count


def _unpack_by_peer(recv: np.ndarray, req_count: np.ndarray, k: int):
    """The inverse of :func:`_pack_by_peer` on the receiving side (peers come in rank order, and
    so do the rows asked of each): the lengths, the ``k`` payloads and the entries per peer."""
    lens_all: list[np.ndarray] = []
    parts: list[list[np.ndarray]] = [[] for _ in range(k)]
    ent = np.zeros(req_count.size, np.int64)
    o = 0
    for q in range(req_count.size):
        g = int(req_count[q])
        ln = recv[o:o + g]
        e = int(ln.sum())
        lens_all.append(ln)
        ent[q] = e
        o += g
        for part in parts:
            part.append(recv[o:o + e])
            o += e
    return np.concatenate(lens_all), [np.concatenate(part) for part in parts], ent


def fetch_rows(B: DistCSR, rows: np.ndarray, costs: Costs) -> sp.csr_matrix:
    """The rows `rows` (sorted unique global ids) of B, as CSR with global columns (collective)."""
    t0 = time.perf_counter()
    req_count, got, lens, pos, ent_count = _serve(B, rows, costs)
    # Serve the requests: per peer, [lengths | columns | value bits] in one int64 block.
    cols = B.local.indices[pos].astype(np.int64)
    vals = np.ascontiguousarray(B.local.data[pos], dtype=np.float64).view(np.int64)
    send, send_count = _pack_by_peer(got, lens, ent_count, [cols, vals])
    recv, rcount = _alltoallv_i64(B.comm, send, send_count, costs)
    costs.comm_s += time.perf_counter() - t0
    lens, (cols, vals), _ = _unpack_by_peer(recv, req_count, 2)
    indptr = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
    Bf = sp.csr_matrix((vals.view(np.float64), cols, indptr), shape=(rows.size, B.shape[1]))
    Bf.has_sorted_indices = True  # B's rows are canonical
    Bf.has_canonical_format = True
    return Bf


def multiply_1d(A: DistCSR, B: DistCSR, backend: str, threads: int, costs: Costs,
                **kw) -> DistCSR:
    """C = A B with 1D row blocks: one Alltoallv for the needed rows of B, then local SpGEMM."""
    Al = A.local
    r = A.comm.Get_rank()
    lo, hi = int(B.row_offsets[r]), int(B.row_offsets[r + 1])
    if within(Al.indices, lo, hi):
        # no ghost column (one rank, say): B's own block is the rows needed, no renumbering
        fetch_rows(B, np.empty(0, np.int64), costs)  # still serves the others (collective)
        Bf = B.local if B.local.dtype == np.float64 else B.local.astype(np.float64)
        t0 = time.perf_counter()
        Ar = sp.csr_matrix((Al.data, Al.indices - lo if lo else Al.indices, Al.indptr),
                           shape=(Al.shape[0], hi - lo), copy=False)
    else:
        # A's columns renumbered to positions in `needed` (sorted: the order is kept per row)
        needed, cols = renumber(Al.indices, A.shape[1])
        Bf = fetch_rows(B, needed, costs)
        t0 = time.perf_counter()
        Ar = sp.csr_matrix((Al.data, cols, Al.indptr), shape=(Al.shape[0], needed.size),
                           copy=False)
    Ar.has_sorted_indices = True
    Ar.has_canonical_format = True
    C, st = L.multiply(Ar, Bf, backend, threads, **kw)
    costs.compute_s += time.perf_counter() - t0
    costs.add_stats(st)
    return DistCSR(A.comm, C, (A.shape[0], B.shape[1]), row_offsets=A.row_offsets,
                   col_offsets=B.col_offsets if A.shape[0] != B.shape[1] else A.row_offsets)


# ---------------------------------------------------------------------------- 2D SUMMA
def square_grid(p: int) -> int | None:
    """q with q * q == p, else None."""
    q = int(round(np.sqrt(p)))
    return q if q * q == p else None


@dataclass
class Grid:
    comm: object
    q: int
    i: int           # grid row
    j: int           # grid column
    row_comm: object  # ranks (i, *), ordered by j
    col_comm: object  # ranks (*, j), ordered by i

    def free(self) -> None:
        self.row_comm.Free()
        self.col_comm.Free()


def make_grid(comm) -> Grid:
    """The q x q grid of ranks (row-major: rank = i q + j); p must be a square."""
    p, r = comm.Get_size(), comm.Get_rank()
    q = square_grid(p)
    if q is None:
        raise ValueError(f"2D SUMMA needs a square number of ranks, got {p}")
    i, j = divmod(r, q)
    return Grid(comm, q, i, j, comm.Split(i, j), comm.Split(j, i))


def _route_entries(comm, dest: np.ndarray, gi: np.ndarray, gj: np.ndarray, v: np.ndarray,
                   costs: Costs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Send entry (gi, gj, v) to rank dest in one Alltoallv of int64 words: per peer the
    segment [i | j | v bits], so the counted volume is one message per peer."""
    order = np.argsort(dest, kind="stable")
    count = np.bincount(dest, minlength=comm.Get_size()).astype(np.int64)
    gi, gj = gi[order], gj[order]
    vb = np.ascontiguousarray(v[order], dtype=np.float64).view(np.int64)
    off = _displ(count)
    packed = np.empty(3 * gi.size, dtype=np.int64)
    for d in range(comm.Get_size()):
        o, c = int(off[d]), int(count[d])
        packed[3 * o:3 * o + c] = gi[o:o + c]
        packed[3 * o + c:3 * o + 2 * c] = gj[o:o + c]
        packed[3 * o + 2 * c:3 * o + 3 * c] = vb[o:o + c]
    recv, rcount = _alltoallv_i64(comm, packed, 3 * count, costs)
    ri, rj, rv = [], [], []
    o = 0
    for c in (rcount // 3):
        c = int(c)
        ri.append(recv[o:o + c])
        rj.append(recv[o + c:o + 2 * c])
        rv.append(recv[o + 2 * c:o + 3 * c])
        o += 3 * c
    return np.concatenate(ri), np.concatenate(rj), np.concatenate(rv).view(np.float64)


def to_blocks(M: DistCSR, grid: Grid, row_off: np.ndarray, col_off: np.ndarray,
              costs: Costs) -> sp.csr_matrix:
    """Redistribute a 1D DistCSR into 2D block (grid.i, grid.j) with block-local indices."""
    comm, q = grid.comm, grid.q
    t0 = time.perf_counter()
    coo = M.local.tocoo()
    gi = coo.row.astype(np.int64) + M.row_offsets[M.rank]
    gj = coo.col.astype(np.int64)
    bi = np.searchsorted(row_off, gi, side="right") - 1
    bj = np.searchsorted(col_off, gj, side="right") - 1
    dest = bi * q + bj
    ri, rj, rv = _route_entries(comm, dest, gi, gj, coo.data, costs)
    costs.comm_s += time.perf_counter() - t0
    r0, r1 = int(row_off[grid.i]), int(row_off[grid.i + 1])
    c0, c1 = int(col_off[grid.j]), int(col_off[grid.j + 1])
    blk = sp.csr_matrix((rv, (ri - r0, rj - c0)), shape=(r1 - r0, c1 - c0))
    blk.sum_duplicates()
    return L.canonical(blk)


def _bcast_csr(comm, M: sp.csr_matrix | None, root: int, shape: tuple[int, int],
               costs: Costs) -> sp.csr_matrix:
    """Broadcast a CSR block from root (int32 indices where they fit)."""
    me = comm.Get_rank()
    nnz = np.array([M.nnz if me == root else 0], dtype=np.int64)
    comm.Bcast(nnz, root=root)
    nnz = int(nnz[0])
    it = np.int32 if max(nnz, shape[1]) < 2**31 - 1 else np.int64
    mt = MPI.INT32_T if it == np.int32 else MPI.INT64_T
    if me == root:
        indptr = M.indptr.astype(it, copy=False)
        indices = M.indices.astype(it, copy=False)
        data = np.ascontiguousarray(M.data, dtype=np.float64)
        costs.comm_bytes += (comm.Get_size() - 1) * (indptr.nbytes + indices.nbytes + data.nbytes)
    else:
        indptr = np.empty(shape[0] + 1, dtype=it)
        indices = np.empty(nnz, dtype=it)
        data = np.empty(nnz, dtype=np.float64)
    comm.Bcast([indptr, mt], root=root)
    comm.Bcast([indices, mt], root=root)
    comm.Bcast([data, MPI.DOUBLE], root=root)
    if me == root:
        return M
    out = sp.csr_matrix((data, indices, indptr), shape=shape)
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def merge(parts: list[sp.csr_matrix], backend: str, threads: int) -> tuple[sp.csr_matrix, dict]:
    """Sum of same-shape CSR matrices with the hash kernel: [P_1 .. P_k] @ [I; ..; I]."""
    parts = [P for P in parts if P.nnz]
    if not parts:
        return None, {}
    if len(parts) == 1:
        return parts[0], {}
    n, m = parts[0].shape
    H = L.canonical(sp.hstack(parts, format="csr"))
    S = sp.csr_matrix((np.ones(m * len(parts)), np.tile(np.arange(m), len(parts)),
                       np.arange(m * len(parts) + 1)), shape=(m * len(parts), m))
    kb = backend if backend in ("native", "numba", "scipy") else "scipy"
    C, st = L.multiply(H, L.canonical(S), kb, threads)
    return C, {"merge_products": st.get("products", 0)}


def multiply_summa(A2: sp.csr_matrix, B2: sp.csr_matrix, grid: Grid, offs: dict,
                   backend: str, threads: int, costs: Costs, **kw) -> sp.csr_matrix:
    """Sparse SUMMA on 2D blocks A2 = A_ij, B2 = B_ij; returns C_ij (block-local indices)."""
    q = grid.q
    ro, ko, co = offs["rows"], offs["inner"], offs["cols"]
    nr = int(ro[grid.i + 1] - ro[grid.i])
    nc = int(co[grid.j + 1] - co[grid.j])
    parts = []
    for s in range(q):
        t0 = time.perf_counter()
        ks = int(ko[s + 1] - ko[s])
        As = _bcast_csr(grid.row_comm, A2 if grid.j == s else None, s, (nr, ks), costs)
        Bs = _bcast_csr(grid.col_comm, B2 if grid.i == s else None, s, (ks, nc), costs)
        t1 = time.perf_counter()
        costs.comm_s += t1 - t0
        P, st = L.multiply(As, Bs, backend, threads, **kw)
        costs.add_stats(st)
        parts.append(P)
        costs.compute_s += time.perf_counter() - t1
    t0 = time.perf_counter()
    C, st = merge(parts, backend, threads)
    costs.compute_s += time.perf_counter() - t0
    costs.add_stats(st)
    if C is None:
        C = sp.csr_matrix((nr, nc), dtype=np.float64)
    return C


def blocks_to_1d(C2: sp.csr_matrix, grid: Grid, offs: dict, shape: tuple[int, int],
                 row_offsets: np.ndarray, costs: Costs) -> DistCSR:
    """Return the 2D result blocks to 1D row blocks (row_offsets) as a DistCSR."""
    comm = grid.comm
    t0 = time.perf_counter()
    coo = C2.tocoo()
    gi = coo.row.astype(np.int64) + offs["rows"][grid.i]
    gj = coo.col.astype(np.int64) + offs["cols"][grid.j]
    dest = np.searchsorted(row_offsets, gi, side="right") - 1
    ri, rj, rv = _route_entries(comm, dest, gi, gj, coo.data, costs)
    costs.comm_s += time.perf_counter() - t0
    r = comm.Get_rank()
    lo, hi = int(row_offsets[r]), int(row_offsets[r + 1])
    loc = sp.csr_matrix((rv, (ri - lo, rj)), shape=(hi - lo, shape[1]))
    loc.sum_duplicates()  # entries are distinct; this sorts the columns
    return DistCSR(comm, loc, shape, row_offsets=row_offsets)


def grid_offsets(A: DistCSR, B: DistCSR, q: int) -> dict:
    """Block boundaries of the 2D layout: rows of A, inner dimension, columns of B."""
    return {"rows": block_offsets(A.shape[0], q), "inner": block_offsets(A.shape[1], q),
            "cols": block_offsets(B.shape[1], q)}


# ------------------------------------------------------- 1D with a cached communication plan
class RowFetch:
    """The fetch of rows ``rows`` of B made once: whom to ask, what to serve, the pattern got.

    The first exchange (collective) moves the requests and the rows' structure (lengths and
    columns); :meth:`values` then moves the values only, one Alltoallv of ``dtype`` bytes, for
    every later product with B's pattern unchanged (the cached 1D communication plan).
    """

    def __init__(self, B: DistCSR, rows: np.ndarray, costs: Costs):
        comm = B.comm
        t0 = time.perf_counter()
        req_count, got, lens, self.serve, self.send_count = _serve(B, rows, costs)
        # structure: per peer [lengths | columns]
        cols = B.local.indices[self.serve].astype(np.int64)
        send, send_count = _pack_by_peer(got, lens, self.send_count, [cols])
        recv, _ = _alltoallv_i64(comm, send, send_count, costs)
        lens, (self.indices,), self.recv_count = _unpack_by_peer(recv, req_count, 1)
        self.indptr = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
        self.shape = (int(rows.size), int(B.shape[1]))
        self.comm = comm
        self.served_nnz = int(B.local.indptr[-1])
        costs.comm_s += time.perf_counter() - t0

    def values(self, B: DistCSR, dtype: np.dtype, costs: Costs) -> np.ndarray:
        """The fetched rows' values in ``dtype`` (collective; B's pattern must be unchanged)."""
        if int(B.local.indptr[-1]) != self.served_nnz:
            raise ValueError("B's pattern changed since the plan was made")
        t0 = time.perf_counter()
        dtype = np.dtype(dtype)
        send = np.ascontiguousarray(B.local.data[self.serve], dtype=dtype)
        recv = np.empty(int(self.recv_count.sum()), dtype=dtype)
        w = dtype.itemsize
        r = self.comm.Get_rank()
        self.comm.Alltoallv([send.view(np.uint8), self.send_count * w,
                             _displ(self.send_count) * w, MPI.BYTE],
                            [recv.view(np.uint8), self.recv_count * w,
                             _displ(self.recv_count) * w, MPI.BYTE])
        costs.comm_bytes += w * int(self.send_count.sum() - self.send_count[r])
        costs.comm_s += time.perf_counter() - t0
        return recv

    def fetch(self, B: DistCSR, dtype: np.dtype, costs: Costs) -> sp.csr_matrix:
        """The fetched rows as CSR (global columns) with values of ``dtype`` (collective)."""
        m = sp.csr_matrix((self.values(B, dtype, costs), self.indices, self.indptr),
                          shape=self.shape, copy=False)
        m.has_canonical_format = True  # B's rows are canonical
        return m


class Plan1D:
    """The distributed 1D ``C<M> = A B`` made once: the rows of B to fetch, their pattern, and
    the local symbolic product; :meth:`run` exchanges values and runs the numeric phase only.

    ``mask`` is a DistCSR with A's row partition (or None).
    """

    def __init__(self, A: DistCSR, B: DistCSR, mask: DistCSR | None, complement: bool,
                 threads: int, costs: Costs):
        from . import semiring as S

        Al = A.local
        self.needed = np.unique(Al.indices)
        self.fetch = RowFetch(B, self.needed, costs)
        t0 = time.perf_counter()
        # A's columns renumbered into the fetched rows' order: pattern only, kept for reuse
        self._ar_indices = np.searchsorted(self.needed, Al.indices)
        Ar = self._renumber(Al)
        Bf = sp.csr_matrix((np.zeros(self.fetch.indices.size, np.int8), self.fetch.indices,
                            self.fetch.indptr), shape=self.fetch.shape, copy=False)
        self.a_pattern = (Al.indptr.copy(), Al.indices.copy())
        self.local = S.symbolic(Ar, Bf, None if mask is None else mask.local, complement,
                                threads)
        self.shape = (A.shape[0], B.shape[1])
        self.row_offsets = A.row_offsets
        self.col_offsets = B.col_offsets if A.shape[0] != B.shape[1] else A.row_offsets
        self.threads = threads
        costs.compute_s += time.perf_counter() - t0

    def _renumber(self, Al: sp.csr_matrix) -> sp.csr_matrix:
        """A's block with its columns renumbered (its pattern is the plan's: checked)."""
        Ar = sp.csr_matrix((Al.data, self._ar_indices, Al.indptr),
                           shape=(Al.shape[0], self.needed.size))
        Ar.has_canonical_format = True
        return Ar

    def run(self, A: DistCSR, B: DistCSR, semiring: str, dtype: np.dtype,
            costs: Costs, into: np.ndarray | None = None) -> sp.csr_matrix | np.ndarray:
        """This rank's rows of C (collective), or their values written into ``into``."""
        from . import semiring as S

        Al = A.local
        if not (np.array_equal(Al.indptr, self.a_pattern[0])
                and np.array_equal(Al.indices, self.a_pattern[1])):
            raise ValueError("A's pattern changed since the plan was made")
        Bf = self.fetch.fetch(B, dtype, costs)
        t0 = time.perf_counter()
        Ar = self._renumber(Al.astype(dtype, copy=False))
        # the local plan recorded Bf's pattern: the fetched structure, unchanged by construction
        C = S.numeric(self.local, Ar, Bf, semiring, dtype, self.threads, check=False, into=into)
        costs.compute_s += time.perf_counter() - t0
        return C


def phase_bounds(A_local: sp.csr_matrix, Bf: sp.csr_matrix, ncols_index: np.ndarray,
                 phases: int) -> np.ndarray:
    """Row boundaries cutting A's local rows into ``phases`` chunks of equal scalar products
    (a chunk's output is bounded by its products, so each holds about 1/phases of C)."""
    lens = np.diff(Bf.indptr).astype(np.int64)[ncols_index]
    rows = np.repeat(np.arange(A_local.shape[0]), np.diff(A_local.indptr))
    work = np.bincount(rows, weights=lens, minlength=A_local.shape[0])
    cum = np.concatenate(([0.0], np.cumsum(work)))
    targets = cum[-1] * np.arange(1, phases) / phases
    cuts = np.searchsorted(cum, targets, side="left")
    return np.unique(np.concatenate(([0], np.clip(cuts, 0, A_local.shape[0]),
                                     [A_local.shape[0]])))


def multiply_1d_phased(A: DistCSR, B: DistCSR, backend: str, threads: int, costs: Costs,
                       phases: int, consume) -> int:
    """C = A B with 1D row blocks in ``phases`` memory-bounded phases (collective).

    B's needed rows are fetched once; then each phase multiplies a chunk of A's local rows
    (equal scalar products per chunk) and hands ``consume(first_local_row, C_chunk)`` its rows
    of C, which it may keep or drop, so at most one chunk of C is held at a time. Returns the
    largest chunk's bytes (indptr, indices and values).
    """
    Al = A.local
    needed = np.unique(Al.indices)
    Bf = fetch_rows(B, needed, costs)
    cols = np.searchsorted(needed, Al.indices)
    bounds = phase_bounds(Al, Bf, cols, phases)
    peak = 0
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        t0 = time.perf_counter()
        p0, p1 = int(Al.indptr[r0]), int(Al.indptr[r1])
        Ar = sp.csr_matrix((Al.data[p0:p1], cols[p0:p1], Al.indptr[r0:r1 + 1] - p0),
                           shape=(int(r1 - r0), needed.size))
        Ar.has_canonical_format = True
        C, st = L.multiply(Ar, Bf, backend, threads)
        costs.compute_s += time.perf_counter() - t0
        costs.add_stats(st)
        peak = max(peak, C.indptr.nbytes + C.indices.nbytes + C.data.nbytes)
        consume(int(r0), C)
        del C
    return peak
