"""Triangle counting as a masked product: ``sum(C<L> = L Lᵀ)`` over plus_pair (Sandia).

The graph is taken as undirected and simple: edge directions, duplicates and self loops are
dropped. With L its strictly lower triangle, ``(L Lᵀ)(i,j)`` for an edge (i,j), j < i, counts
the common neighbours k < j of i and j, so every triangle k < j < i is counted once.

1D distributed: rank r owns rows of L and of U = Lᵀ (the strictly upper triangle, which the
symmetric adjacency gives without a transpose); it fetches the rows of U its columns of L
name (one exchange) and counts C<L> row by row without forming C (the mask's last column cuts
every fetched row early: U's rows ascend). ``python -m hpc.spgemm triangles`` is the command
line; the record's metric is ``triangles``.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import App, UsageError, make_parser
from hpc.core.envinfo import default_threads
from hpc.core.errors import InputTypeError
from hpc.core.partition import block_offsets, exchange_by_owner
from hpc.core.runtime import as_comm, collective
from hpc.sparse import DistCSR

from . import dist
from . import semiring as S


def undirected_simple(comm, n: int, src: np.ndarray, dst: np.ndarray,
                      offsets: np.ndarray | None = None) -> sp.csr_matrix:
    """This rank's rows of the symmetric 0/1 adjacency of edges (src, dst) given anywhere
    (both directions, duplicates and self loops dropped); int8 values (collective)."""
    off = block_offsets(n, comm.Get_size()) if offsets is None else offsets
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    keep = src != dst
    s = np.concatenate((src[keep], dst[keep]))
    d = np.concatenate((dst[keep], src[keep]))
    ri, rj = exchange_by_owner(comm, np.searchsorted(off, s, side="right") - 1, [s, d])
    r = comm.Get_rank()
    lo, hi = int(off[r]), int(off[r + 1])
    keys = np.unique((ri - lo) * np.int64(n) + rj)
    rows, cols = keys // n, keys % n
    indptr = np.zeros(hi - lo + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=hi - lo), out=indptr[1:])
    it = np.int32 if max(n, keys.size) < 2**31 - 1 else np.int64
    m = sp.csr_matrix((np.ones(keys.size, np.int8), cols.astype(it), indptr.astype(it)),
                      shape=(hi - lo, n))
    m.has_canonical_format = True
    return m


def split_triangles(comm, adj: sp.csr_matrix, n: int, off: np.ndarray) -> tuple[DistCSR, DistCSR]:
    """(L, U): the strictly lower and upper triangles of this rank's symmetric rows."""
    lo = int(off[comm.Get_rank()])
    rows = np.repeat(np.arange(adj.shape[0], dtype=np.int64) + lo, np.diff(adj.indptr))
    cols = adj.indices.astype(np.int64)
    out = []
    for keep in (cols < rows, cols > rows):
        m = sp.csr_matrix((adj.data[keep], (rows[keep] - lo, cols[keep])), shape=adj.shape)
        m.sum_duplicates()
        out.append(DistCSR(comm, m, (n, n), row_offsets=off))
    return out[0], out[1]


def masked_count(A: DistCSR, B: DistCSR, mask: DistCSR, threads: int,
                 costs: dist.Costs | None = None) -> int:
    """sum(C<mask> = A B) over plus_pair, 1D distributed, C never formed (collective)."""
    costs = dist.Costs() if costs is None else costs
    Al = A.local
    if A.comm.Get_size() == 1:  # B's rows are all here: no fetch, no renumbering of A
        t0 = time.perf_counter()
        local = S.mask_count(Al, B.local, mask.local, threads)
        costs.compute_s += time.perf_counter() - t0
        return int(local)
    needed = np.unique(Al.indices)
    fetch = dist.RowFetch(B, needed, costs)
    t0 = time.perf_counter()
    Bf = sp.csr_matrix((np.zeros(fetch.indices.size, np.int8), fetch.indices, fetch.indptr),
                       shape=fetch.shape, copy=False)
    Ar = sp.csr_matrix((Al.data, np.searchsorted(needed, Al.indices), Al.indptr),
                       shape=(Al.shape[0], needed.size))
    local = S.mask_count(Ar, Bf, mask.local, threads)
    costs.compute_s += time.perf_counter() - t0
    return int(A.comm.allreduce(local, op=MPI.SUM))


def count_triangles(G, *, threads: int | None = None, comm=None) -> int:
    """The number of triangles of graph G taken as undirected and simple (collective).

    Parameters
    ----------
    G : scipy.sparse matrix/array or DistCSR
        A square adjacency matrix: entry (i, j) stored is an edge i - j, whatever its value
        or direction; the diagonal is ignored. SciPy: the same on every rank.
    threads : int, optional
        Threads per rank [default: OMP_NUM_THREADS, else cores / ranks].
    comm : mpi4py.MPI.Comm, optional
        SciPy input only (default ``MPI.COMM_WORLD``).

    Returns
    -------
    int
        ``sum(networkx.triangles(G).values()) / 3``, the same on every rank.
    """
    if isinstance(G, DistCSR):
        comm, n = G.comm, G.shape[0]
        coo = G.local.tocoo()
        src = coo.row.astype(np.int64) + G.row_offsets[G.rank]
        dst = coo.col.astype(np.int64)
    elif sp.issparse(G):
        comm = as_comm(comm)
        n = G.shape[0]
        off = block_offsets(n, comm.Get_size())
        r = comm.Get_rank()
        coo = sp.csr_matrix(G)[int(off[r]):int(off[r + 1])].tocoo()
        src, dst = coo.row.astype(np.int64) + off[r], coo.col.astype(np.int64)
    else:
        raise InputTypeError(f"G must be a SciPy sparse matrix or DistCSR, got "
                             f"{type(G).__name__}")
    if G.shape[0] != G.shape[1]:
        raise UsageError(f"G must be square (an adjacency matrix), got {G.shape[0]} x "
                         f"{G.shape[1]}")
    threads = int(threads if threads is not None else default_threads(comm))
    off = block_offsets(n, comm.Get_size())
    Lo, Up = split_triangles(comm, undirected_simple(comm, n, src, dst, off), n, off)
    return masked_count(Lo, Up, Lo, threads)


# ---------------------------------------------------------------------------- command line
def parser():
    p = make_parser("spgemm triangles", __doc__)
    g = p.add_argument_group("input (one of --graph or --generate)")
    g.add_argument("--graph", metavar="PATH",
                   help="edge list (SNAP text: 'src dst' per line, '#' comments) or Matrix "
                        "Market (.mtx); taken as undirected and simple")
    g.add_argument("--generate", metavar="SPEC",
                   help="rmat:SCALE:EDGEFACTOR (Graph500 R-MAT) or er:N:DEG (Erdos-Renyi)")
    return p


def _load(args, comm) -> tuple[int, np.ndarray, np.ndarray, str]:
    """(n, src, dst) of this rank's share of the edges (collective)."""
    if (args.graph is None) == (args.generate is None):
        raise UsageError("give exactly one of --graph PATH or --generate SPEC")
    if args.generate:
        from .app import parse_generate

        kind, prm = parse_generate(args.generate)
        if kind == "rmat":
            from hpc.core.memory import require_memory
            from hpc.sparse.randgen import rmat_edges

            scale, ef = prm
            require_memory(6 * 16 * (ef << scale) / comm.Get_size(),
                           f"--generate {args.generate}", comm)
            s, d = rmat_edges(scale, ef, args.seed, comm)
            return 1 << scale, s, d, args.generate
        if kind == "er":
            from hpc.core.memory import require_memory
            from hpc.sparse.randgen import er_edges

            n, deg = prm
            require_memory(6 * 16 * n * deg / comm.Get_size(), f"--generate {args.generate}",
                           comm)
            s, d = er_edges(n, deg, args.seed, comm)
            return n, s, d, args.generate
        raise UsageError(f"--generate {args.generate!r}: triangles takes rmat:SCALE:EDGEFACTOR "
                         "or er:N:DEG")
    from hpc.pagerank.graphio import load_graph

    g = load_graph(comm, graph=args.graph)
    lo = g.offsets[comm.Get_rank()]
    src = np.repeat(np.arange(g.out_indptr.size - 1, dtype=np.int64) + lo,
                    np.diff(g.out_indptr))
    return int(g.n), src, g.out_indices.astype(np.int64), args.graph


def main(argv: Sequence[str] | None = None) -> int:
    """python -m hpc.spgemm triangles (--graph PATH | --generate SPEC) [options]."""
    args = parser().parse_args(argv)
    app = App("spgemm", args)
    comm = app.comm
    with collective(comm):
        n, src, dst, what = _load(args, comm)
    with app.timer.phase("build"):
        off = block_offsets(n, comm.Get_size())
        adj = undirected_simple(comm, n, src, dst, off)
        Lo, Up = split_triangles(comm, adj, n, off)
    edges = Lo.nnz
    app.say(f"hpc.spgemm triangles: {what}: {n} vertices, {edges} undirected edges; "
            f"{app.size} rank(s) x {app.threads} thread(s)")
    count = 0
    costs = dist.Costs()
    for _ in range(args.repeat):
        comm.Barrier()
        t0 = time.perf_counter()
        costs = dist.Costs()
        count = masked_count(Lo, Up, Lo, app.threads, costs)
        app.timer.add("triangles", time.perf_counter() - t0)
        app.timer.add("communicate", costs.comm_s)
        app.timer.add("count", costs.compute_s)
    # check: the other wedge order, L L with mask L (k between j and i), an independent product
    with app.timer.phase("validate"):
        check = masked_count(Lo, Lo, Lo, app.threads)
    timings = app.timer.summary()
    m = app.metrics
    m["triangles"] = int(count)
    m["vertices"], m["edges"] = int(n), int(edges)
    m["triangles_s"] = timings["triangles"]["min"]
    m["comm_bytes"] = int(comm.allreduce(costs.comm_bytes, op=MPI.SUM))
    m["edges_per_s"] = edges / m["triangles_s"] if m["triangles_s"] > 0 else 0.0
    app.extra["command"] = "triangles"
    app.say(f"triangles {count}; {m['triangles_s']:.4f} s ({m['edges_per_s'] / 1e6:.2f} M "
            "edges/s)")
    return app.finish(count == check, {"triangles_L_L": int(check),
                                       "triangles_L_Lt": int(count)}, timings)
