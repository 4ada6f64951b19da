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
    local = np.zeros(4, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, key in enumerate(_LANES):
            local[i] = mix64(mix64(src ^ key) + dst).sum(dtype=np.uint64)
            local[2 + i] = mix64(mix64(v ^ ~key) + ids).sum(dtype=np.uint64)
    total = np.empty_like(local)
    g.comm.Allreduce(local, total, op=MPI.SUM)   # uint64 sums wrap modulo 2^64, as wanted
    text = f"{g.n}:{g.m}:" + ":".join(f"{int(w):016x}" for w in total)
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


def input_key(comm, graph: str | None, generate: str | None, seed: int) -> str:
    """What a graph cache was built from (collective): the file's format and bytes, or the
    generator, its parameters and seed, with the cache format (the options that shape it)."""
    if generate is not None:
        return f"{CACHE_FORMAT};generate={generate};seed={int(seed)}"
    kind = ("hdf5" if _is_hdf5(graph) else
            "mtx" if graph.endswith(".mtx") or graph.endswith(".mtx.gz") else "snap")
    return f"{CACHE_FORMAT};{kind};sha256={file_fingerprint(graph, comm)}"


# --------------------------------------------------------------------------------------------
# building a Graph from an edge list that is spread arbitrarily over the ranks
# --------------------------------------------------------------------------------------------
def from_edges(comm, n: int, src: np.ndarray, dst: np.ndarray, ids_local: np.ndarray,
               source: str = "") -> Graph:
    """The partitioned graph of global edges (src, dst) in 0..n-1, duplicates collapsed."""
    p, r = comm.Get_size(), comm.Get_rank()
    offsets = block_offsets(n, p)
    lo, hi = int(offsets[r]), int(offsets[r + 1])
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    # Out side: every edge goes to the owner of its source; unique keys sort rows and columns.
    s, d = exchange(comm, block_owner(src, n, p), [src, dst])
    key = np.unique(s * np.int64(n) + d) if n > 0 else np.empty(0, np.int64)
    s, d = np.divmod(key, np.int64(max(n, 1)))
    out_indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(s - lo, minlength=hi - lo), out=out_indptr[1:])
    out_indices = d
    # In side: the collapsed edges go to the owner of their destination.
    s2, d2 = exchange(comm, block_owner(d, n, p), [s, d])
    order = np.lexsort((s2, d2))
    in_indices = s2[order]
    in_indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(d2 - lo, minlength=hi - lo), out=in_indptr[1:])
    m = int(comm.allreduce(int(key.size), op=MPI.SUM))
    return Graph(comm, int(n), m, offsets, np.asarray(ids_local, dtype=np.int64),
                 out_indptr, out_indices, in_indptr, in_indices, source)


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


def read_snap(path: str, comm) -> Graph:
    """Read a SNAP edge list in parallel (each rank its byte range) into a Graph."""
    p, r = comm.Get_size(), comm.Get_rank()
    with collective(comm):
        try:
            size = os.path.getsize(path)
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"--graph {path}: cannot read ({exc.strerror or exc})") from None
    data = _byte_share(path, size, p, r)
    nlines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    first = exscan_sum(comm, nlines)
    with collective(comm):
        src, dst, bad, why = parse_edges(data)
        if bad >= 0:
            raise UsageError(f"{path}, line {first + bad + 1}: {why}")
    del data
    n, s, d, ids_local = relabel(comm, src, dst)
    return from_edges(comm, n, s, d, ids_local, source=f"snap:{path}")


# --------------------------------------------------------------------------------------------
# Matrix Market and Kronecker (through the sparse core), and the HDF5 cache
# --------------------------------------------------------------------------------------------
def read_mtx(path: str, comm) -> Graph:
    """A Matrix Market file as a graph: a nonzero A[i, j] is the edge i -> j (values ignored).

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
    return from_distcsr(A, source=f"mtx:{path}", what=f"--graph {path}")


def from_distcsr(A, source: str = "", what: str = "G") -> Graph:
    """The graph of a distributed adjacency matrix (an ``hpc.sparse.DistCSR``, any row
    blocks): a nonzero A[i, j] is the edge i -> j, values ignored; vertices 0..n-1
    (collective over ``A.comm``)."""
    comm = A.comm
    nr, nc = A.shape
    if nr != nc:
        raise UsageError(f"{what}: a graph needs a square matrix, got {nr} x {nc}")
    loc = A.local.tocoo()
    keep = loc.data != 0
    src = loc.row[keep].astype(np.int64) + int(A.row_offsets[comm.Get_rank()])
    dst = loc.col[keep].astype(np.int64)
    lo, hi = block_range(nr, comm.Get_size(), comm.Get_rank())
    return from_edges(comm, nr, src, dst, np.arange(lo, hi, dtype=np.int64),
                      source=source or f"DistCSR {nr}x{nc}")


def from_scipy(A, comm, what: str = "G") -> Graph:
    """The graph of a SciPy sparse adjacency matrix given identically on every rank: a
    nonzero A[i, j] is the edge i -> j (values ignored, stored zeros are no edge); vertices
    0..n-1, isolated ones included. Each rank takes its block of rows (collective)."""
    if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
        raise UsageError(f"{what}: an adjacency matrix must be square, got shape {A.shape}")
    nr, nc = A.shape
    lo, hi = block_range(nr, comm.Get_size(), comm.Get_rank())
    B = sp.csr_matrix(A)[lo:hi].tocoo()
    keep = B.data != 0
    return from_edges(comm, nr, B.row[keep].astype(np.int64) + lo, B.col[keep].astype(np.int64),
                      np.arange(lo, hi, dtype=np.int64), source=f"scipy {nr}x{nc}")


def from_edge_array(E: np.ndarray, comm, what: str = "G") -> Graph:
    """The graph of an (m, 2) array of edges (source, target) given identically on every rank:
    vertices 0..n-1 with n = the largest id + 1 (ids that appear in no edge are isolated
    vertices); duplicates collapse, self-loops stay. Each rank takes its block of edges."""
    E = np.asarray(E)
    if E.ndim != 2 or E.shape[1] != 2:
        raise UsageError(f"{what}: an edge array must have shape (m, 2), got {E.shape}")
    if E.shape[0] == 0:
        raise UsageError(f"{what}: the edge array is empty (the graph has no vertices)")
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
    return from_edges(comm, n, E[lo:hi, 0].astype(np.int64), E[lo:hi, 1].astype(np.int64),
                      np.arange(vlo, vhi, dtype=np.int64), source=f"edge array {n} vertices")


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


def generate_kron(spec: str, seed: int, comm) -> Graph:
    """Graph500 Kronecker graph (A, B, C = 0.57, 0.19, 0.19, vertices permuted); every
    vertex 0..2^SCALE-1 is kept, isolated ones included."""
    from hpc.core.memory import require_memory
    from hpc.sparse.randgen import rmat_edges

    scale, ef = parse_kron(spec)
    n = 1 << scale
    p = comm.Get_size()
    # generator's edges + the two shuffled copies of src/dst + CSR arrays, int64
    require_memory(8 * 8 * ef * n / p + 8 * 4 * n / p, f"--generate {spec}", comm)
    src, dst = rmat_edges(scale, ef, seed, comm)
    lo, hi = block_range(n, p, comm.Get_rank())
    return from_edges(comm, n, np.asarray(src, np.int64), np.asarray(dst, np.int64),
                      np.arange(lo, hi, dtype=np.int64), source=f"{spec} seed {seed}")


def save_cache(g: Graph, path: str, input_fp: str = "") -> None:
    """Write the graph (original ids, out-degrees, out-neighbours) to HDF5 (collective), with
    the fingerprint of what it was built from (``input_fp``, see :func:`input_key`) and of
    its content (:func:`content_hash`)."""
    from hpc.core import h5io

    content = content_hash(g)
    h5io.write(path, g.comm, {
        "/graph/vertex_ids": h5io.Distributed(g.ids),
        "/graph/out_degree": h5io.Distributed(g.outdeg.astype(np.int64)),
        "/graph/out_indices": h5io.Distributed(g.out_indices.astype(np.int64)),
    }, attrs={"/graph": {"format": CACHE_FORMAT, "n": g.n, "m": g.m, "source": g.source,
                         "input": input_fp, "content": content}})
    g.info["content_hash"] = content
    g.comm.Barrier()  # rank 0 renames the file into place; nobody reads it before that


def _bad(path: str, field: str, why: str) -> UsageError:
    return UsageError(f"{path}: corrupt graph file: {field} {why}")


def load_cache(path: str, comm, what: str = "--graph") -> Graph:
    """Read a graph written by :func:`save_cache`; each rank reads only its own rows.

    Every field is checked (shapes, ranges, ascending ids) and the graph read must have the
    stored content fingerprint: a corrupt file is a UsageError naming the file and field.
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
    g = from_edges(comm, n, src, dst, ids, source=source)
    with collective(comm):
        if g.m != m:
            raise _bad(path, "/graph/out_indices", f"holds {g.m} distinct edges, the file "
                       f"says m = {m}")
        got = content_hash(g)
        if got != content:
            raise _bad(path, "content", f"fingerprint {got} differs from the stored "
                       f"{content or 'none'}")
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
               cache: str | None = None) -> Graph:
    """The graph an app's options name: --graph PATH (SNAP text, .mtx, or HDF5 cache) or
    --generate kron:S:EF.

    With ``cache``, the cache is read when it was built from the same input: the same file
    bytes and format (SHA-256), or the same generator, parameters and seed; its content
    fingerprint is checked as it is read. A missing, foreign or corrupt cache is rebuilt from
    the input and rewritten; ``g.info["cache"]`` says which happened and why.
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
                key = input_key(comm, graph, generate, seed)
            except OSError as exc:
                raise UsageError(f"--graph {graph}: cannot read ({exc.strerror or exc})") from None
        if os.path.exists(cache):
            stored = _cached_input(cache) if comm.Get_rank() == 0 else None
            stored = comm.bcast(stored, root=0)
            if stored == key:
                try:
                    g = load_cache(cache, comm, what="--cache")
                    g.info["cache"] = f"read {cache} (built from the same input)"
                    return g
                except UsageError as exc:
                    why = f"the cache is unusable ({exc})"
            elif stored is None:
                why = "the cache is not a graph cache of this version"
            else:
                why = "the cache was built from another input (fingerprints differ)"
    if generate is not None:
        g = generate_kron(generate, seed, comm)
    elif _is_hdf5(graph):
        g = load_cache(graph, comm)
    elif graph.endswith(".mtx") or graph.endswith(".mtx.gz"):
        g = read_mtx(graph, comm)
    else:
        g = read_snap(graph, comm)
    if cache:
        save_cache(g, cache, key or "")
        g.info["cache"] = f"rebuilt {cache}: {why}"
    return g


def gather_csr(g: Graph, root: int = 0):
    """The whole adjacency matrix (scipy CSR, A[u, v] = 1 for an edge u -> v) on ``root``."""
    comm = g.comm
    indptr = comm.gather(g.outdeg, root=root)
    indices = comm.gather(g.out_indices, root=root)
    if comm.Get_rank() != root:
        return None
    deg = np.concatenate(indptr)
    ptr = np.zeros(g.n + 1, dtype=np.int64)
    np.cumsum(deg, out=ptr[1:])
    ind = np.concatenate(indices)
    return sp.csr_matrix((np.ones(ind.size), ind, ptr), shape=(g.n, g.n))


def gather_ids(g: Graph, root: int = 0) -> np.ndarray | None:
    parts = g.comm.gather(g.ids, root=root)
    return np.concatenate(parts) if parts is not None else None


__all__ = ["Graph", "from_edges", "from_scipy", "from_edge_array", "from_distcsr", "relabel", "read_snap", "read_mtx", "generate_kron",
           "save_cache", "load_cache", "load_graph", "content_hash", "file_fingerprint",
           "input_key", "mix64", "gather_csr", "gather_ids",
           "parse_edges", "parse_edges_py", "parse_kron"]
