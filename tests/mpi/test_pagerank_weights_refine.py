"""Mixed precision with defect correction for the 1D sweep's weights that no exact narrow layout
holds ('values': random doubles, and 'coded', at most 256 distinct values): most sweeps read 16-bit
integers (or floats) rounding the weights plus a per-row correction made by an exact sweep, the
stop is taken only on an exact sweep's change (networkx's rule on the float64 Jacobi residual).
The answer must be networkx's to 1e-12, as the exact sweeps give. Only a rank alone refines
(Sweep.run_local); with several ranks the weights keep the 'values' sweep. Runs at any rank count
(``mpiexec -n 3 python -m pytest --with-mpi tests/mpi/test_pagerank_weights_refine.py``)."""
from __future__ import annotations

import os

import networkx as nx
import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.pagerank import graphio
from hpc.pagerank.api import _allgather, teleport_of

from conftest import kron_edges as _kron_edges

comm = MPI.COMM_WORLD

pytestmark = pytest.mark.skipif(not registry.is_available("native"),
                                reason="native back end not built")


def _nx_ref(e, n, w, alpha=0.85, **kw):
    ref = None
    if comm.rank == 0:
        G = nx.DiGraph()
        G.add_nodes_from(range(n))
        G.add_weighted_edges_from((int(u), int(v), float(x)) for (u, v), x in zip(e, w))
        r = nx.pagerank(G, alpha=alpha, tol=1e-15, max_iter=10_000, weight="weight", **kw)
        ref = np.array([r[v] for v in range(n)])
    return comm.bcast(ref)


def _solve(e, w, tol, alpha=0.85, exact=False, **kw):
    """(x, iterations, layout, refine, (exact, cheap) sweeps) of the native 1D solver;
    exact=True: with HPC_PAGERANK_REFINE=0 (every sweep on the exact weights)."""
    from hpc.pagerank.solver import Native1D

    g = graphio.from_edge_array(np.column_stack([e, w]), comm, weights=True)
    old = os.environ.get("HPC_PAGERANK_REFINE")
    if exact:
        os.environ["HPC_PAGERANK_REFINE"] = "0"
    try:
        s = Native1D(g, teleport=teleport_of(g, kw.get("personalization"), kw.get("dangling")))
    finally:
        if exact:
            if old is None:
                del os.environ["HPC_PAGERANK_REFINE"]
            else:
                os.environ["HPC_PAGERANK_REFINE"] = old
    try:
        res = s.solve(alpha, tol, 10_000)
        out = (_allgather(comm, res.x, g.offsets), res.iterations, s.sweep.weight_layout,
               s.sweep.refine, tuple(s.sweep.refine_counts), res.converged)
    finally:
        s.free()
    return out


def _weights(kind, e):
    rng = np.random.default_rng(5)
    if kind == "values":       # every edge its own double, range 5: int16 rounding
        return 0.25 + rng.random(e.shape[0])
    if kind == "coded":        # 200 distinct random doubles
        return (0.25 + rng.random(200))[(e[:, 0] * 31 + e[:, 1] * 17) % 200]
    return 10.0 ** rng.uniform(-6, 6, e.shape[0])   # 'wide': 12 decades, float rounding


@pytest.mark.mpi
@pytest.mark.parametrize("kind,layout,refine", [("values", "values", "int16"),
                                                ("wide", "values", "float32")])
def test_refined_weights_equal_networkx(kind, layout, refine):
    e, n = _kron_edges()
    w = _weights(kind, e)
    rng = np.random.default_rng(11)
    pers = {int(v): float(rng.random()) for v in rng.choice(n, size=n // 4, replace=False)}
    dang = {int(v): float(rng.random()) for v in rng.choice(n, size=n // 3, replace=False)}
    for kw in ({}, {"personalization": pers, "dangling": dang}):
        ref = _nx_ref(e, n, w, **kw)
        x, it, lay, ref_kind, (nex, nch), conv = _solve(e, w, 1e-15 * n, **kw)
        assert lay == layout and ref_kind == (refine if comm.size == 1 else "none")
        assert conv and np.abs(x - ref).max() <= 1e-12, kw
        # the same answer and about the same sweeps as the exact sweeps alone
        x0, it0, lay0, ref0, _, conv0 = _solve(e, w, 1e-15 * n, exact=True, **kw)
        assert ref0 == "none" and lay0 == layout and conv0
        assert np.abs(x - x0).sum() <= 1e-15 * n * 0.85 / 0.15   # both within tol of the fixed point
        assert it0 - 1 <= it <= it0 + 2, (it, it0)
        # one rank: most sweeps cheap (only the refreshes and the last ones exact); several:
        # the 'values' sweep as before
        if comm.size == 1:
            assert nex + nch == it and nch > 2 * nex, (nex, nch)
        else:
            assert nex == nch == 0 and it == it0


@pytest.mark.mpi
def test_refined_stop_is_on_an_exact_sweep():
    """At the usual tolerance the last sweep is exact: its change is the float64 Jacobi residual
    of the iterate before it (recomputed here with the exact weights), below tol."""
    from hpc.pagerank.solver import Native1D

    e, n = _kron_edges(11, 8)
    w = _weights("values", e)
    tol = 1e-10 * n
    g = graphio.from_edge_array(np.column_stack([e, w]), comm, weights=True)
    s = Native1D(g)
    try:
        res = s.solve(0.85, tol, 10_000)
        assert s.sweep.refine == ("int16" if comm.size == 1 else "none")
        nex, nch = s.sweep.refine_counts
        assert (nch > 0) == (comm.size == 1) and res.converged and res.l1_change < tol
        change, total = s.residual(res.x, 0.85)   # one exact sweep from the answer
        assert abs(total - 1.0) < tol
        assert change < tol
    finally:
        s.free()
    x0, it0, *_ = _solve(e, w, tol, exact=True)
    x = _allgather(comm, res.x, g.offsets)
    assert res.iterations <= it0 + 1
    assert np.abs(x - x0).sum() <= 2 * tol


@pytest.mark.mpi
def test_refined_weights_pack_with_fewer_bits_where_columns_lie_far_apart():
    """Rows whose columns lie far apart (3 uniform columns of 2^17: gaps of 2^16 in a quarter of
    the rows) need deltas wider than the 16 bits 16-bit weights leave: the refined layout packs
    its cheap sweeps' weights into fewer bits ('delta17' or wider) while their rounding passes
    the bound (0.25 + [0, 1), range 5: 14 bits at the fewest), and the answer is still
    networkx's to 1e-12. Several ranks: not refined, not packed."""
    from hpc.pagerank.solver import Native1D

    rng = np.random.default_rng(8)
    n = 1 << 17
    e = np.unique(np.column_stack([np.repeat(np.arange(n), 3), rng.integers(0, n, 3 * n)]), axis=0)
    w = 0.25 + rng.random(e.shape[0])
    g = graphio.from_edge_array(np.column_stack([e, w]), comm, weights=True)
    assert g.n == n
    s = Native1D(g)
    try:
        res = s.solve(0.85, 1e-15 * n, 10_000)
        packing, (nex, nch) = s.sweep.weight_packing, s.sweep.refine_counts
    finally:
        s.free()
    x = _allgather(comm, res.x, g.offsets)
    ref = _nx_ref(e, n, w)
    assert res.converged and np.abs(x - ref).max() <= 1e-12
    if comm.size == 1:
        assert packing.startswith("delta") and 17 <= int(packing[5:]) <= 18, packing
        assert nch > 2 * nex, (nex, nch)
    else:
        assert packing == "none" and nex == nch == 0


@pytest.mark.mpi
def test_refine_is_refused_where_the_rounding_bound_fails():
    """Damping 0.99 makes the int16 rounding's contraction bound too weak: every sweep exact
    (on the packed words, summed in their order: the iterates of the unrefined sweep to
    rounding)."""
    e, n = _kron_edges(9, 8)
    w = _weights("values", e)
    x, it, _, refine, (nex, nch), _ = _solve(e, w, 1e-12 * n, alpha=0.99)
    x0, it0, *_ = _solve(e, w, 1e-12 * n, alpha=0.99, exact=True)
    assert refine == ("int16" if comm.size == 1 else "none") and nch == 0
    assert nex == (it if comm.size == 1 else 0)
    assert abs(it - it0) <= 1      # several ranks: the schedule may hold the stop one sweep
    assert np.abs(x - x0).max() <= 1e-12


@pytest.mark.mpi
@pytest.mark.parametrize("scale", [9, 11])
def test_coded_weights_refine_with_a_table(scale):
    """At most 256 distinct weights: on a rank alone the cheap sweeps read 16-bit weights packed
    with the columns and the exact ones the same words, the exact weight from a table by the
    16-bit one (ScaledWeights::assign_table); several ranks keep the coded columns. networkx's
    answer either way, and the exact coded sweeps' (HPC_PAGERANK_REFINE=0) within tol."""
    e, n = _kron_edges(scale, 8)
    w = _weights("coded", e)
    tol = 1e-15 * n
    x, it, lay, refine, (nex, nch), conv = _solve(e, w, tol)
    assert lay == "coded" and conv
    assert np.abs(x - _nx_ref(e, n, w)).max() <= 1e-12
    x0, it0, lay0, ref0, _, conv0 = _solve(e, w, tol, exact=True)
    assert lay0 == "coded" and ref0 == "none" and conv0
    assert np.abs(x - x0).sum() <= tol * 0.85 / 0.15
    assert it0 - 1 <= it <= it0 + 2, (it, it0)
    if comm.size == 1:
        assert refine == "int16" and nex + nch == it and nch > 2 * nex, (nex, nch)
    else:
        assert refine == "none" and nex == nch == 0 and it == it0


@pytest.mark.mpi
def test_coded_weights_sharing_a_rounding_get_their_own_integers():
    """Weights 2^-20 apart round to one 16-bit integer: each still gets its own (the next one
    up), so the table names every weight; the answer is networkx's. Weights crowded so close
    that their own integers would round them too far keep the coded sweep (no refinement)."""
    e, n = _kron_edges(10, 8)
    pick = (e[:, 0] * 31 + e[:, 1] * 17) % 100
    near = np.where(pick % 2 == 0, 0.5, 0.5 + 2.0 ** -20) + (pick // 2) * 0.01
    crowded = 1.0 + pick * 1e-9
    for w, refined in ((near, True), (crowded, False)):
        x, it, lay, refine, (nex, nch), conv = _solve(e, w, 1e-15 * n)
        assert lay == "coded" and conv
        assert refine == ("int16" if refined and comm.size == 1 else "none")
        assert (nch > 0) == (refined and comm.size == 1)
        assert np.abs(x - _nx_ref(e, n, w)).max() <= 1e-12


@pytest.mark.mpi
def test_coded_refine_is_refused_where_the_rounding_bound_fails():
    """Damping 0.99: every sweep exact (the packed words and the table), networkx's answer."""
    e, n = _kron_edges(9, 8)
    w = _weights("coded", e)
    x, it, lay, refine, (nex, nch), conv = _solve(e, w, 1e-12 * n, alpha=0.99)
    x0, it0, *_ = _solve(e, w, 1e-12 * n, alpha=0.99, exact=True)
    assert lay == "coded" and conv and nch == 0 and abs(it - it0) <= 1
    assert np.abs(x - x0).max() <= 1e-12


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["values", "coded"])
def test_a_second_solve_repeats_the_first(kind):
    """Each solve starts its correction from 0 (Sweep.start): solving again from the same start
    gives the same sweeps and the same bits (the last solve's correction had been kept: 24-26
    sweeps against 22 on kron:17:16)."""
    from hpc.pagerank.solver import Native1D

    e, n = _kron_edges(11, 8)
    g = graphio.from_edge_array(np.column_stack([e, _weights(kind, e)]), comm, weights=True)
    s = Native1D(g)
    try:
        runs = []
        for _ in range(2):
            res = s.solve(0.85, 1e-10 * n, 10_000)
            runs.append((res.x.copy(), res.iterations, tuple(s.sweep.refine_counts)))
    finally:
        s.free()
    assert runs[0][1:] == runs[1][1:]
    assert np.array_equal(runs[0][0], runs[1][0])
