"""PageRank variants against networkx at any rank count (tools/run_tests.sh runs 1..4 ranks):
edge weights, personalization, dangling distributions and undirected graphs, on the real graphs,
in both layouts and on the native and NumPy back ends."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core.errors import InputTypeError, UsageError
from hpc.pagerank import graphio, pagerank
from hpc.pagerank.api import _allgather, solve, teleport_of

from conftest import data_file

comm = MPI.COMM_WORLD
ALPHA = 0.85


def _edges(name: str) -> np.ndarray:
    e = np.loadtxt(data_file("graphs", name), dtype=np.int64, comments=["#", "%"])
    return e.reshape(-1, 2)


def _weights(e: np.ndarray) -> np.ndarray:
    """Deterministic weights in (0, 5], some repeated, a few zero (such a vertex may become
    dangling, as in networkx)."""
    w = ((e[:, 0] * 31 + e[:, 1] * 17) % 11) / 2.0
    return w


@pytest.fixture(scope="module")
def email():
    e = _edges("email-Eu-core.txt")
    n = int(e.max()) + 1
    w = _weights(e)
    rng = np.random.default_rng(11)
    pers = {int(v): float(rng.random()) for v in rng.choice(n, size=n // 4, replace=False)}
    dang = {int(v): float(rng.random()) for v in rng.choice(n, size=n // 3, replace=False)}
    return e, w, n, pers, dang


def _nx(e, n, w=None, undirected=False, alpha=ALPHA, **kw) -> np.ndarray:
    """networkx's answer, computed on rank 0 only (the ranks share two cores in CI)."""
    ref = _nx_serial(e, n, w, undirected, alpha, **kw) if comm.rank == 0 else None
    return comm.bcast(ref)


def _nx_serial(e, n, w=None, undirected=False, alpha=ALPHA, **kw) -> np.ndarray:
    G = nx.Graph() if undirected else nx.DiGraph()
    G.add_nodes_from(range(n))
    if w is None:
        G.add_edges_from(e.tolist())
    else:
        G.add_weighted_edges_from((int(u), int(v), float(x)) for (u, v), x in zip(e, w))
    ref = nx.pagerank(G, alpha=alpha, tol=1e-15, max_iter=10_000,
                      weight="weight" if w is not None else None, **kw)
    return np.array([ref[v] for v in range(n)])


def _backends():
    return [b for b in ("native", "numpy") if registry.is_available(b)]


@pytest.mark.mpi
@pytest.mark.parametrize("variant", ["weighted", "personalized", "dangling", "all", "undirected"])
def test_variant_equals_networkx(email, variant):
    """Both layouts, native and NumPy back ends, against one networkx answer per variant (damping 0.5
    but for 'all': a third of the iterations, each an exchange between busy ranks)."""
    e, w, n, pers, dang = email
    alpha = ALPHA if variant == "all" else 0.5
    weighted = variant in ("weighted", "all")
    undirected = variant == "undirected"
    kw = {}
    if variant in ("personalized", "all"):
        kw["personalization"] = pers
    if variant in ("dangling", "all"):
        kw["dangling"] = dang
    ref = _nx(e, n, w if weighted else None, undirected, alpha, **kw)
    E = np.column_stack([e, w]) if weighted else e
    g = graphio.from_edge_array(E, comm, weights=weighted, undirected=undirected)
    tp = teleport_of(g, kw.get("personalization"), kw.get("dangling"))
    for layout in ("1d", "2d"):
        for backend in _backends():
            if backend == "numpy" and layout == "2d" and variant != "all":
                continue   # the NumPy 2D path once ('all'), to keep the test short
            res = solve(g, alpha, 1e-15 * n, 10_000, backend=backend, layout=layout,
                        teleport=tp)
            assert res.converged
            x = _allgather(comm, res.x, g.offsets)
            assert np.abs(x - ref).max() <= 1e-12, (backend, layout, variant)


@pytest.mark.mpi
def test_api_takes_networkx_names(email):
    e, w, n, pers, dang = email
    ref = _nx(e, n, w, personalization=pers, dangling=dang)
    x = pagerank(np.column_stack([e, w]), ALPHA, pers, weight="weight", dangling=dang,
                 tol=1e-15, max_iter=10_000)
    assert np.abs(x - ref).max() <= 1e-12
    # a personalization given as a vector, and a sparse matrix's values as the weights
    import scipy.sparse as sp

    A = sp.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    vec = np.zeros(n)
    vec[list(pers)] = list(pers.values())
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    Acsr = A.tocoo()   # duplicates summed, as a sparse matrix states them
    G.add_weighted_edges_from(zip(Acsr.row.tolist(), Acsr.col.tolist(), Acsr.data.tolist()))
    ref2 = nx.pagerank(G, alpha=ALPHA, personalization=pers, tol=1e-15, max_iter=10_000)
    x2 = pagerank(A, ALPHA, vec, weight=True, tol=1e-15, max_iter=10_000)
    assert np.abs(x2 - np.array([ref2[v] for v in range(n)])).max() <= 1e-12


@pytest.mark.mpi
def test_duplicate_weighted_edges_keep_the_last(email):
    e = np.array([[0, 1], [1, 2], [0, 1], [2, 0], [1, 2], [2, 2]])
    w = np.array([1.0, 2.0, 5.0, 1.0, 0.5, 3.0])
    ref = _nx(e, 3, w, alpha=0.5)
    x = pagerank(np.column_stack([e, w]), 0.5, weight="weight", tol=1e-15, max_iter=10_000)
    assert np.abs(x - ref).max() <= 1e-14
    # undirected: (u, v, w1) then (v, u, w2) is one edge of weight w2
    ref = _nx(e, 3, w, undirected=True, alpha=0.5)
    x = pagerank(np.column_stack([e, w]), 0.5, weight="weight", undirected=True, tol=1e-15,
                 max_iter=10_000)
    assert np.abs(x - ref).max() <= 1e-14


@pytest.mark.mpi
@pytest.mark.parametrize("kw,exc,what", [
    (dict(personalization={0: -1.0, 1: 2.0}), UsageError, "personalization"),
    (dict(personalization={999: 1.0}), UsageError, "personalization"),
    (dict(personalization=[1.0, 2.0]), UsageError, "personalization"),
    (dict(dangling={0: float("nan")}), UsageError, "dangling"),
    (dict(personalization="abc"), InputTypeError, "personalization"),
    (dict(weight=3), InputTypeError, "weight"),
])
def test_bad_variant_arguments_raise(kw, exc, what):
    e = np.array([[0, 1], [1, 2], [2, 0]])
    with pytest.raises(exc, match=what):
        pagerank(e, **kw)


@pytest.mark.mpi
def test_negative_weight_is_refused():
    with pytest.raises(UsageError, match="weights must be finite"):
        pagerank(np.array([[0, 1, 1.0], [1, 0, -2.0]]), weight="weight")


@pytest.mark.mpi
@pytest.mark.parametrize("backend,layout", [("native", "1d"), ("numpy", "2d")])
def test_solve_and_index_build_report_progress(backend, layout):
    """The iteration reports (iteration, change) every PROGRESS_EVERY iterations; the index
    build reports each round of walks."""
    from hpc.pagerank import PPRIndex
    from hpc.pagerank.solver import PROGRESS_EVERY, make_solver

    if not registry.is_available(backend):
        pytest.skip(f"{backend} back end not built")
    g = graphio.generate_kron("kron:8:8", 1, comm)
    calls: list = []
    solver = make_solver(g, backend, layout)
    try:
        res = solver.solve(0.85, 1e-13, 1000, progress=lambda it, ch: calls.append((it, ch)))
    finally:
        solver.free()
    its = [c[0] for c in calls]
    assert its == list(range(PROGRESS_EVERY, res.iterations, PROGRESS_EVERY))
    assert all(c[1] >= 1e-13 for c in calls)
    rounds: list = []
    PPRIndex.build(g, walks=2, keep=4, batch=16, progress=rounds.append, walk_rule="uniform")
    assert rounds == list(range(len(rounds))) and len(rounds) == -(-int(np.diff(g.offsets).max()) // 16)


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["p2p-Gnutella08.txt", "email-Eu-core.txt"])
def test_gauss_seidel_gives_the_jacobi_answer(name, email):
    """Gauss-Seidel sweeps in each rank's block stop on the Jacobi residual: the same answer
    as Jacobi to the tolerance (L1 <= 2 tol / (1 - d) apart: both within tol d/(1-d) of the
    fixed point), in no more iterations; plain and weighted + personalized."""
    e = _edges(name)
    tol = 1e-11
    cases = [(e, False, {})]
    if name.startswith("email"):
        _, w, _, pers, dang = email
        cases.append((np.column_stack([e, w]), True, dict(personalization=pers, dangling=dang)))
    for E, weighted, kw in cases:
        g = graphio.from_edge_array(E, comm, weights=weighted)
        tp = teleport_of(g, kw.get("personalization"), kw.get("dangling"))
        jac = solve(g, ALPHA, tol, 10_000, backend="numpy", teleport=tp)
        for backend in _backends():
            gs = solve(g, ALPHA, tol, 10_000, backend=backend, teleport=tp,
                       sweep="gauss-seidel")
            assert gs.converged and gs.l1_change < tol
            assert gs.iterations <= jac.iterations, (gs.iterations, jac.iterations)
            xg, xj = (_allgather(comm, r.x, g.offsets) for r in (gs, jac))
            assert np.abs(xg - xj).sum() <= 2 * tol / (1 - ALPHA)
            assert abs(xg.sum() - 1.0) <= 1e-12
    if name.startswith("p2p"):   # a graph where the sweeps pay (11 vs 20 on one rank; the
        # more blocks, the more of the graph sees only the last exchange: 18 vs 22 on 4)
        assert gs.iterations < jac.iterations, (gs.iterations, jac.iterations)
        if comm.size == 1:
            assert gs.iterations <= 0.75 * jac.iterations, (gs.iterations, jac.iterations)


@pytest.mark.mpi
def test_gauss_seidel_needs_the_1d_layout():
    g = graphio.from_edge_array(np.array([[0, 1], [1, 0]]), comm)
    with pytest.raises(UsageError, match="layout 1d"):
        solve(g, ALPHA, 1e-10, 100, layout="2d", sweep="gauss-seidel")
    with pytest.raises(UsageError, match="sweep"):
        solve(g, ALPHA, 1e-10, 100, sweep="sor")


@pytest.mark.mpi
@pytest.mark.parametrize("reduce,weighted", [("piggyback", False), ("allreduce", False),
                                             ("piggyback", True), ("allreduce", True)])
def test_native_fast_path_takes_personalization_and_dangling(email, reduce, weighted):
    """The native 1D solver (SELL-4 sweep) runs personalized / dangling and weighted
    PageRank itself, in both of its reduction modes, with networkx's answer; unweighted rows
    are re-balanced, so the distributions move with them (weighted ones keep their blocks;
    a vertex whose out-weights are all 0 is dangling)."""
    from hpc.pagerank.solver import Native1D, make_solver

    if not registry.is_available("native"):
        pytest.skip("native back end not built")
    e, w, n, pers, dang = email
    ref = _nx(e, n, w if weighted else None, False, 0.5, personalization=pers, dangling=dang)
    g = graphio.from_edge_array(np.column_stack([e, w]) if weighted else e, comm,
                                weights=weighted)
    tp = teleport_of(g, pers, dang)
    chosen = make_solver(g, "native", "1d", tp)
    chosen.free()
    assert isinstance(chosen, Native1D)
    s = Native1D(g, teleport=tp, reduce=reduce)
    try:
        res = s.solve(0.5, 1e-15 * n, 10_000)
        change, total = s.residual(res.x, 0.5)
    finally:
        s.free()
    x = _allgather(comm, res.x, g.offsets)
    assert res.converged and np.abs(x - ref).max() <= 1e-12
    assert change < 1e-15 * n and abs(total - 1.0) < 1e-12   # |G(x) - x| <= d * tol


@pytest.mark.mpi
def test_native_sweep_threads_give_the_same_scores():
    """The SELL-4 sweep splits its chunks between threads by work (rows are sorted by
    in-degree, so equal chunk counts put ~89% of kron:17's edges on the first of 2 threads),
    in pieces taken dynamically or a static run of pieces a thread; every row's update is the
    same arithmetic whatever the split, and each piece's change and dangling mass are summed
    in piece order, so the scores are the same bits at any thread count."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from hpc.pagerank.solver import Native1D

    if not registry.is_available("native"):
        pytest.skip("native back end not built")
    g = graphio.generate_kron("kron:13:8", 3, comm)
    xs = {}
    for t in (1, 2, 3):
        for how in ("dynamic", "static"):
            with threadpoolctl.threadpool_limits(t, user_api="openmp"):
                s = Native1D(g)
                try:
                    assert s.sweep.schedule == "dynamic"      # the default
                    assert 8 <= s.sweep.pieces <= 256
                    if comm.size == 1:   # enough work for a parallel region (2^16 units)
                        assert s.sweep.padded + 4 * s.sweep.rows >= 1 << 16
                    s.sweep.schedule = how
                    xs[t, how] = s.solve(0.85, 1e-12, 1000).x
                finally:
                    s.free()
    for key, x in xs.items():          # per-piece sums added in piece order: the same bits
        assert np.array_equal(x, xs[1, "static"]), key
    s = Native1D(g)
    try:
        with pytest.raises(ValueError, match="schedule"):
            s.sweep.schedule = "guided"
    finally:
        s.free()


@pytest.mark.mpi
@pytest.mark.parametrize("layout", ["int16", "int16 (tenths)", "coded", "values32", "scaled32",
                                    "values"])
def test_native_weight_layouts_equal_networkx(email, layout):
    """The SELL-4 sweep keeps weights that are integers below 2^16 times one scale (here
    halves: a power of two; and tenths) as 16-bit integers beside the columns, weights that
    are all exactly floats (here integers up to 10^6) as floats, weights that are floats times
    one scale (here tenths up to 10^4) as those floats (each row sum times the scale), codes at
    most 256 distinct other weights (here 200 random doubles) into its column indices, and
    keeps doubles otherwise (random weights); each gives networkx's weighted answer to 1e-12,
    uniform and with personalization + dangling."""
    from hpc.pagerank.solver import Native1D

    if not registry.is_available("native"):
        pytest.skip("native back end not built")
    e, w, n, pers, dang = email
    if layout == "values":   # continuous weights: every edge its own value
        w = 0.25 + np.random.default_rng(5).random(e.shape[0])
    elif layout == "values32":   # integers up to 10^6: each exactly a float, not 16 bits
        w = np.random.default_rng(5).integers(1, 1_000_000, e.shape[0]).astype(np.float64)
    elif layout == "scaled32":   # tenths up to 10^4: floats times 0.1, not 16 bits
        w = ((e[:, 0] * 3001 + e[:, 1] * 17) % 100_003) / 10.0
    elif layout == "int16":      # halves 0..5 (the default _weights): integers times 1/2
        w = _weights(e)
    elif layout == "int16 (tenths)":   # 11 values k/10: integers times 0.1 (within 2 ulp)
        w = ((e[:, 0] * 31 + e[:, 1] * 17) % 11) / 10.0
    else:   # 200 distinct random doubles: no common scale
        w = (0.25 + np.random.default_rng(5).random(200))[(e[:, 0] * 31 + e[:, 1] * 17) % 200]
    g = graphio.from_edge_array(np.column_stack([e, w]), comm, weights=True)
    for kw in ({}, {"personalization": pers, "dangling": dang}):
        ref = _nx(e, n, w, False, 0.85, **kw)
        s = Native1D(g, teleport=teleport_of(g, kw.get("personalization"), kw.get("dangling")))
        try:
            assert s.sweep.weight_layout == layout.split()[0]
            res = s.solve(0.85, 1e-15 * n, 10_000)
        finally:
            s.free()
        x = _allgather(comm, res.x, g.offsets)
        assert res.converged and np.abs(x - ref).max() <= 1e-12, kw


@pytest.mark.mpi
def test_native_local_loop_equals_the_python_loop():
    """One rank runs its iterations natively (Sweep.run_local, in batches between progress
    calls): the same iterate and count as step_dm driven from Python, with and without
    progress; a sweep that exchanges with other ranks refuses it."""
    from hpc.pagerank.solver import Native1D

    if not registry.is_available("native"):
        pytest.skip("native back end not built")
    g = graphio.generate_kron("kron:11:8", 5, comm)
    s = Native1D(g)
    try:
        if comm.size > 1:
            with pytest.raises(ValueError, match="exchanges"):
                s.sweep.run_local(0.85, float(g.n), 1e-10, 5)
            return
        assert s.mode == "local"
        seen = []
        res = s.solve(0.85, 1e-12, 1000, progress=lambda it, ch: seen.append(it))
        assert res.converged and seen == list(range(16, res.iterations, 16))
        again = s.solve(0.85, 1e-12, 1000)
        assert np.array_equal(again.x, res.x) and again.iterations == res.iterations
        cut = s.solve(0.85, 1e-12, 7)
        assert cut.iterations == 7 and not cut.converged
        k, n = s.sweep, float(g.n)
        k.start(np.full(s.nlocal, 1.0 / n))       # the Python loop over step_dm
        it, change = 0, float("inf")
        while change >= 1e-12:
            k.step_dm(0.85, float(s.part[1]), n)
            change, it = float(s.part[0]), it + 1
        assert it == res.iterations and change == res.l1_change
        assert np.array_equal(s.x[s.pos], res.x)
    finally:
        s.free()
