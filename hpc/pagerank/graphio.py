"""Graphs for hpc.pagerank: SNAP edge lists, Matrix Market, Kronecker, and an HDF5 cache.

Every source ends as a :class:`Graph`: vertices relabelled 0..n-1 in ascending order of their
original ids, 1D block-partitioned over the ranks (``hpc.core.partition.block_offsets``), with
both the out-edges (for walks and pushes) and the in-edges (for pull-based PageRank) of the
vertices each rank owns. Edges follow networkx's ``DiGraph``: duplicates collapse into one,
self-loops stay.

SNAP files are read in parallel: each rank parses the lines that start in its byte range of
the file. A malformed line is an error on the rank that sees it; ``hpc.core.runtime.collective``
makes every rank exit 2 with the first bad line's number.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import UsageError, collective
from hpc.core.errors import InputTypeError
from hpc.core.exchange import exscan as exscan_sum
from hpc.core.partition import block_offsets, block_owner, block_range
from hpc.core.partition import exchange_by_owner as exchange

CACHE_FORMAT = "hpc.pagerank.graph/2"   # /2: the input and content fingerprints
MAX_ID = np.iinfo(np.int64).max
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LANES = (np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344))
_HASH_BLOCK = 8 << 20     # bytes per block of a file fingerprint (fixed: independent of p)


def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (vectorised, wrapping uint64 arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@dataclass
class Graph:
    """A directed graph, 1D block-partitioned by vertex over ``comm``.

    Rank r owns vertices [lo, hi) = [offsets[r], offsets[r+1]) and stores, with global
    vertex numbers in the index arrays:
    - ``out_indptr``/``out_indices``: out-neighbours of its vertices (sorted per row);
    - ``in_indptr``/``in_indices``: in-neighbours of its vertices (sorted per row);
    - ``ids``: the original ids of its vertices (ascending across the ranks).
    """

    comm: object
    n: int
    m: int
    offsets: np.ndarray
    ids: np.ndarray
    out_indptr: np.ndarray
    out_indices: np.ndarray
    in_indptr: np.ndarray
    in_indices: np.ndarray
    source: str = ""
    info: dict = field(default_factory=dict)
    out_weights: np.ndarray | None = None   # edge weights aligned with out_indices (None: all 1)
    in_weights: np.ndarray | None = None    # the same weights aligned with in_indices

    @property
    def weighted(self) -> bool:
        return self.out_weights is not None

    @property
    def lo(self) -> int:
        return int(self.offsets[self.comm.Get_rank()])

    @property
    def hi(self) -> int:
        return int(self.offsets[self.comm.Get_rank() + 1])

    @property
    def nlocal(self) -> int:
        return self.hi - self.lo

    @property
    def outdeg(self) -> np.ndarray:
        return np.diff(self.out_indptr)

    @property
    def out_strength(self) -> np.ndarray:
        """Out-degree (unweighted) or sum of the out-edge weights of this rank's vertices;
        0 marks a dangling vertex (networkx: a vertex whose out-weights sum to 0)."""
        if self.out_weights is None:
            return self.outdeg.astype(np.float64)
        return np.add.reduceat(np.append(self.out_weights, 0.0), self.out_indptr[:-1]) * \
            (self.outdeg > 0)

    def owner(self, v: np.ndarray) -> np.ndarray:
        """Owning rank of global vertex numbers."""
        return np.searchsorted(self.offsets, np.asarray(v, dtype=np.int64), side="right") - 1

    def lookup(self, original_ids: np.ndarray) -> np.ndarray:
        """Global vertex numbers of original ids; -1 where an id is not a vertex (collective)."""
        q = np.asarray(original_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, q)
        hit = (pos < self.ids.size)
        hit[hit] = self.ids[pos[hit]] == q[hit]
        local = np.where(hit, pos + self.lo, -1).astype(np.int64)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.MAX)
        return out

    def original_ids(self, v: np.ndarray) -> np.ndarray:
        """Original ids of global vertex numbers (collective; every rank gets them all)."""
        v = np.asarray(v, dtype=np.int64)
        mine = (v >= self.lo) & (v < self.hi)
        local = np.full(v.shape, -1, dtype=np.int64)
        local[mine] = self.ids[v[mine] - self.lo]
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.MAX)
        return out


# --------------------------------------------------------------------------------------------
# fingerprints: what proves that a cache or an index belongs to its input
# --------------------------------------------------------------------------------------------
def content_hash(g: Graph) -> str:
    """A fingerprint of the graph itself (collective): n, m, the original ids and the edge
    set, independent of the number of ranks and of how the graph was read.

    Every edge (u, v) and every vertex (v, id) is hashed on its own (splitmix64 in two
    independent lanes); the sums of the hashes modulo 2^64 over all ranks (a multiset hash,
    order-free, so any block partition gives the same value) and n, m go through SHA-256.
    A reversed, relabelled or re-weighted graph with the same counts gets another value.
    """
    v = np.arange(g.lo, g.hi, dtype=np.int64).astype(np.uint64)
    src = np.repeat(v, g.outdeg)
    dst = g.out_indices.astype(np.uint64)
    ids = np.asarray(g.ids, dtype=np.int64).astype(np.uint64)
    wbits = (np.ascontiguousarray(g.out_weights, dtype=np.float64).view(np.uint64)
             if g.weighted else np.uint64(0))
    local = np.zeros(4, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, key in enumerate(_LANES):
            local[i] = mix64(mix64(mix64(src ^ key) + dst) ^ wbits).sum(dtype=np.uint64)
            local[2 + i] = mix64(mix64(v ^ ~key) + ids).sum(dtype=np.uint64)
    total = np.empty_like(local)
    g.comm.Allreduce(local, total, op=MPI.SUM)   # uint64 sums wrap modulo 2^64, as wanted
    text = f"{g.n}:{g.m}:{int(g.weighted)}:" + ":".join(f"{int(w):016x}" for w in total)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_fingerprint(path: str, comm) -> str:
    """SHA-256 over the bytes of a file (collective, each rank hashes every p-th block of
    ``_HASH_BLOCK`` bytes; the digest does not depend on the number of ranks)."""
    p, r = comm.Get_size(), comm.Get_rank()
    size = os.path.getsize(path)
    nblocks = -(-size // _HASH_BLOCK)
    mine = []
    with open(path, "rb") as f:
        for b in range(r, nblocks, p):
            f.seek(b * _HASH_BLOCK)
            mine.append((b, hashlib.sha256(f.read(_HASH_BLOCK)).digest()))
    parts = comm.allgather(mine)
    h = hashlib.sha256(f"{size}:".encode())
    for _, d in sorted(x for part in parts for x in part):
        h.update(d)
    return h.hexdigest()[:32]


def input_key(comm, graph: str | None, generate: str | None, seed: int,
              weights: bool = False, undirected: bool = False) -> str:
    """What a graph cache was built from (collective): the file's format and bytes, or the
    generator, its parameters and seed, with the cache format and the options that shape
    the graph (weights, undirected)."""
    opts = f"weights={int(weights)};undirected={int(undirected)}"
    if generate is not None:
        return f"{CACHE_FORMAT};generate={generate};seed={int(seed)};{opts}"
    kind = ("hdf5" if _is_hdf5(graph) else
            "mtx" if graph.endswith(".mtx") or graph.endswith(".mtx.gz") else "snap")
    return f"{CACHE_FORMAT};{kind};sha256={file_fingerprint(graph, comm)};{opts}"


# --------------------------------------------------------------------------------------------
# building a Graph from an edge list that is spread arbitrarily over the ranks
# --------------------------------------------------------------------------------------------
def from_edges(comm, n: int, src: np.ndarray, dst: np.ndarray, ids_local: np.ndarray,
               source: str = "", weights: np.ndarray | None = None,
               pos: np.ndarray | None = None) -> Graph:
    """The partitioned graph of global edges (src, dst) in 0..n-1, duplicates collapsed.

    ``weights``: one float per edge (a weighted graph); of duplicate edges the one with the
    largest ``pos`` (its place in the input, as networkx's last ``add_edge`` wins) keeps its
    weight. Without ``pos`` the weights of duplicates must agree (any is kept).
    """
    p, r = comm.Get_size(), comm.Get_rank()
    offsets = block_offsets(n, p)
    lo, hi = int(offsets[r]), int(offsets[r + 1])
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    out_w = in_w = None
    # Out side: every edge goes to the owner of its source; unique keys sort rows and columns.
    if weights is None:
        s, d = exchange(comm, block_owner(src, n, p), [src, dst])
        key = np.unique(s * np.int64(n) + d) if n > 0 else np.empty(0, np.int64)
    else:
        w = np.asarray(weights, dtype=np.float64)
        at = np.zeros(src.size, np.int64) if pos is None else np.asarray(pos, dtype=np.int64)
        s, d, w, at = exchange(comm, block_owner(src, n, p), [src, dst, w, at])
        k = s * np.int64(n) + d
        order = np.lexsort((at, k))
        k, w = k[order], w[order]
        last = np.ones(k.size, dtype=bool)     # the last of every run of equal keys
        last[:-1] = k[1:] != k[:-1]
        key, out_w = k[last], w[last]
    s, d = np.divmod(key, np.int64(max(n, 1)))
    out_indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(s - lo, minlength=hi - lo), out=out_indptr[1:])
    out_indices = d
    # In side: the collapsed edges go to the owner of their destination.
    if out_w is None:
        s2, d2 = exchange(comm, block_owner(d, n, p), [s, d])
    else:
        s2, d2, w2 = exchange(comm, block_owner(d, n, p), [s, d, out_w])
    order = np.lexsort((s2, d2))
    in_indices = s2[order]
    if out_w is not None:
        in_w = w2[order]
    in_indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(d2 - lo, minlength=hi - lo), out=in_indptr[1:])
    m = int(comm.allreduce(int(key.size), op=MPI.SUM))
    return Graph(comm, int(n), m, offsets, np.asarray(ids_local, dtype=np.int64),
                 out_indptr, out_indices, in_indptr, in_indices, source,
                 out_weights=out_w, in_weights=in_w)


def both_ways(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None,
              pos: np.ndarray | None = None):
    """Every edge in both directions (an undirected graph as networkx's ``to_directed`` and
    igraph see it); a reversed copy keeps its edge's weight and place in the input."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    rev = src != dst                      # a self-loop stays one directed edge
    out = [np.concatenate([src, dst[rev]]), np.concatenate([dst, src[rev]])]
    out.append(None if weights is None else np.concatenate([weights, np.asarray(weights)[rev]]))
    out.append(None if pos is None else np.concatenate([pos, np.asarray(pos)[rev]]))
    return tuple(out)


def relabel(comm, src_raw: np.ndarray, dst_raw: np.ndarray):
    """Map arbitrary non-negative ids to 0..n-1 in ascending order (collective).

    Returns (n, src, dst, ids_local): the edges relabelled, and the original ids of this
    rank's block of vertices (``block_range(n, p, rank)``). Distributed, no rank holds the
    whole id set: the distinct ids are routed to owners by value range (splitters from a
    sample, as in sample sort), each owner numbers its sorted share after the shares of the
    ranks before it, answers the ranks that asked, and the sorted ids move to the vertex
    blocks.
    """
    src_raw = np.asarray(src_raw, dtype=np.int64)
    dst_raw = np.asarray(dst_raw, dtype=np.int64)
    local = np.unique(np.concatenate([src_raw, dst_raw]))
    p, r = comm.Get_size(), comm.Get_rank()
    if p == 1:
        return (int(local.size), np.searchsorted(local, src_raw),
                np.searchsorted(local, dst_raw), local)
    # splitters: p - 1 quantiles of a sample of every rank's distinct ids
    k = min(local.size, 32 * p)
    sample = local[np.linspace(0, local.size - 1, k).astype(np.int64)] if k else local[:0]
    allsamp = np.sort(np.concatenate(comm.allgather(sample)))
    if allsamp.size:
        split = allsamp[(np.arange(1, p) * allsamp.size) // p]
    else:
        split = np.zeros(p - 1, dtype=np.int64)
    owner = np.searchsorted(split, local, side="right")
    got, asker = exchange(comm, owner, [local, np.full(local.size, r, dtype=np.int64)])
    mine = np.unique(got)                       # this owner's share, sorted
    base = exscan_sum(comm, int(mine.size))
    n = int(comm.allreduce(int(mine.size), op=MPI.SUM))
    # answer: (id, label) back to each rank that asked
    qid, lab = exchange(comm, asker, [got, base + np.searchsorted(mine, got)])
    order = np.argsort(qid, kind="stable")
    labels = np.empty(local.size, dtype=np.int64)
    labels[np.searchsorted(local, qid[order])] = lab[order]
    # the sorted ids, held by value range, to the vertex blocks [lo, hi)
    lo, hi = block_range(n, p, r)
    dst_off = block_offsets(n, p)
    starts = np.array(comm.allgather(base), dtype=np.int64)
    src_off = np.append(starts, n)
    blo, bhi = base, base + mine.size
    sc = np.maximum(0, np.minimum(bhi, dst_off[1:]) - np.maximum(blo, dst_off[:-1])).astype(np.int64)
    rc = np.maximum(0, np.minimum(hi, src_off[1:]) - np.maximum(lo, src_off[:-1])).astype(np.int64)
    ids_local = np.empty(hi - lo, dtype=np.int64)
    comm.Alltoallv([np.ascontiguousarray(mine), sc, np.cumsum(sc) - sc, MPI.INT64_T],
                   [ids_local, rc, np.cumsum(rc) - rc, MPI.INT64_T])
    pos_s = np.searchsorted(local, src_raw)
    pos_d = np.searchsorted(local, dst_raw)
    return n, labels[pos_s], labels[pos_d], ids_local


# --------------------------------------------------------------------------------------------
# SNAP edge lists
# --------------------------------------------------------------------------------------------
_EDGE = re.compile(rb"(?m)^[ \t]*(\d+)[ \t]+(\d+)[ \t\r]*$")
_SKIP = re.compile(rb"(?m)^[ \t]*(?:[#%].*)?\r?$")
_EDGE1 = re.compile(rb"[ \t]*(\d+)[ \t]+(\d+)[ \t\r]*")
_SKIP1 = re.compile(rb"[ \t]*(?:[#%].*)?\r?")


_WEDGE = re.compile(rb"(?m)^[ \t]*(\d+)[ \t]+(\d+)[ \t]+([-+0-9.eEinfINFaA]+)[ \t\r]*$")
_WEDGE1 = re.compile(rb"[ \t]*(\d+)[ \t]+(\d+)[ \t]+([-+0-9.eEinfINFaA]+)[ \t\r]*")


def parse_weighted_edges(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, str]:
    """(src, dst, weight, bad_line_index or -1, reason) of a chunk of SNAP text with a third
    column of edge weights (finite, >= 0)."""
    empty = np.empty(0, np.int64)
    rows = _WEDGE.findall(data)
    ok = len(rows) + len(_SKIP.findall(data)) == data.count(b"\n") + 1
    if ok and rows:
        raw = np.array(rows)
        try:
            w = raw[:, 2].astype(np.float64)
            fits = raw[:, :2].dtype.itemsize < 19 or all(int(v) <= MAX_ID for v in raw[:, :2].ravel())
        except ValueError:
            w, fits = np.array([np.nan]), True
        if fits and np.isfinite(w).all() and (w >= 0).all():
            return raw[:, 0].astype(np.int64), raw[:, 1].astype(np.int64), w, -1, ""
        ok = False
    if ok:
        return empty, empty, np.empty(0), -1, ""
    for i, line in enumerate(data.split(b"\n")):     # find the first bad line
        if _SKIP1.fullmatch(line):
            continue
        mt = _WEDGE1.fullmatch(line)
        text = line.decode("utf-8", "replace").strip()[:60]
        if mt is None:
            return empty, empty, np.empty(0), i, \
                f"expected two non-negative integer ids and a weight, got {text!r}"
        if max(int(mt.group(1)), int(mt.group(2))) > MAX_ID:
            return empty, empty, np.empty(0), i, "vertex id exceeds int64"
        if _bad_weight(mt.group(3)):
            return empty, empty, np.empty(0), i, \
                f"the weight must be a finite number >= 0, got {mt.group(3).decode()!r}"
    return empty, empty, np.empty(0), 0, "unparsable weighted edge list"


def _bad_weight(text: bytes) -> bool:
    try:
        w = float(text)
    except ValueError:
        return True
    return not (np.isfinite(w) and w >= 0.0)


def _byte_share(path: str, size: int, p: int, r: int) -> bytes:
    """The lines whose first byte lies in this rank's block of the file's bytes."""
    lo, hi = block_range(size, p, r)
    if lo >= hi:
        return b""
    with open(path, "rb") as f:
        f.seek(max(lo - 1, 0))
        buf = f.read(hi - max(lo - 1, 0))
        if lo > 0:  # the line under way at lo belongs to the rank before
            nl = buf.find(b"\n")
            if nl < 0:
                return b""
            buf = buf[nl + 1:]
            if nl + 1 > hi - lo:  # no line starts in [lo, hi)
                return b""
        if buf and not buf.endswith(b"\n"):
            tail = []
            while True:
                more = f.read(1 << 16)
                if not more:
                    break
                k = more.find(b"\n")
                if k >= 0:
                    tail.append(more[:k + 1])
                    break
                tail.append(more)
            buf += b"".join(tail)
    return buf


def _first_bad_line(data: bytes) -> tuple[int, str]:
    for i, line in enumerate(data.split(b"\n")):
        if _SKIP1.fullmatch(line) or _EDGE1.fullmatch(line):
            continue
        text = line.decode("utf-8", "replace").strip()
        return i, f"expected two non-negative integer ids, got {text[:60]!r}"
    return -1, ""


def parse_edges_py(data: bytes) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(src, dst, bad_line_index or -1, reason) of a chunk of SNAP text (pure Python)."""
    pairs = _EDGE.findall(data)
    total = data.count(b"\n") + 1
    if len(pairs) + len(_SKIP.findall(data)) != total:
        bad, why = _first_bad_line(data)
        return np.empty(0, np.int64), np.empty(0, np.int64), bad, why
    if not pairs:
        return np.empty(0, np.int64), np.empty(0, np.int64), -1, ""
    raw = np.array(pairs)
    if raw.dtype.itemsize >= 19:  # may not fit int64: find the line
        for i, line in enumerate(data.split(b"\n")):
            mt = _EDGE1.fullmatch(line)
            if mt and max(int(mt.group(1)), int(mt.group(2))) > MAX_ID:
                return np.empty(0, np.int64), np.empty(0, np.int64), i, "vertex id exceeds int64"
    e = raw.astype(np.int64)
    return np.ascontiguousarray(e[:, 0]), np.ascontiguousarray(e[:, 1]), -1, ""


def parse_edges(data: bytes) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Native parser when built (fast), else the Python one; both give the same answer."""
    try:
        from hpc import _core

        k = _core.pagerank
    except (ImportError, AttributeError):
        return parse_edges_py(data)
    src, dst, bad, code = k.parse_edges(data)
    if bad < 0:
        return src, dst, -1, ""
    line = data.split(b"\n", int(bad) + 1)[int(bad)]
    text = line.decode("utf-8", "replace").strip()
    why = ("vertex id exceeds int64" if code == 2
           else f"expected two non-negative integer ids, got {text[:60]!r}")
    return src, dst, int(bad), why


def read_snap(path: str, comm, weights: bool = False, undirected: bool = False) -> Graph:
    """Read a SNAP edge list in parallel (each rank its byte range) into a Graph.

    ``weights``: the third column of every line is the edge's weight (of duplicate edges the
    last line's counts); ``undirected``: every edge also the other way."""
    p, r = comm.Get_size(), comm.Get_rank()
    with collective(comm):
        try:
            size = os.path.getsize(path)
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"--graph {path}: cannot read ({exc.strerror or exc})") from None
    from hpc.core.fileio import compression, line_share

    # .gz/.bz2/.xz (by their first bytes): no byte offsets, each rank decompresses its lines
    data = line_share(path, p, r) if compression(path) else _byte_share(path, size, p, r)
    nlines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    first = exscan_sum(comm, nlines)
    w = pos = None
    with collective(comm):
        if weights:
            src, dst, w, bad, why = parse_weighted_edges(data)
        else:
            src, dst, bad, why = parse_edges(data)
        if bad >= 0:
            raise UsageError(f"{path}, line {first + bad + 1}: {why}")
    del data
    if weights:   # the edges' order in the file: the last of duplicate lines wins
        pos = exscan_sum(comm, src.size) + np.arange(src.size, dtype=np.int64)
    n, s, d, ids_local = relabel(comm, src, dst)
    if undirected:
        s, d, w, pos = both_ways(s, d, w, pos)
    return from_edges(comm, n, s, d, ids_local, source=f"snap:{path}", weights=w, pos=pos)


# --------------------------------------------------------------------------------------------
# Matrix Market and Kronecker (through the sparse core), and the HDF5 cache
# --------------------------------------------------------------------------------------------
def read_mtx(path: str, comm, weights: bool = False, undirected: bool = False) -> Graph:
    """A Matrix Market file as a graph: a nonzero A[i, j] is the edge i -> j (with
    ``weights``, of weight A[i, j]; else values ignored).

    Vertices are 0..n-1 for an n x n matrix (isolated ones included).
    """
    from hpc.sparse.mmio import read_matrix

    with collective(comm):
        try:
            A = read_matrix(path, comm)
        except UsageError:
            raise
        except (OSError, ValueError) as exc:
            raise UsageError(f"--graph {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    return from_distcsr(A, source=f"mtx:{path}", what=f"--graph {path}", weights=weights,
                        undirected=undirected)


def _edge_weights(values: np.ndarray, what: str) -> np.ndarray:
    """Edge weights as float64, each finite and >= 0 (a UsageError on this rank otherwise)."""
    w = np.asarray(values, dtype=np.float64)
    if w.size and not (np.isfinite(w).all() and (w >= 0).all()):
        bad = w[~(np.isfinite(w) & (w >= 0))][0]
        raise UsageError(f"{what}: edge weights must be finite and >= 0, got {bad}")
    return w


def from_distcsr(A, source: str = "", what: str = "G", weights: bool = False,
                 undirected: bool = False) -> Graph:
    """The graph of a distributed adjacency matrix (an ``hpc.sparse.DistCSR``, any row
    blocks): a nonzero A[i, j] is the edge i -> j (its weight with ``weights``, else values
    ignored; ``undirected``: also j -> i); vertices 0..n-1 (collective over ``A.comm``)."""
    comm = A.comm
    nr, nc = A.shape
    if nr != nc:
        raise UsageError(f"{what}: a graph needs a square matrix, got {nr} x {nc}")
    loc = A.local.tocoo()
    keep = loc.data != 0
    src = loc.row[keep].astype(np.int64) + int(A.row_offsets[comm.Get_rank()])
    dst = loc.col[keep].astype(np.int64)
    w = None
    if weights:
        with collective(comm):
            w = _edge_weights(loc.data[keep], what)
    if undirected:
        src, dst, w, _ = both_ways(src, dst, w)
    lo, hi = block_range(nr, comm.Get_size(), comm.Get_rank())
    return from_edges(comm, nr, src, dst, np.arange(lo, hi, dtype=np.int64),
                      source=source or f"DistCSR {nr}x{nc}", weights=w)


def from_scipy(A, comm, what: str = "G", weights: bool = False,
               undirected: bool = False) -> Graph:
    """The graph of a SciPy sparse adjacency matrix given identically on every rank: a
    nonzero A[i, j] is the edge i -> j (its weight with ``weights``, else values ignored;
    stored zeros are no edge; ``undirected``: also j -> i); vertices 0..n-1, isolated ones
    included. Each rank takes its block of rows (collective)."""
    if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
        raise UsageError(f"{what}: an adjacency matrix must be square, got shape {A.shape}")
    nr, nc = A.shape
    lo, hi = block_range(nr, comm.Get_size(), comm.Get_rank())
    B = sp.csr_matrix(A)
    B.sum_duplicates()
    B = B[lo:hi].tocoo()
    keep = B.data != 0
    src, dst = B.row[keep].astype(np.int64) + lo, B.col[keep].astype(np.int64)
    w = None
    if weights:
        with collective(comm):
            w = _edge_weights(B.data[keep], what)
    if undirected:
        src, dst, w, _ = both_ways(src, dst, w)
    return from_edges(comm, nr, src, dst, np.arange(lo, hi, dtype=np.int64),
                      source=f"scipy {nr}x{nc}", weights=w)


def from_edge_array(E: np.ndarray, comm, what: str = "G", weights: bool = False,
                    undirected: bool = False) -> Graph:
    """The graph of an (m, 2) array of edges (source, target) given identically on every rank
    (with ``weights``: (m, 3), the third column the weight; of duplicate edges the last row
    counts): vertices 0..n-1 with n = the largest id + 1 (ids that appear in no edge are
    isolated vertices); duplicates collapse, self-loops stay; ``undirected``: every edge
    also the other way. Each rank takes its block of edges."""
    E = np.asarray(E)
    cols = 3 if weights else 2
    if E.ndim != 2 or E.shape[1] != cols:
        raise UsageError(f"{what}: an edge array must have shape (m, {cols}), got {E.shape}")
    if E.shape[0] == 0:
        raise UsageError(f"{what}: the edge array is empty (the graph has no vertices)")
    w = None
    if weights:
        w = _edge_weights(E[:, 2], what)
        ends = E[:, :2]
        if not np.array_equal(ends, np.round(ends)) or not np.isfinite(ends).all():
            raise InputTypeError(f"{what}: the first two columns must hold integer ids")
        E = ends.astype(np.int64)
    if not np.issubdtype(E.dtype, np.integer):
        raise InputTypeError(f"{what}: an edge array must hold integers, got dtype {E.dtype}")
    lowest = int(E.min())
    if lowest < 0:
        raise UsageError(f"{what}: vertex ids must be non-negative, got {lowest}")
    if E.dtype == np.uint64 and int(E.max()) > MAX_ID:
        raise UsageError(f"{what}: vertex id {int(E.max())} exceeds int64")
    n = int(E.max()) + 1
    lo, hi = block_range(E.shape[0], comm.Get_size(), comm.Get_rank())
    vlo, vhi = block_range(n, comm.Get_size(), comm.Get_rank())
    src, dst = E[lo:hi, 0].astype(np.int64), E[lo:hi, 1].astype(np.int64)
    pos = np.arange(lo, hi, dtype=np.int64)
    if w is not None:
        w = w[lo:hi]
    if undirected:
        src, dst, w, pos = both_ways(src, dst, w, pos)
    return from_edges(comm, n, src, dst, np.arange(vlo, vhi, dtype=np.int64),
                      source=f"edge array {n} vertices", weights=w, pos=pos)


def parse_kron(spec: str) -> tuple[int, int]:
    """'kron:SCALE:EDGEFACTOR' -> (scale, edgefactor)."""
    parts = spec.split(":")
    try:
        if len(parts) != 3 or parts[0] != "kron":
            raise ValueError
        scale, ef = int(parts[1]), int(parts[2])
        if not (1 <= scale <= 40 and ef >= 1):
            raise ValueError
    except ValueError:
        raise UsageError(f"--generate {spec!r}: expected kron:SCALE:EDGEFACTOR "
                         "(1 <= SCALE <= 40, EDGEFACTOR >= 1)") from None
    return scale, ef


def generate_kron(spec: str, seed: int, comm, undirected: bool = False) -> Graph:
    """Graph500 Kronecker graph (A, B, C = 0.57, 0.19, 0.19, vertices permuted); every
    vertex 0..2^SCALE-1 is kept, isolated ones included (``undirected``: both ways)."""
    from hpc.core.memory import require_memory
    from hpc.sparse.randgen import rmat_edges

    scale, ef = parse_kron(spec)
    n = 1 << scale
    p = comm.Get_size()
    # generator's edges + the two shuffled copies of src/dst + CSR arrays, int64
    require_memory(8 * 8 * ef * n / p + 8 * 4 * n / p, f"--generate {spec}", comm)
    src, dst = rmat_edges(scale, ef, seed, comm)
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    if undirected:
        src, dst, _, _ = both_ways(src, dst)
    lo, hi = block_range(n, p, comm.Get_rank())
    return from_edges(comm, n, src, dst, np.arange(lo, hi, dtype=np.int64),
                      source=f"{spec} seed {seed}{' undirected' if undirected else ''}")


def save_cache(g: Graph, path: str, input_fp: str = "") -> None:
    """Write the graph (original ids, out-degrees, out-neighbours) to HDF5 (collective), with
    the fingerprint of what it was built from (``input_fp``, see :func:`input_key`) and of
    its content (:func:`content_hash`)."""
    from hpc.core import h5io

    content = content_hash(g)
    data = {
        "/graph/vertex_ids": h5io.Distributed(g.ids),
        "/graph/out_degree": h5io.Distributed(g.outdeg.astype(np.int64)),
        "/graph/out_indices": h5io.Distributed(g.out_indices.astype(np.int64)),
    }
    if g.weighted:
        data["/graph/out_weights"] = h5io.Distributed(g.out_weights.astype(np.float64))
    h5io.write(path, g.comm, data,
               attrs={"/graph": {"format": CACHE_FORMAT, "n": g.n, "m": g.m, "source": g.source,
                                 "input": input_fp, "content": content,
                                 "weighted": int(g.weighted)}})
    g.info["content_hash"] = content
    g.comm.Barrier()  # rank 0 renames the file into place; nobody reads it before that


def _bad(path: str, field: str, why: str) -> UsageError:
    return UsageError(f"{path}: corrupt graph file: {field} {why}")


def load_cache(path: str, comm, what: str = "--graph", weights: bool | None = None) -> Graph:
    """Read a graph written by :func:`save_cache`; each rank reads only its own rows.

    Every field is checked (shapes, ranges, ascending ids, finite weights) and the graph read
    must have the stored content fingerprint: a corrupt file is a UsageError naming the file
    and field. ``weights``: None keeps the file's weights, False drops them, True requires
    them.
    """
    import h5py

    p, r = comm.Get_size(), comm.Get_rank()
    with collective(comm):
        try:
            with h5py.File(path, "r") as f:
                grp = f["graph"]
                if grp.attrs.get("format") != CACHE_FORMAT:
                    raise UsageError(f"{what} {path}: not an hpc.pagerank graph file of this "
                                     f"version (format {grp.attrs.get('format')!r}, expected "
                                     f"{CACHE_FORMAT!r})")
                n, m = int(grp.attrs["n"]), int(grp.attrs["m"])
                source = str(grp.attrs.get("source", path))
                content = str(grp.attrs.get("content", ""))
                if n < 0 or m < 0:
                    raise _bad(path, "n/m", f"negative ({n}, {m})")
                for name, size in (("vertex_ids", n), ("out_degree", n), ("out_indices", m)):
                    if grp[name].shape != (size,):
                        raise _bad(path, f"/graph/{name}", f"has shape {grp[name].shape}, "
                                   f"expected ({size},)")
                lo, hi = block_range(n, p, r)
                ids = grp["vertex_ids"][max(lo - 1, 0):hi].astype(np.int64)
                deg_before = grp["out_degree"][:lo].astype(np.int64)
                deg = grp["out_degree"][lo:hi].astype(np.int64)
                if (deg_before < 0).any() or (deg < 0).any():
                    raise _bad(path, "/graph/out_degree", "has negative entries")
                start = int(deg_before.sum())
                stop = start + int(deg.sum())
                if stop > m or (hi == n and stop != m):
                    raise _bad(path, "/graph/out_degree", f"does not sum to the {m} edges")
                dst = grp["out_indices"][start:stop].astype(np.int64)
                stored_w = bool(grp.attrs.get("weighted", 0))
                if weights and not stored_w:
                    raise UsageError(f"{what} {path}: --weights, but the graph file holds no "
                                     "edge weights")
                w = None
                if stored_w:
                    if grp["out_weights"].shape != (m,):
                        raise _bad(path, "/graph/out_weights", f"has shape "
                                   f"{grp['out_weights'].shape}, expected ({m},)")
                    w = grp["out_weights"][start:stop].astype(np.float64)
                    if not (np.isfinite(w).all() and (w >= 0).all()):
                        raise _bad(path, "/graph/out_weights", "has NaN, infinite or negative "
                                   "entries")
        except (OSError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"{what} {path}: cannot read graph data ({exc})") from None
        if ids.size and (ids.min() < 0 or (np.diff(ids) <= 0).any()):
            raise _bad(path, "/graph/vertex_ids", "are not non-negative and ascending")
        ids = ids[1:] if lo > 0 else ids
        if dst.size and (dst.min() < 0 or dst.max() >= n):
            raise _bad(path, "/graph/out_indices", f"has ids outside [0, {n})")
    src = np.repeat(np.arange(lo, hi, dtype=np.int64), deg)
    g = from_edges(comm, n, src, dst, ids, source=source, weights=w)
    with collective(comm):
        if g.m != m:
            raise _bad(path, "/graph/out_indices", f"holds {g.m} distinct edges, the file "
                       f"says m = {m}")
        got = content_hash(g)
        if got != content:
            raise _bad(path, "content", f"fingerprint {got} differs from the stored "
                       f"{content or 'none'}")
    if weights is False and g.weighted:    # the file's weights are not wanted
        g.out_weights = g.in_weights = None
    else:
        g.info["content_hash"] = content
    return g


def _is_hdf5(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _cached_input(cache: str) -> str | None:
    """The input fingerprint stored in a cache file, or None (unreadable, other format)."""
    import h5py

    try:
        with h5py.File(cache, "r") as f:
            a = f["graph"].attrs
            return str(a["input"]) if a.get("format") == CACHE_FORMAT else None
    except (OSError, KeyError):
        return None


def load_graph(comm, graph: str | None = None, generate: str | None = None, seed: int = 0,
               cache: str | None = None, weights: bool = False,
               undirected: bool = False) -> Graph:
    """The graph an app's options name: --graph PATH (SNAP text, .mtx, or HDF5 cache) or
    --generate kron:S:EF.

    With ``cache``, the cache is read when it was built from the same input: the same file
    bytes and format (SHA-256), or the same generator, parameters and seed; its content
    fingerprint is checked as it is read. A missing, foreign or corrupt cache is rebuilt from
    the input and rewritten; ``g.info["cache"]`` says which happened and why.

    ``weights``: edge weights from the third column of a SNAP file, the values of a Matrix
    Market file or the weights of an HDF5 graph file; ``undirected``: every edge both ways
    (not for an HDF5 graph file, which is used as it was stored).
    """
    if (graph is None) == (generate is None):
        raise UsageError("give exactly one of --graph PATH and --generate kron:SCALE:EDGEFACTOR")
    if generate is not None:
        parse_kron(generate)
    key, why = None, "no cache file yet"
    if cache:
        with collective(comm):
            if graph is not None and not os.path.isfile(graph):
                raise UsageError(f"--graph {graph}: cannot read (no such file)")
            try:
                key = input_key(comm, graph, generate, seed, weights, undirected)
            except OSError as exc:
                raise UsageError(f"--graph {graph}: cannot read ({exc.strerror or exc})") from None
        if os.path.exists(cache):
            stored = _cached_input(cache) if comm.Get_rank() == 0 else None
            stored = comm.bcast(stored, root=0)
            if stored == key:
                try:
                    g = load_cache(cache, comm, what="--cache", weights=weights)
                    g.info["cache"] = f"read {cache} (built from the same input)"
                    return g
                except UsageError as exc:
                    why = f"the cache is unusable ({exc})"
            elif stored is None:
                why = "the cache is not a graph cache of this version"
            else:
                why = "the cache was built from another input (fingerprints differ)"
    if generate is not None:
        if weights:
            raise UsageError("--weights needs a --graph file with weights (a Kronecker graph "
                             "has none)")
        g = generate_kron(generate, seed, comm, undirected)
    elif _is_hdf5(graph):
        if undirected:
            raise UsageError(f"--graph {graph}: an HDF5 graph file is used as stored; give "
                             "--undirected when it is built from the text or .mtx file")
        g = load_cache(graph, comm, weights=weights)
    elif graph.endswith((".mtx", ".mtx.gz", ".mtx.bz2", ".mtx.xz")):
        g = read_mtx(graph, comm, weights, undirected)
    else:
        g = read_snap(graph, comm, weights, undirected)
    if cache:
        save_cache(g, cache, key or "")
        g.info["cache"] = f"rebuilt {cache}: {why}"
    return g


_VALUE1 = re.compile(rb"[ \t]*(\d+)[ \t,]+([-+0-9.eEinfINFaA]+)[ \t\r]*")


def read_vertex_values(path: str, comm, what: str) -> dict:
    """A two-column file 'id value' ('#'/'%' comments) as {id: value} (every rank reads it;
    collective: a bad line is a UsageError naming the file and line on every rank). Of
    repeated ids the last line counts; values must be finite and >= 0."""
    out: dict = {}
    with collective(comm):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise UsageError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
        for i, line in enumerate(data.split(b"\n")):
            if _SKIP1.fullmatch(line):
                continue
            mt = _VALUE1.fullmatch(line)
            if mt is None or int(mt.group(1)) > MAX_ID or _bad_weight(mt.group(2)):
                text = line.decode("utf-8", "replace").strip()[:60]
                raise UsageError(f"{path}, line {i + 1}: expected a vertex id and a finite "
                                 f"value >= 0, got {text!r}")
            out[int(mt.group(1))] = float(mt.group(2))
    return out


def gather_csr(g: Graph, root: int = 0):
    """The whole adjacency matrix (scipy CSR, A[u, v] = 1, or the weight, for an edge
    u -> v) on ``root``."""
    comm = g.comm
    indptr = comm.gather(g.outdeg, root=root)
    indices = comm.gather(g.out_indices, root=root)
    weights = comm.gather(g.out_weights, root=root) if g.weighted else None
    if comm.Get_rank() != root:
        return None
    deg = np.concatenate(indptr)
    ptr = np.zeros(g.n + 1, dtype=np.int64)
    np.cumsum(deg, out=ptr[1:])
    ind = np.concatenate(indices)
    vals = np.concatenate(weights) if weights is not None else np.ones(ind.size)
    return sp.csr_matrix((vals, ind, ptr), shape=(g.n, g.n))


def gather_ids(g: Graph, root: int = 0) -> np.ndarray | None:
    parts = g.comm.gather(g.ids, root=root)
    return np.concatenate(parts) if parts is not None else None


__all__ = ["Graph", "from_edges", "from_scipy", "from_edge_array", "from_distcsr", "relabel", "read_snap", "read_mtx", "generate_kron",
           "save_cache", "load_cache", "load_graph", "content_hash", "file_fingerprint",
           "input_key", "mix64", "both_ways", "parse_weighted_edges", "read_vertex_values", "gather_csr", "gather_ids",
           "parse_edges", "parse_edges_py", "parse_kron"]
