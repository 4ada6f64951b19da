"""16-bit weights packed with their columns ('deltaD': Sweep.weight_packing): each SELL-4 entry
one 4-byte word, the column's D-bit delta from the row's previous column (rows sorted by column,
the first column of each row in the chunk's base) and the weight above it (D = 32 less the
largest weight's bits: 28 for the halves, 16 for a refined layout); gaps of 2^D or more take
jump entries of weight 0. Used for the 'int16' layout (exact integer weights times one scale) and for
the cheap sweeps of refined random doubles; HPC_PAGERANK_PACK16=0 keeps the unpacked layout (the
A/B switch). The answers must be networkx's to 1e-12 packed or not, at any rank count
(``mpiexec -n 3 python -m pytest --with-mpi tests/mpi/test_pagerank_weights_packed.py``)."""
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


def _long_gap_edges(n=200_000, seed=4):
    """A cycle through n vertices (in-degree 1 each: internal column ids up to ~n, in vertex
    order) and two hundred rows that point both at a hub and at vertices near the end, so
    that their rows have gaps of 2^16 and more (one to three jump entries)."""
    rng = np.random.default_rng(seed)
    v = np.arange(n, dtype=np.int64)
    e = [np.column_stack([v, (v + 1) % n])]
    hub = np.zeros(200, dtype=np.int64) + 7
    rows = rng.choice(n, 200, replace=False)
    far = rng.integers(n - 5_000, n, 200)
    mid = rng.integers(n // 3, n // 2, 200)
    e += [np.column_stack([rows, hub]), np.column_stack([rows, far]), np.column_stack([rows, mid])]
    e = np.concatenate(e)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0), n


def _nx_ref(e, n, w, **kw):
    ref = None
    if comm.rank == 0:
        G = nx.DiGraph()
        G.add_nodes_from(range(n))
        G.add_weighted_edges_from((int(u), int(v), float(x)) for (u, v), x in zip(e, w))
        r = nx.pagerank(G, alpha=0.85, tol=1e-15, max_iter=10_000, weight="weight", **kw)
        ref = np.array([r[v] for v in range(n)])
    return comm.bcast(ref)


def _solve(e, w, tol, packed=True, **kw):
    """(x, iterations, layout, packing, packed entries, padded entries, converged) of the
    native 1D solver; packed=False: with HPC_PAGERANK_PACK16=0."""
    from hpc.pagerank.solver import Native1D

    g = graphio.from_edge_array(np.column_stack([e, w]), comm, weights=True)
    old = os.environ.get("HPC_PAGERANK_PACK16")
    if not packed:
        os.environ["HPC_PAGERANK_PACK16"] = "0"
    try:
        s = Native1D(g, teleport=teleport_of(g, kw.get("personalization"), kw.get("dangling")))
    finally:
        if not packed:
            if old is None:
                del os.environ["HPC_PAGERANK_PACK16"]
            else:
                os.environ["HPC_PAGERANK_PACK16"] = old
    try:
        res = s.solve(0.85, tol, 10_000)
        sw = s.sweep
        out = (_allgather(comm, res.x, g.offsets), res.iterations, sw.weight_layout,
               sw.weight_packing, sw.packed_entries, sw.padded, res.converged)
    finally:
        s.free()
    return out


@pytest.mark.mpi
@pytest.mark.parametrize("kind", ["halves", "tenths", "random"])
def test_packed_weights_equal_networkx(kind):
    """Packed and unpacked sweeps give networkx's answer (with and without a personalization
    and dangling distribution); the packed rows only sum in another order, so the two answers
    agree to rounding."""
    e, n = _kron_edges()
    k = (e[:, 0] * 31 + e[:, 1] * 17) % 10
    w = {"halves": 0.5 + k / 2.0, "tenths": (k + 1) / 10.0,
         "random": 0.25 + np.random.default_rng(5).random(len(e))}[kind]
    rng = np.random.default_rng(11)
    pers = {int(v): float(rng.random()) for v in rng.choice(n, size=n // 4, replace=False)}
    dang = {int(v): float(rng.random()) for v in rng.choice(n, size=n // 3, replace=False)}
    for kw in ({}, {"personalization": pers, "dangling": dang}):
        ref = _nx_ref(e, n, w, **kw)
        x, it, lay, pack, npk, pad, conv = _solve(e, w, 1e-15 * n, **kw)
        refined = kind == "random"
        # random doubles: packed only on a rank alone (the refined cheap sweeps)
        expect = ("delta16" if refined else "delta28") if not refined or comm.size == 1 else "none"
        assert lay == ("values" if refined else "int16") and pack == expect, (lay, pack)
        assert conv and np.abs(x - ref).max() <= 1e-12, kw
        if pack != "none":
            assert npk == pad   # sorting keeps each row's length; no gap of 2^16 in 2^10 columns
        x0, it0, lay0, pack0, npk0, *_ = _solve(e, w, 1e-15 * n, packed=False, **kw)
        assert lay0 == lay and pack0 == "none" and npk0 == 0
        assert np.abs(x0 - ref).max() <= 1e-12
        assert abs(it - it0) <= 1
        assert np.abs(x - x0).sum() <= 1e-15 * n * 0.85 / 0.15 + 1e-15


@pytest.mark.mpi
def test_packed_jumps_over_long_gaps():
    """Integer weights up to 40000 (16 bits: 16-bit deltas): rows whose columns are 2^16 and
    more apart take jump entries (weight 0), more packed entries than SELL-4 ones, the same
    answer as networkx. Weights up to 5 (3 bits): 29-bit deltas, no jump."""
    e, n = _long_gap_edges(100_000 * max(2, comm.size))   # a rank's columns span over 2^16
    w = 1.0 + (e[:, 0] * 31 + e[:, 1] * 17) % 40_000
    ref = _nx_ref(e, n, w)
    x, it, lay, pack, npk, pad, conv = _solve(e, w, 1e-15 * n)
    # D comes from each rank's own largest weight: 16 bits on the rank holding 40000, 15 (a
    # 17-bit delta) on a rank whose weights all stay below 2^15. Checked on every rank before
    # any rank asserts, so one rank's failure cannot leave the others in a collective.
    ok = lay == "int16" and pack in ("delta16", "delta17")
    assert comm.allreduce(ok, op=MPI.LAND), (lay, pack)
    assert comm.allreduce(pack == "delta16", op=MPI.LOR)
    tot = comm.allreduce(npk - pad)
    assert tot > 0                            # some rank's rows took jumps
    assert comm.allreduce(npk) <= 1.05 * comm.allreduce(pad)   # few enough to pack
    assert conv and np.abs(x - ref).max() <= 1e-12
    x0, *_ = _solve(e, w, 1e-15 * n, packed=False)
    assert np.abs(x - x0).max() <= 1e-14
    w = 1.0 + (e[:, 0] * 31 + e[:, 1] * 17) % 5
    x, it, lay, pack, npk, pad, conv = _solve(e, w, 1e-15 * n)
    assert lay == "int16" and pack == "delta29" and npk == pad
    assert conv and np.abs(x - _nx_ref(e, n, w)).max() <= 1e-12
