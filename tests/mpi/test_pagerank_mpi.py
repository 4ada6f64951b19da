"""In-process hpc.pagerank tests at any rank count (tools/run_tests.sh runs 1..4 ranks):
graph reading, global PageRank against networkx, PowerWalk PPR against exact PPR."""
from __future__ import annotations

import os
import tempfile

import networkx as nx
import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import UsageError
from hpc.core import backends as registry
from hpc.pagerank import graphio
from hpc.pagerank.ppr import (build_fingerprints, combine, decompose, exact_ppr,
                              precision_at_k)
from hpc.pagerank.solver import make_solver

from conftest import data_file

comm = MPI.COMM_WORLD


def _real(name: str) -> str:
    return str(data_file("graphs", name))


def _tmpdir() -> str:
    d = tempfile.mkdtemp(prefix="hpc_pr_") if comm.rank == 0 else None
    return comm.bcast(d)


def _write(path: str, text: str) -> None:
    if comm.rank == 0:
        with open(path, "w") as f:
            f.write(text)
    comm.Barrier()


def _gather_scores(g, x):
    ids = graphio.gather_ids(g)
    xs = comm.gather(x)
    ids = comm.bcast(ids)
    return ids, (np.concatenate(comm.bcast(xs)))


def _nx_pagerank(G, d=0.85):
    return nx.pagerank(G, alpha=d, tol=1e-16, max_iter=10_000)


def _nx_graph_from_file(path: str) -> nx.DiGraph:
    G = nx.DiGraph()
    with open(path) as f:
        for line in f:
            t = line.split()
            if t and t[0][0] not in "#%":
                G.add_edge(int(t[0]), int(t[1]))
    return G


# ------------------------------------------------------------------------------ the reader
SNAP_TEXT = """# Directed graph (each unordered pair of nodes is saved once): header.txt
# Nodes: 9 Edges: 14
% a Matrix-Market-style comment too
# FromNodeId\tToNodeId
10\t20
10 20
  20   10000000019\r
10000000019 10
5 5
5 10
7 7

77 5
77 20
  # indented comment
20 77
900 901
901 900
900 900
"""


@pytest.mark.mpi
def test_snap_reader_matches_networkx_digraph():
    d = _tmpdir()
    path = os.path.join(d, "g.txt")
    _write(path, SNAP_TEXT)
    g = graphio.read_snap(path, comm)
    G = _nx_graph_from_file(path)
    ids = comm.bcast(graphio.gather_ids(g))
    assert list(ids) == sorted(G.nodes())
    edges = set()
    for v, row in zip(g.ids, np.split(g.out_indices, g.out_indptr[1:-1])):
        edges.update((int(v), int(ids[w])) for w in row)
    edges = set().union(*comm.allgather(edges))
    assert edges == set(G.edges())            # duplicates collapsed, self-loops kept
    assert g.m == G.number_of_edges()


@pytest.mark.mpi
@pytest.mark.parametrize("spread", ["random", "skewed"])
def test_relabel_is_distributed_and_matches_a_serial_unique(spread):
    """Non-contiguous ids (huge, clustered, duplicated across ranks; one rank without edges):
    the same labels and vertex blocks as np.unique over all edges."""
    from hpc.core.partition import block_range

    rng = np.random.default_rng(11)
    pool = np.unique(np.concatenate([rng.integers(0, 2**62, 300), np.arange(1000, 1040),
                                     [0, 2**63 - 1]]))
    m = 2000
    src_all = rng.choice(pool, m)
    dst_all = rng.choice(pool, m)
    if spread == "random":
        part = rng.integers(0, comm.size, m)
    else:                                   # all edges on the last rank but a few
        part = np.full(m, comm.size - 1)
        part[:7] = 0
    if comm.size > 2:
        part[part == 1] = 0                 # rank 1 has no edges at all
    mine = part == comm.rank
    n, s, d, ids = graphio.relabel(comm, src_all[mine], dst_all[mine])
    allids = np.unique(np.concatenate([src_all, dst_all]))
    assert n == allids.size
    assert np.array_equal(allids[s], src_all[mine]) and np.array_equal(allids[d], dst_all[mine])
    lo, hi = block_range(n, comm.size, comm.rank)
    assert np.array_equal(ids, allids[lo:hi])


@pytest.mark.mpi
def test_snap_reader_reports_first_malformed_line():
    d = _tmpdir()
    path = os.path.join(d, "bad.txt")
    lines = [f"{i} {i + 1}" for i in range(200)]
    lines[150] = "150 oops"
    lines[170] = "170"
    _write(path, "# header\n" + "\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"bad\.txt, line 152: .*'150 oops'"):
        graphio.read_snap(path, comm)


@pytest.mark.mpi
def test_cache_round_trip():
    d = _tmpdir()
    path = os.path.join(d, "g.txt")
    _write(path, SNAP_TEXT)
    g = graphio.read_snap(path, comm)
    h5 = os.path.join(d, "g.h5")
    graphio.save_cache(g, h5)
    g2 = graphio.load_cache(h5, comm)
    assert (g2.n, g2.m) == (g.n, g.m)
    for a in ("ids", "out_indptr", "out_indices", "in_indptr", "in_indices"):
        assert np.array_equal(getattr(g, a), getattr(g2, a)), a


# ------------------------------------------------------------------------------ global PageRank
def _check_against_networkx(g, G, backend="native", layout="1d"):
    s = make_solver(g, backend, layout)
    res = s.solve(0.85, 1e-14, 10_000)
    assert res.converged
    ids, x = _gather_scores(g, res.x)
    ref = _nx_pagerank(G)
    want = np.array([ref[int(v)] for v in ids])
    assert np.abs(x - want).max() <= 1e-12
    assert abs(x.sum() - 1.0) <= 1e-12
    if hasattr(s, "free"):
        s.free()                 # persistent requests / communicators


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["email-Eu-core.txt", "p2p-Gnutella08.txt"])
@pytest.mark.parametrize("layout", ["1d", "2d"])
def test_pagerank_equals_networkx_on_real_graphs(name, layout):
    path = _real(name)
    g = graphio.read_snap(path, comm)
    G = _nx_graph_from_file(path) if comm.rank == 0 else None
    G = comm.bcast(G)
    _check_against_networkx(g, G, "native", layout)


@pytest.mark.mpi
@pytest.mark.parametrize("backend", ["numpy", "numba", "cupy"])
def test_pagerank_backends_agree_with_networkx(backend):
    if not registry.is_available(backend):
        pytest.skip(f"{backend}: {registry.why_unavailable(backend)}")
    path = _real("email-Eu-core.txt")
    g = graphio.read_snap(path, comm)
    G = comm.bcast(_nx_graph_from_file(path) if comm.rank == 0 else None)
    for layout in ("1d", "2d"):
        _check_against_networkx(g, G, backend, layout)


@pytest.mark.mpi
def test_pagerank_kronecker_with_isolated_vertices():
    from hpc.sparse.randgen import rmat_edges

    g = graphio.load_graph(comm, generate="kron:9:4", seed=3)
    src, dst = rmat_edges(9, 4, 3, None)
    G = nx.DiGraph()
    G.add_nodes_from(range(512))
    G.add_edges_from(zip(src.tolist(), dst.tolist()))
    assert nx.number_of_isolates(G) > 0 and g.m == G.number_of_edges()
    for layout in ("1d", "2d"):
        _check_against_networkx(g, G, "native", layout)


@pytest.mark.mpi
def test_pagerank_mostly_dangling_and_isolated():
    """A Matrix Market graph: 300 vertices, most of them sinks, 40 isolated."""
    import scipy.io
    import scipy.sparse as sp

    d = _tmpdir()
    path = os.path.join(d, "sinks.mtx")
    if comm.rank == 0:
        rng = np.random.default_rng(7)
        n = 300
        src = rng.integers(0, 30, 900)               # only 30 vertices have out-edges
        dst = rng.integers(0, 260, 900)               # 260..299 are isolated
        A = sp.coo_matrix((np.ones(900), (src, dst)), shape=(n, n)).tocsr()
        A.data[:] = 1.0                               # duplicates summed, then binarised
        scipy.io.mmwrite(path, A)
    comm.Barrier()
    g = graphio.load_graph(comm, graph=path)
    G = None
    if comm.rank == 0:
        A = scipy.io.mmread(path).tocsr()
        G = nx.from_scipy_sparse_array(A, create_using=nx.DiGraph)
    G = comm.bcast(G)
    assert sum(1 for v in G if G.out_degree(v) == 0) > 250
    for backend in ("native", "numpy", "numba"):   # some ranks have no ghost neighbour
        for layout in ("1d", "2d"):
            _check_against_networkx(g, G, backend, layout)


def _serial_power(A, d: float, tol: float, max_iter: int):
    """networkx's iteration (SciPy), returning (x, iterations, last L1 change)."""
    import scipy.sparse as sp

    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    PT = sp.csr_matrix(A.multiply(inv[:, None])).T.tocsr()
    x = np.full(n, 1.0 / n)
    for it in range(1, max_iter + 1):
        xn = d * (PT @ x) + (d * x[deg == 0].sum() + 1.0 - d) / n
        change = np.abs(xn - x).sum()
        x = xn
        if change < tol:
            break
    return x, it, change


@pytest.mark.mpi
@pytest.mark.parametrize("reduce", ["piggyback", "allreduce"])
@pytest.mark.parametrize("balance", [True, False])
def test_native_1d_modes_match_the_serial_iteration(reduce, balance):
    """Same stopping rule: the same iteration count and iterate as networkx's SciPy loop, in
    both reduction modes, with and without edge-balanced blocks; also when max_iter stops it."""
    path = _real("p2p-Gnutella08.txt")
    g = graphio.read_snap(path, comm)
    A = comm.bcast(graphio.gather_csr(g))
    s = make_solver(g, "native", "1d", reduce=reduce, balance=balance)
    assert s.mode == ("local" if comm.size == 1 else reduce)
    for tol, max_iter in ((1e-10, 1000), (1e-10, 5)):
        ref, its, change = _serial_power(A, 0.85, tol, max_iter)
        res = s.solve(0.85, tol, max_iter)
        assert res.iterations == its
        assert res.converged == (change < tol)
        assert res.l1_change == pytest.approx(change, rel=1e-8)
        _, x = _gather_scores(g, res.x)
        assert np.abs(x - ref).max() <= 1e-14
    again = s.solve(0.85, 1e-10, 1000)                 # a solver is reusable
    assert np.array_equal(again.x, s.solve(0.85, 1e-10, 1000).x)
    change, total = s.residual(again.x, 0.85)
    assert change <= 1e-10 and abs(total - 1.0) <= 1e-12
    s.free()


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["email-Eu-core.txt", "p2p-Gnutella08.txt"])
def test_native_1d_replicated_matches_the_serial_iteration(name):
    """The replicated mode (every rank iterates the whole graph, no message while it solves)
    stops where networkx's iteration stops, with its iterate, on every rank's block; 'auto'
    (make_solver's default) measures and takes either mode with the same answer; an explicit
    reduce / exchange method keeps the distributed iteration; the residual still works."""
    g = graphio.read_snap(_real(name), comm)
    A = comm.bcast(graphio.gather_csr(g))
    ref, its, change = _serial_power(A, 0.85, 1e-10, 1000)
    forced = make_solver(g, "native", "1d", replicate=True)
    auto = make_solver(g, "native", "1d")
    dist = make_solver(g, "native", "1d", reduce="piggyback")
    try:
        assert forced.mode == ("local" if comm.size == 1 else "replicated")
        assert auto.mode in ("local", "replicated", "piggyback")
        assert dist.mode == ("local" if comm.size == 1 else "piggyback")
        if comm.size > 1 and auto.mode == "replicated":
            assert auto.probe["replicated_step_s"] < auto.probe["distributed_s"]
        for s in (forced, auto, dist):
            res = s.solve(0.85, 1e-10, 1000)
            assert res.iterations == its and res.converged
            assert res.l1_change == pytest.approx(change, rel=1e-8)
            assert res.x.shape == (g.nlocal,)
            _, x = _gather_scores(g, res.x)
            assert np.abs(x - ref).max() <= 1e-14
            res5 = s.solve(0.85, 1e-10, 5)             # stopped by max_iter
            assert res5.iterations == 5 and not res5.converged
        c, total = forced.residual(forced.solve(0.85, 1e-10, 1000).x, 0.85)
        assert c <= 1e-10 and abs(total - 1.0) <= 1e-12
        with pytest.raises(ValueError, match="replicate"):
            make_solver(g, "native", "1d", replicate="always")
    finally:
        for s in (forced, auto, dist):
            s.free()


def _replicated_cases():
    """(name, graph, teleport) inputs for the bit-identity test: the real graphs, a random
    graph with dangling vertices and a personalization, and one with fewer rows than ranks'
    multiples of 4 (blocks of 1-3 rows, some empty at 4 ranks)."""
    from hpc.pagerank.solver import Teleport, distribution
    yield "email", graphio.read_snap(_real("email-Eu-core.txt"), comm), None
    yield "gnutella", graphio.read_snap(_real("p2p-Gnutella08.txt"), comm), None
    rng = np.random.default_rng(11)
    e = rng.integers(0, 997, size=(3000, 2))
    e = e[e[:, 0] % 5 != 0]                   # sources never divisible by 5: dangling rows
    g = graphio.from_edge_array(e, comm)
    pers = {int(v): float(v % 7 + 1) for v in range(0, 997, 3)}
    dang = {int(v): 1.0 for v in range(0, 997, 13)}
    yield "random", g, None
    yield "random-teleport", g, Teleport(distribution(g, pers, "p"), distribution(g, dang, "q"))
    yield "tiny", graphio.from_edge_array(np.array([[0, 1], [1, 2], [2, 0], [3, 0], [4, 4]]),
                                          comm), None


@pytest.mark.mpi
def test_native_1d_replicated_is_bit_identical_to_the_distributed_iteration():
    """The replicated mode sweeps the whole graph laid out as the ranks' blocks and sums the
    partials per block, in rank order: its iterates, iteration count and last change equal
    the distributed iteration's bit for bit (both reductions), so 'auto', which picks a mode by
    timing, gives one answer whatever it picks; all within 1e-14 of the serial iteration."""
    for name, g, tp in _replicated_cases():
        A = comm.bcast(graphio.gather_csr(g))
        out = {}
        for label, kw in (("replicated", {"replicate": True}),
                          ("piggyback", {"reduce": "piggyback"}),
                          ("allreduce", {"reduce": "allreduce"}), ("auto", {})):
            s = make_solver(g, "native", "1d", tp, **kw)
            try:
                if comm.size > 1:
                    assert s.mode == label or label == "auto", (name, label, s.mode)
                out[label] = [s.solve(0.85, tol, 1000) for tol in (1e-10, 1e-15)]
                out[label].append(s.solve(0.85, 1e-10, 3))      # stopped by max_iter
            finally:
                s.free()
        for label, runs in out.items():
            for a, b in zip(runs, out["piggyback"]):
                assert np.array_equal(a.x, b.x), (name, label)
                assert (a.iterations, a.l1_change, a.converged) == \
                    (b.iterations, b.l1_change, b.converged), (name, label)
        if tp is None:
            ref, its, _ = _serial_power(A, 0.85, 1e-10, 1000)
            assert out["replicated"][0].iterations == its
            _, x = _gather_scores(g, out["replicated"][0].x)
            assert np.abs(x - ref).max() <= 1e-14, name


@pytest.mark.mpi
def test_native_1d_replicated_weighted_personalized():
    """Weights and the teleport / dangling distributions travel to the replicated solver."""
    from hpc.pagerank.solver import Teleport, distribution
    rng = np.random.default_rng(5)
    e = rng.integers(0, 300, size=(1500, 2))
    e = e[e[:, 0] != e[:, 1]]
    w = rng.integers(1, 5, size=e.shape[0]).astype(float)
    g = graphio.from_edge_array(np.column_stack([e, w]), comm, weights=True)
    pers = {int(v): float(v % 7 + 1) for v in range(0, 300, 3)}
    dang = {int(v): 1.0 for v in range(0, 300, 11)}
    tp = Teleport(distribution(g, pers, "p"), distribution(g, dang, "q"))
    forced = make_solver(g, "native", "1d", tp, replicate=True)
    dist = make_solver(g, "native", "1d", tp, replicate=False)
    try:
        a = forced.solve(0.85, 1e-13, 10_000)
        b = dist.solve(0.85, 1e-13, 10_000)
    finally:
        forced.free()
        dist.free()
    assert a.converged and b.converged
    _, xa = _gather_scores(g, a.x)
    _, xb = _gather_scores(g, b.x)
    assert np.abs(xa - xb).max() <= 1e-14
    G = nx.DiGraph()
    G.add_nodes_from(range(int(e.max()) + 1))
    for (u, v), ww in zip(e.tolist(), w.tolist()):
        G.add_edge(u, v, weight=ww)
    ref = nx.pagerank(G, alpha=0.85, weight="weight", personalization=pers, dangling=dang,
                      tol=1e-16, max_iter=10_000)
    ids = graphio.gather_ids(g)
    ids = comm.bcast(ids)
    assert np.abs(xa - np.array([ref[int(v)] for v in ids])).max() <= 1e-12


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["email-Eu-core.txt", "p2p-Gnutella08.txt"])
def test_native_1d_p2p_and_neighbor_exchange_agree(name):
    """The persistent point-to-point exchange (no new communicator) and the persistent
    neighbourhood collective give the same bits, in both reduction modes, and the serial
    iteration's answer; the ghost plan is DistCSR's (same ghost count on the same blocks)."""
    from hpc.sparse.dcsr import DistCSR
    import scipy.sparse as sp

    g = graphio.read_snap(_real(name), comm)
    A = comm.bcast(graphio.gather_csr(g))
    ref, its, _ = _serial_power(A, 0.85, 1e-10, 1000)
    out = {}
    for reduce in ("piggyback", "allreduce"):
        for exchange in ("p2p", "neighbor"):
            s = make_solver(g, "native", "1d", reduce=reduce, exchange=exchange)
            assert s.exchange == ("none" if comm.size == 1 else exchange)
            assert set(s.setup_times) >= {"balance", "move_rows", "plan", "local", "exchange"}
            res = s.solve(0.85, 1e-10, 1000)
            assert res.iterations == its
            _, x = _gather_scores(g, res.x)
            assert np.abs(x - ref).max() <= 1e-14
            out[reduce, exchange] = x
            # DistCSR's plan on the solver's blocks needs the same ghost columns
            off = s.offsets
            lo, hi = int(off[comm.rank]), int(off[comm.rank + 1])
            T = sp.csr_matrix(A.T.tocsr()[lo:hi])
            D = DistCSR.from_local(comm, T, A.shape, row_offsets=off, backend="scipy",
                                   exchange="p2p")
            assert D.plan().n_ghost == s.ghosts
            s.free()
        assert np.array_equal(out[reduce, "p2p"], out[reduce, "neighbor"])


@pytest.mark.mpi
def test_balanced_offsets_slack_keeps_balanced_blocks():
    """With slack, blocks already within it stay (no row move); without, they are recut."""
    from hpc.core.partition import block_offsets
    from hpc.pagerank.solver import balanced_offsets

    n = 999
    blk = block_offsets(n, comm.size)
    lo, hi = int(blk[comm.rank]), int(blk[comm.rank + 1])
    cost = np.full(hi - lo, 7.0)
    cost[: min(3, cost.size)] += 1.0                     # a little uneven: within 3%
    assert np.array_equal(balanced_offsets(comm, n, lo, cost, slack=0.03), blk)
    heavy = cost.copy()
    if comm.rank == 0:
        heavy[:] = 50.0                                  # rank 0 far above the mean
    off = balanced_offsets(comm, n, lo, heavy, slack=0.03)
    if comm.size > 1:
        assert not np.array_equal(off, blk) and off[1] < blk[1]
    else:
        assert np.array_equal(off, blk)


@pytest.mark.mpi
def test_small_graph_path_equals_the_distributed_one():
    """Below _SMALL_N the solver all-gathers the degrees: the same blocks as the two-step
    balanced_offsets, and the same moved rows as _rows_to (two Alltoallv)."""
    from hpc.pagerank.solver import _all_degrees, _cut, _rows_known, _rows_to, balanced_offsets

    g = graphio.read_snap(_real("email-Eu-core.txt"), comm)
    deg = _all_degrees(g)
    assert np.array_equal(deg[g.lo:g.hi, 0], np.diff(g.in_indptr))
    assert np.array_equal(deg[g.lo:g.hi, 1], g.outdeg)
    rng = np.random.default_rng(11)
    for slack in (0.0, 0.03):
        for cost in (deg[:, 0] + 6, rng.integers(0, 40, g.n), np.full(g.n, 3)):
            want = balanced_offsets(comm, g.n, g.lo, cost[g.lo:g.hi].astype(float), slack=slack)
            assert np.array_equal(_cut(cost, g.offsets, comm.size, slack), want)
    off = _cut(deg[:, 0] + 6, g.offsets, comm.size, 0.0)
    for a, b in zip(_rows_known(g, off, deg), _rows_to(g, off)):
        assert np.array_equal(a, b)


@pytest.mark.mpi
def test_native_1d_fewer_vertices_than_ranks():
    d = _tmpdir()
    path = os.path.join(d, "two.txt")
    _write(path, "7 3\n")
    g = graphio.read_snap(path, comm)
    for reduce in ("piggyback", "allreduce"):
        s = make_solver(g, "native", "1d", reduce=reduce)
        res = s.solve(0.85, 1e-14, 1000)
        ids, x = _gather_scores(g, res.x)
        ref = _nx_pagerank(nx.DiGraph([(7, 3)]))
        assert np.abs(x - np.array([ref[int(v)] for v in ids])).max() <= 1e-12
        s.free()


@pytest.mark.mpi
def test_balanced_offsets_and_move_blocks():
    from hpc.core.partition import block_offsets
    from hpc.pagerank.solver import balanced_offsets, move_blocks

    n = 1001
    rng = np.random.default_rng(5)
    cost = rng.integers(0, 50, n).astype(float)
    cost[:10] = 5000.0                                  # a few heavy rows up front
    blk = block_offsets(n, comm.size)
    lo, hi = int(blk[comm.rank]), int(blk[comm.rank + 1])
    off = balanced_offsets(comm, n, lo, cost[lo:hi])
    assert off[0] == 0 and off[-1] == n and np.all(np.diff(off) >= 0)
    loads = np.add.reduceat(cost, off[:-1]) if comm.size > 1 else np.array([cost.sum()])
    loads[np.diff(off) == 0] = 0.0
    assert loads.max() <= cost.sum() / comm.size + cost.max()
    x = np.arange(lo, hi, dtype=float)
    y = move_blocks(comm, x, blk, off)
    assert np.array_equal(y, np.arange(off[comm.rank], off[comm.rank + 1], dtype=float))
    assert np.array_equal(move_blocks(comm, y, off, blk), x)


# ------------------------------------------------------------------------------ PPR
@pytest.mark.mpi
def test_exact_ppr_is_networkx_personalization():
    path = _real("email-Eu-core.txt")
    g = graphio.read_snap(path, comm)
    A = graphio.gather_csr(g)
    if comm.rank == 0:
        G = _nx_graph_from_file(path)
        ids = graphio.np.array(sorted(G.nodes()))
        for s in (0, 17, 500):
            ref = nx.pagerank(G, alpha=0.85, personalization={int(ids[s]): 1}, tol=1e-15,
                              max_iter=10_000)
            want = np.array([ref[int(v)] for v in ids])
            got = exact_ppr(A, np.array([s]), 0.85)[0]
            assert np.abs(got - want).max() < 1e-11


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["email-Eu-core.txt", "p2p-Gnutella08.txt"])
def test_ppr_precision_at_20(name):
    _check_ppr_precision(name, 5, 1e-3, per_edge=False)


def _check_ppr_precision(name: str, seed: int, threshold: float, per_edge: bool) -> None:
    """Top-20 of 60 random sources (100 walks, T = 3) against exact PPR: mean precision >= 0.95,
    scores in descending order."""
    g = graphio.read_snap(_real(name), comm)
    fp = build_fingerprints(g, np.arange(g.lo, g.hi), 100, 0.85, seed=1, keep=128)
    verts = np.sort(np.random.default_rng(seed).choice(g.n, 60, replace=False))
    dec = decompose(g, verts, 0.85, 3, threshold, per_edge=per_edge)
    ans = combine(g, dec, fp, verts.size, 20)
    A = graphio.gather_csr(g)
    if comm.rank == 0:
        ex = exact_ppr(A, verts, 0.85)
        prec = [precision_at_k(ans.topk_ids[i], ex[i], 20) for i in range(verts.size)]
        assert np.mean(prec) >= 0.95, np.mean(prec)
        assert np.all(np.diff(ans.topk_scores, axis=1) <= 0)


@pytest.mark.mpi
def test_ppr_error_falls_as_walks_grow():
    g = graphio.read_snap(_real("email-Eu-core.txt"), comm)
    verts = np.sort(np.random.default_rng(2).choice(g.n, 20, replace=False))
    dec = decompose(g, verts, 0.85, 1, 1.0)   # one push of the source: walks do the rest
    A = graphio.gather_csr(g)
    ex = exact_ppr(A, verts, 0.85) if comm.rank == 0 else None
    errs = []
    for walks in (4, 40, 400):
        need = np.unique(dec.R.tocoo().row) + g.lo
        fp = build_fingerprints(g, need, walks, 0.85, seed=4)
        ans = combine(g, dec, fp, verts.size, 20, want_full=True)
        if comm.rank == 0:
            e = 0.0
            for i in range(verts.size):
                d = np.zeros(g.n)
                d[ans.full[i][0]] = ans.full[i][1]
                e += np.abs(d - ex[i]).sum()
            errs.append(e / verts.size)
    if comm.rank == 0:
        assert errs[1] < 0.7 * errs[0] and errs[2] < 0.7 * errs[1], errs


@pytest.mark.mpi
def test_fingerprints_do_not_depend_on_rank_count():
    g = graphio.read_snap(_real("email-Eu-core.txt"), comm)
    fp = build_fingerprints(g, np.arange(g.lo, g.hi), 20, 0.85, seed=9, keep=0)
    # serial rebuild of the same rows on one rank
    me = comm.Split(comm.rank, 0)
    g1 = graphio.read_snap(_real("email-Eu-core.txt"), me)
    fp1 = build_fingerprints(g1, np.arange(g.lo, g.hi), 20, 0.85, seed=9, keep=0)
    me.Free()
    assert np.array_equal(fp.indptr, fp1.indptr)
    assert np.array_equal(fp.ids, fp1.ids)
    assert np.allclose(fp.vals, fp1.vals, rtol=0, atol=1e-15)


@pytest.mark.mpi
def test_native_and_numpy_walks_are_identical():
    try:
        from hpc import _core

        _core.pagerank_walk
    except (ImportError, AttributeError):
        pytest.skip("hpc._core.pagerank_walk not built")
    g = graphio.load_graph(comm, generate="kron:9:8", seed=2)
    a = build_fingerprints(g, np.arange(g.lo, g.hi), 30, 0.85, seed=-7, max_length=6, native=True)
    b = build_fingerprints(g, np.arange(g.lo, g.hi), 30, 0.85, seed=-7, max_length=6, native=False)
    assert a.survivors == b.survivors > 0
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.ids, b.ids)
    assert np.array_equal(a.vals, b.vals) and np.array_equal(a.mass, b.mass)


@pytest.mark.mpi
def test_ppr_per_edge_push_rule_keeps_precision():
    _check_ppr_precision("p2p-Gnutella08.txt", 8, 3e-4, per_edge=True)


@pytest.mark.mpi
def test_app_record_when_ranks_make_different_choices():
    """Ranks may keep different column layouts (each times its own steps): the app's record
    still reduces every setup step over the union of the ranks' steps (a rank-local key once
    hung the run at 2 ranks on p2p-Gnutella08) and names every rank's layout."""
    import json

    from hpc.pagerank.app import main

    path = comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None)
    out = os.path.join(path, "rec.json")
    for graph in ("p2p-Gnutella08.txt", "email-Eu-core.txt"):
        assert main(["--graph", _real(graph), "--quiet", "--json", out]) == 0
        if comm.rank == 0:
            rec = json.load(open(out))
            assert rec["validation"]["passed"]
            lays = rec["column_layouts"]
            assert len(lays) == comm.size
            assert set(lays) <= {"int32", "sorted32", "delta16"}
            assert "columns" in rec["setup_steps_s"] or comm.size > 1 or lays == ["sorted32"]
        comm.Barrier()
