"""The 2D layout's native kernels (``_core.pagerank_2d``): the SELL-4 block product against
SciPy, the teleport-vector update against NumPy, their input checks, and the native 2D solver
(weights, personalization, dangling) against networkx at any rank count (tools/run_tests.sh
runs 1..4 ranks; the 2D grid is then 1x1, 1x2, 3x1 or 2x2)."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.pagerank import graphio
from hpc.pagerank.api import _allgather, teleport_of
from hpc.pagerank.solver import make_solver

comm = MPI.COMM_WORLD
pytestmark = pytest.mark.skipif(not registry.is_available("native"),
                                reason="hpc._core not built")


def _core2d():
    from hpc import _core

    return _core.pagerank_2d


def _power_law_csr(rows: int, cols: int, seed: int) -> sp.csr_matrix:
    """Rows of very different lengths (many empty, a few long), duplicate-free, weighted."""
    rng = np.random.default_rng(seed)
    lens = np.minimum(cols, (rng.pareto(1.2, rows) * 2).astype(np.int64))
    lens[rng.random(rows) < 0.3] = 0
    indptr = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
    idx = np.concatenate([rng.choice(cols, int(k), replace=False) for k in lens] or [[]])
    A = sp.csr_matrix((rng.random(idx.size) + 0.5, idx.astype(np.int64), indptr),
                      shape=(rows, cols))
    A.sort_indices()
    return A


def _block(A: sp.csr_matrix, weighted: bool):
    xc = np.zeros(A.shape[1])
    y = np.full(A.shape[0], np.nan)
    vals = A.data.astype(np.float64) if weighted else np.empty(0)
    blk = _core2d().Block(A.indptr.astype(np.int64), A.indices.astype(np.int64), vals,
                          A.shape[1], xc=xc, y=y)
    return blk, xc, y


@pytest.mark.mpi
@pytest.mark.parametrize("rows,cols", [(0, 5), (1, 1), (7, 3), (5000, 3000), (2500, 8000)])
@pytest.mark.parametrize("weighted", [False, True])
def test_block_product_equals_scipy(rows, cols, weighted):
    A = _power_law_csr(rows, cols, seed=rows + cols)
    blk, xc, y = _block(A, weighted)
    # an empty block has no values to keep: it is a pattern block
    assert (blk.rows, blk.cols, blk.weighted) == (rows, cols, weighted and A.nnz > 0)
    assert blk.padded >= A.nnz and blk.padded % 4 == 0
    assert blk.used == np.unique(A.indices).size
    P = A if weighted else sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)
    rng = np.random.default_rng(1)
    for _ in range(2):                     # the buffers are re-read on every product
        x = rng.random(cols)
        xc[:] = x
        blk.spmv()
        np.testing.assert_allclose(y, P @ x, rtol=1e-13, atol=1e-15)


@pytest.mark.mpi
def test_block_product_with_decimal_weights_equals_scipy():
    """Tenths and cents are no floats but floats times one scale: the block keeps them as
    those floats and scales each row sum (hpc::sell4_float_scale); the product is SciPy's to
    a few ulp."""
    A = _power_law_csr(4000, 3000, seed=3)
    k = np.random.default_rng(2).integers(1, 500, A.nnz)
    for scale in (0.1, 0.01, 0.05):
        A.data = k * scale
        blk, xc, y = _block(A, True)
        xc[:] = np.random.default_rng(1).random(3000)
        blk.spmv()
        np.testing.assert_allclose(y, A @ xc, rtol=1e-14, atol=0)


@pytest.mark.mpi
def test_block_rejects_bad_input():
    k = _core2d()
    A = _power_law_csr(20, 10, seed=2)
    ip, ix = A.indptr.astype(np.int64), A.indices.astype(np.int64)
    ok = dict(xc=np.zeros(10), y=np.zeros(20))
    with pytest.raises(ValueError, match="column index out of range"):
        k.Block(ip, ix, np.empty(0), 5, xc=np.zeros(5), y=np.zeros(20))
    with pytest.raises(ValueError, match="xc"):
        k.Block(ip, ix, np.empty(0), 10, xc=np.zeros(11), y=np.zeros(20))
    with pytest.raises(ValueError, match="y"):
        k.Block(ip, ix, np.empty(0), 10, xc=np.zeros(10), y=np.zeros(19))
    with pytest.raises(ValueError, match="values"):
        k.Block(ip, ix, np.ones(A.nnz + 1), 10, **ok)
    bad = ip.copy()
    bad[-1] += 1
    with pytest.raises(ValueError, match="span"):
        k.Block(bad, ix, np.empty(0), 10, **ok)
    with pytest.raises((ValueError, TypeError)):
        k.Block(ip, ix, np.empty(0), 10, xc=np.zeros(10, dtype=np.float32), y=np.zeros(20))


@pytest.mark.mpi
def test_update_teleport_equals_numpy():
    rng = np.random.default_rng(4)
    n, d, dm = 1000, 0.85, 0.3
    y, x, p, q = (rng.random(n) for _ in range(4))
    inv = rng.random(n)
    inv[rng.random(n) < 0.2] = 0.0
    x0 = x.copy()
    xs = np.empty(n)
    diff, dsum = _core2d().update_teleport(y, x, xs, inv, d, d * dm, 1 - d, p, q)
    xn = d * y + d * dm * q + (1 - d) * p
    np.testing.assert_allclose(x, xn, rtol=1e-15)
    np.testing.assert_allclose(xs, xn * inv, rtol=1e-15)
    assert diff == pytest.approx(np.abs(xn - x0).sum(), rel=1e-13)
    assert dsum == pytest.approx(xn[inv == 0].sum(), rel=1e-13)
    with pytest.raises(ValueError, match="p"):
        _core2d().update_teleport(y, x, xs, inv, d, d * dm, 1 - d, p[:-1], q)


def _random_graph(n: int, m: int, seed: int):
    """A skewed random digraph (preferential targets, some sinks), weights in (0, 5]."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, int(n * 0.8), m)                 # the last fifth are sinks
    dst = np.minimum(n - 1, (rng.pareto(1.0, m) * 20).astype(np.int64))
    e = np.unique(np.column_stack([src, dst]), axis=0)
    e = e[e[:, 0] != e[:, 1]]
    e = np.vstack([e[(e[:, 0] != 0) | (e[:, 1] != n - 1)], [[0, n - 1]]])  # ids 0..n-1
    w = 0.5 + ((e[:, 0] * 31 + e[:, 1] * 17) % 10) / 2.0
    return e, w


@pytest.mark.mpi
@pytest.mark.parametrize("variant", ["plain", "all"])
def test_native_2d_equals_networkx(variant):
    """The native 2D solver (SELL-4 block product) on a skewed graph with long rows, against
    networkx: plain, and weighted + personalization + dangling."""
    n = 3000
    e, w = _random_graph(n, 24_000, seed=5)
    rng = np.random.default_rng(6)
    kw = {}
    if variant == "all":
        kw["personalization"] = {int(v): float(rng.random())
                                 for v in rng.choice(n, n // 5, replace=False)}
        kw["dangling"] = {int(v): float(rng.random()) for v in rng.choice(n, n // 3, replace=False)}
    weighted = variant == "all"
    ref = None
    if comm.rank == 0:
        G = nx.DiGraph()
        G.add_nodes_from(range(n))
        G.add_weighted_edges_from((int(u), int(v), float(x)) for (u, v), x in zip(e, w))
        r = nx.pagerank(G, alpha=0.85, tol=1e-15, max_iter=10_000,
                        weight="weight" if weighted else None, **kw)
        ref = np.array([r[v] for v in range(n)])
    ref = comm.bcast(ref)
    E = np.column_stack([e, w]) if weighted else e
    g = graphio.from_edge_array(E, comm, weights=weighted)
    assert g.n == n
    tp = teleport_of(g, kw.get("personalization"), kw.get("dangling"))
    s = make_solver(g, "native", "2d", tp)
    try:
        assert s.native and s._blk.weighted == (weighted and s.local_nnz > 0)
        res = s.solve(0.85, 1e-15 * n, 10_000)
    finally:
        s.free()
    assert res.converged
    x = _allgather(comm, res.x, g.offsets)
    assert np.abs(x - ref).max() <= 1e-12
