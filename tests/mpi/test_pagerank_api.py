"""hpc.pagerank's Python API at any rank count (tools/run_tests.sh runs 1..4 ranks):
pagerank() against networkx.pagerank for every kind of input, personalized() against exact
PPR (networkx with personalization), PPRIndex save/load, and wrong inputs."""
from __future__ import annotations

import os
import tempfile

import networkx as nx
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from mpi4py import MPI

from hpc.pagerank import PowerIterationFailedConvergence, PPRIndex, TopK, pagerank, personalized
from hpc.pagerank import graphio
from hpc.sparse import DistCSR

from conftest import data_file

comm = MPI.COMM_WORLD


def _real(name: str) -> str:
    return str(data_file("graphs", name))


@pytest.fixture
def tmpdir_shared():
    d = tempfile.mkdtemp(prefix="hpc_prapi_") if comm.rank == 0 else None
    return comm.bcast(d)


def _random_edges(n: int = 60, m: int = 240, seed: int = 7) -> np.ndarray:
    """Edges with duplicates, self-loops, dangling vertices (every id % 7 == 3 has no
    out-edge), one isolated vertex (11) and the largest id n-1 present."""
    rng = np.random.default_rng(seed)
    e = rng.integers(0, n, size=(m, 2))
    e = e[(e[:, 0] % 7 != 3) & (e[:, 0] != 11) & (e[:, 1] != 11)]
    e = np.concatenate([e, [[0, n - 1], [5, 5], [5, 5], [0, 1], [0, 1]]]).astype(np.int64)
    return e


def _nx_graph(edges: np.ndarray, n: int) -> nx.DiGraph:
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from(edges.tolist())
    return G


def _nx_vector(G: nx.DiGraph, order, **kw) -> np.ndarray:
    ref = nx.pagerank(G, **kw)
    return np.array([ref[v] for v in order])


def _same_everywhere(x: np.ndarray) -> bool:
    xs = comm.allgather(np.asarray(x))
    return all(np.array_equal(xs[0], y) for y in xs)


def _write_snap(path: str, edges: np.ndarray) -> None:
    if comm.rank == 0:
        with open(path, "w") as f:
            f.write("# a SNAP edge list\n")
            for u, v in edges:
                f.write(f"{u}\t{v}\n")
    comm.Barrier()


# ------------------------------------------------------------------------------ pagerank()
@pytest.mark.mpi
@pytest.mark.parametrize("alpha", [0.85, 0.5])
def test_pagerank_global_inputs_equal_networkx(tmpdir_shared, alpha):
    e = _random_edges()
    n = int(e.max()) + 1
    G = _nx_graph(e, n)
    A = sp.coo_array((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    path = os.path.join(tmpdir_shared, "g.txt")
    _write_snap(path, e)
    mtx = os.path.join(tmpdir_shared, "g.mtx")
    if comm.rank == 0:
        Ac = A.tocsr()
        Ac.sum_duplicates()
        scipy.io.mmwrite(mtx, Ac)
    comm.Barrier()
    ref = _nx_vector(G, range(n), alpha=alpha)                  # networkx's defaults
    tight = _nx_vector(G, range(n), alpha=alpha, tol=1e-14, max_iter=1000)
    for given in (e, A, sp.csr_matrix(A), mtx):
        x = pagerank(given, alpha)
        assert x.shape == (n,) and x.dtype == np.float64
        assert np.abs(x - ref).max() <= 1e-12, type(given)   # the same iterate
        assert _same_everywhere(x)
        assert np.abs(pagerank(given, alpha, tol=1e-14, max_iter=1000) - tight).max() <= 1e-13
    # a file: its vertices are the ids that occur (11 does not), in ascending order
    present = np.unique(e).tolist()
    assert 11 not in present
    Gf = G.subgraph(present).copy()
    x = pagerank(path, alpha, tol=1e-14, max_iter=1000)
    assert np.abs(x - _nx_vector(Gf, present, alpha=alpha, tol=1e-14, max_iter=1000)).max() <= 1e-13


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["email-Eu-core.txt", "p2p-Gnutella08.txt"])
def test_pagerank_real_graph_equals_networkx(name):
    path = _real(name)
    G = nx.read_edgelist(path, create_using=nx.DiGraph, nodetype=int, comments="#")
    order = sorted(G)
    assert order == list(range(len(order)))                   # ids 0..n-1 in these files
    x = pagerank(path)
    assert np.abs(x - _nx_vector(G, order)).max() <= 1e-12
    assert abs(x.sum() - 1.0) < 1e-12


@pytest.mark.mpi
def test_pagerank_distributed_inputs_give_blocks():
    e = _random_edges(n=90, m=400, seed=3)
    n = int(e.max()) + 1
    ref = _nx_vector(_nx_graph(e, n), range(n), tol=1e-14, max_iter=1000)
    g = graphio.from_edge_array(e, comm)
    x = pagerank(g, tol=1e-14, max_iter=1000)
    assert x.shape == (g.nlocal,)
    assert np.abs(x - ref[g.ids]).max(initial=0.0) <= 1e-13
    # a DistCSR with uneven row blocks (at 4 ranks the last is empty): the result follows
    # its rows; values are ignored
    A = sp.csr_array((np.full(len(e), 2.5), (e[:, 0], e[:, 1])), shape=(n, n))
    cuts = np.array([0] + [min(n, 7 + 11 * k * k) for k in range(1, comm.size)] + [n])
    D = DistCSR.from_scipy(A, comm, row_offsets=cuts)
    y = pagerank(D, tol=1e-14, max_iter=1000)
    lo, hi = cuts[comm.rank], cuts[comm.rank + 1]
    assert y.shape == (hi - lo,) and np.abs(y - ref[lo:hi]).max(initial=0.0) <= 1e-13


@pytest.mark.mpi
def test_pagerank_on_a_subcommunicator():
    """comm=COMM_SELF: every rank solves alone, with the same answer."""
    e = _random_edges(seed=11)
    n = int(e.max()) + 1
    x = pagerank(e, comm=MPI.COMM_SELF)
    assert np.abs(x - _nx_vector(_nx_graph(e, n), range(n))).max() <= 1e-12
    half = comm.Split(comm.rank % 2, comm.rank)
    try:
        assert np.abs(pagerank(e, comm=half) - x).max() <= 1e-15
    finally:
        half.Free()


@pytest.mark.mpi
def test_pagerank_raises_like_networkx_without_convergence():
    e = _random_edges()
    with pytest.raises(PowerIterationFailedConvergence, match="3 iterations"):
        pagerank(e, max_iter=3)
    G = _nx_graph(e, int(e.max()) + 1)
    with pytest.raises(nx.PowerIterationFailedConvergence):
        nx.pagerank(G, max_iter=3)
    assert issubclass(PowerIterationFailedConvergence, RuntimeError)


@pytest.mark.mpi
@pytest.mark.parametrize("args,kw,exc,what", [
    ((sp.csr_array(np.ones((3, 4))),), {}, ValueError, "square"),
    ((np.array([[0, 1], [-2, 1]]),), {}, ValueError, "non-negative"),
    ((np.array([[0, 1, 2]]),), {}, ValueError, r"\(m, 2\)"),
    ((np.zeros((0, 2), dtype=np.int64),), {}, ValueError, "empty"),
    ((np.array([[0.0, 1.0]]),), {}, TypeError, "integers"),
    (({0: [1]},), {}, TypeError, "G: expected"),
    ((np.array([[0, 1]]), 1.0), {}, ValueError, "alpha"),
    ((np.array([[0, 1]]), 0.0), {}, ValueError, "alpha"),
    ((np.array([[0, 1]]), "0.85"), {}, TypeError, "alpha"),
    ((np.array([[0, 1]]),), {"tol": 0.0}, ValueError, "tol"),
    ((np.array([[0, 1]]),), {"tol": -1e-6}, ValueError, "tol"),
    ((np.array([[0, 1]]),), {"max_iter": 0}, ValueError, "max_iter"),
    ((np.array([[0, 1]]),), {"max_iter": 2.5}, TypeError, "max_iter"),
    ((np.array([[0, 1]]),), {"comm": 3}, TypeError, "comm"),
    (("/nonexistent/graph.txt",), {}, ValueError, "cannot read"),
])
def test_pagerank_wrong_input_raises(args, kw, exc, what):
    with pytest.raises(exc, match=what):
        pagerank(*args, **kw)


@pytest.mark.mpi
def test_pagerank_malformed_file_raises(tmpdir_shared):
    path = os.path.join(tmpdir_shared, "bad.txt")
    if comm.rank == 0:
        with open(path, "w") as f:
            f.write("0 1\n1 x\n")
    comm.Barrier()
    with pytest.raises(ValueError, match="line 2"):
        pagerank(path)


# ------------------------------------------------------------------------------ personalized()
def _exact_topk(G: nx.DiGraph, s, alpha: float = 0.85) -> dict:
    return nx.pagerank(G, alpha=alpha, personalization={s: 1}, tol=1e-13, max_iter=10_000)


def _precision(ids: np.ndarray, exact: dict, k: int) -> float:
    """Share of the reported top k in the exact top k (ties-aware; k shrinks to the number
    of vertices with a score above networkx's rounding, 1e-9)."""
    vals = np.sort(np.array(list(exact.values())))[::-1]
    k = min(k, int((vals > 1e-9).sum()))
    kth = vals[k - 1]
    got = [v for v in ids[:k] if v >= 0]
    return sum(exact[int(v)] >= kth - 1e-12 for v in got) / k


@pytest.mark.mpi
def test_personalized_matches_exact_ppr_on_a_real_graph():
    path = _real("email-Eu-core.txt")
    G = nx.read_edgelist(path, create_using=nx.DiGraph, nodetype=int, comments="#")
    sources = [0, 17, 160, 434, 1000]
    res = personalized(path, sources, topk=20)
    assert isinstance(res, TopK) and res.ids.shape == (5, 20) and res.scores.shape == (5, 20)
    assert _same_everywhere(res.ids) and _same_everywhere(res.scores)
    prec = []
    for i, s in enumerate(sources):
        exact = _exact_topk(G, s)
        prec.append(_precision(res.ids[i], exact, 20))
        assert np.all(np.diff(res.scores[i]) <= 1e-15)          # best first
        # the scores estimate the exact ones
        assert np.abs(res.scores[i] - [exact[int(v)] for v in res.ids[i]]).max() < 0.05
    assert np.mean(prec) >= 0.9, prec


@pytest.mark.mpi
def test_personalized_small_graph_with_dangling_vertices():
    e = _random_edges(n=80, m=500, seed=5)
    n = int(e.max()) + 1
    G = _nx_graph(e, n)
    sources = np.array([0, 3, 11, 42])                           # 3: dangling, 11: isolated
    res = personalized(e, sources, topk=10, walks=400, alpha=0.8)
    for i, s in enumerate(sources):
        exact = _exact_topk(G, int(s), 0.8)
        assert _precision(res.ids[i], exact, 10) >= 0.7
    # a dangling or isolated source keeps all its mass: itself, score 1
    for i in (1, 2):
        assert res.ids[i, 0] == sources[i] and abs(res.scores[i, 0] - 1.0) < 1e-12
        assert np.all(res.ids[i, 1:] == -1) and np.all(res.scores[i, 1:] == 0)


@pytest.mark.mpi
def test_ppr_index_save_load_round_trip(tmpdir_shared):
    path = _real("p2p-Gnutella08.txt")
    idx = PPRIndex.build(path, walks=60, keep=64, seed=4)
    assert idx.graph.n == 6301 and idx.keep == 64
    sources = [0, 5, 17, 633, 2000]
    a = personalized(path, sources, index=idx)
    f = os.path.join(tmpdir_shared, "idx.h5")
    idx.save(f)
    back = PPRIndex.load(f, path)
    assert (back.alpha, back.walks, back.keep, back.seed) == (0.85, 60, 64, 4)
    b = personalized(path, sources, index=back)
    assert np.array_equal(a.ids, b.ids) and np.abs(a.scores - b.scores).max() <= 1e-15
    # the same answer from the in-memory edge list the file holds (the graph's own ids)
    G = nx.read_edgelist(path, create_using=nx.DiGraph, nodetype=int, comments="#")
    edges = np.array(list(G.edges), dtype=np.int64)
    c = personalized(edges, sources, index=PPRIndex.load(f, edges))
    assert np.array_equal(a.ids, c.ids) and np.abs(a.scores - c.scores).max() <= 1e-15
    prec = [_precision(a.ids[i], _exact_topk(G, s), 20) for i, s in enumerate(sources)]
    assert np.mean(prec) >= 0.9, prec
    # an index of another graph, or another alpha, is refused
    other = _real("email-Eu-core.txt")
    with pytest.raises(ValueError, match="another graph"):
        PPRIndex.load(f, other)
    with pytest.raises(ValueError, match="another graph"):
        personalized(other, [1], index=idx)
    with pytest.raises(ValueError, match="alpha"):
        personalized(path, [1], index=idx, alpha=0.5)
    with pytest.raises(ValueError, match="cannot read"):
        PPRIndex.load(os.path.join(tmpdir_shared, "missing.h5"), path)


@pytest.mark.mpi
@pytest.mark.parametrize("sources,kw,exc,what", [
    ([0, 99], {}, ValueError, "not a vertex"),
    ([-1], {}, ValueError, "non-negative"),
    ([], {}, ValueError, "no vertex ids"),
    ([0.5], {}, TypeError, "integers"),
    ([0], {"topk": 0}, ValueError, "topk"),
    ([0], {"alpha": 1.5}, ValueError, "alpha"),
    ([0], {"index": "idx.h5"}, TypeError, "PPRIndex"),
])
def test_personalized_wrong_input_raises(sources, kw, exc, what):
    e = np.array([[0, 1], [1, 2], [2, 0], [3, 1]])
    with pytest.raises(exc, match=what):
        personalized(e, sources, **kw)


@pytest.mark.mpi
def test_ppr_index_wrong_input_raises():
    e = np.array([[0, 1], [1, 2], [2, 0]])
    with pytest.raises(ValueError, match="walks"):
        PPRIndex.build(e, walks=0)
    with pytest.raises(ValueError, match="alpha"):
        PPRIndex.build(e, alpha=1.0)
    with pytest.raises(TypeError, match="G: expected"):
        PPRIndex.build(42)
    idx = PPRIndex.build(e, walks=5)
    with pytest.raises(TypeError, match="path"):
        idx.save(3)
