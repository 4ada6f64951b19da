"""The partitioned native PPR engine (hpc._core.pagerank_ppr_part, ppr.partitioned_query)
against the replicated one (ppr.native_query) at any rank count (tools/run_tests.sh runs 1..4):
the same pushes, residual and scores to 1e-14 on the real graphs, with and without the rel
cut, fingerprints from an index or built on the fly; each rank holds only its block's rows."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.pagerank import graphio

from conftest import data_file

comm = MPI.COMM_WORLD
pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(not registry.is_available("native"), reason="hpc._core not built")]


def _dense(n: int, pair) -> np.ndarray:
    x = np.zeros(n)
    x[pair[0]] = pair[1]
    return x


def _same(g, a, b, nq: int) -> None:
    """Answers of the two engines agree to 1e-14 (rank 0 holds them)."""
    if comm.rank != 0:
        assert a.topk_ids is None and b.topk_ids is None
        return
    assert a.topk_ids.shape == b.topk_ids.shape == (nq, 20)
    assert np.abs(a.topk_scores - b.topk_scores).max() < 1e-14
    for i in range(nq):
        # the same vertex order wherever two scores are not tied to rounding
        assert np.all((a.topk_ids[i] == b.topk_ids[i])
                      | np.isclose(a.topk_scores[i], b.topk_scores[i], rtol=1e-12, atol=0))
        if a.full is not None:
            assert set(a.full[i][0]) == set(b.full[i][0])
            assert np.abs(_dense(g.n, a.full[i]) - _dense(g.n, b.full[i])).max() < 1e-14


@pytest.fixture(scope="module", params=["email-Eu-core.txt", "p2p-Gnutella08.txt"])
def indexed(request):
    from hpc.pagerank.ppr import build_fingerprints

    g = graphio.read_snap(str(data_file("graphs", request.param)), comm)
    fp = build_fingerprints(g, np.arange(g.lo, g.hi), 40, 0.85, seed=3, keep=64)
    return g, fp


@pytest.mark.parametrize("per_edge,threshold,iterations,rel,want_full", [
    (False, 1e-2, 3, 0.0, True), (True, 1e-3, 2, 0.0, True), (True, 1e-3, 2, 2e-3, False),
    (False, 1.0, 0, 0.0, True), (False, 5e-4, 5, 0.0, True), (False, 1e-2, 3, 0.0, False),
    (False, 1.0, 0, 0.0, False), (True, 1e-3, 2, 2e-3, True)])
def test_partitioned_equals_replicated(indexed, per_edge, threshold, iterations, rel, want_full):
    """want_full: every partial vector goes to the asking rank; else only the top K is
    assembled (TPUT: top entries, entries above tau1 / p, the candidates' missing entries)."""
    from hpc.pagerank.ppr import (native_engine, native_query, partitioned_engine,
                                  partitioned_query)

    g, fp = indexed
    rng = np.random.default_rng(5)
    verts = np.concatenate([rng.choice(g.n, 37, replace=False), [0, g.n - 1, 0]]).astype(np.int64)
    ref, s0 = native_query(g, native_engine(g, fp, 0.85), verts, iterations, threshold, 20,
                           per_edge, rel, want_full, threads=2)
    got, s1 = partitioned_query(g, partitioned_engine(g, fp, 0.85), verts, iterations,
                                threshold, 20, per_edge, rel, want_full, threads=2)
    assert (s1.pushes, s1.iterations, s1.residual_entries) == (s0.pushes, s0.iterations,
                                                                s0.residual_entries)
    assert abs(s1.residual_mass - s0.residual_mass) < 1e-12 * max(1.0, s0.residual_mass)
    if rel == 0.0:
        assert s1.combined_entries == s0.combined_entries
    _same(g, got, ref, verts.size)
    if comm.rank == 0:
        assert np.array_equal(got.topk_ids[verts.size - 3], got.topk_ids[verts.size - 1])


def test_partitioned_on_the_fly_fingerprints_equal_replicated():
    """No index: both build the fingerprints the residual needs (the same walks: a counter-
    based stream per (seed, walk, step)), then answer alike."""
    from hpc.pagerank.api import query

    g = graphio.read_snap(str(data_file("graphs", "email-Eu-core.txt")), comm)
    verts = np.arange(3, g.n, 97, dtype=np.int64)
    kw = dict(alpha=0.85, backend="native", topk=20, iterations=3, threshold=1e-2, walks=30,
              seed=4, want_full=True, threads=1)
    a, sa = query(g, verts, engine="replicated", **kw)
    b, sb = query(g, verts, engine="partitioned", **kw)
    assert sa.fingerprints_built == sb.fingerprints_built > 0
    assert sa.pushes == sb.pushes and sa.residual_entries == sb.residual_entries
    _same(g, b, a, verts.size)


def test_each_rank_holds_only_its_rows(indexed):
    """Summed over the ranks, the partitioned engines hold the replicated engine's graph and
    index (plus one row pointer per extra rank); the blocks are balanced in bytes, so no rank
    holds more than an equal share plus one vertex's rows."""
    from hpc.pagerank.ppr import engine_nbytes, native_engine, partitioned_engine

    g, fp = indexed
    eng = partitioned_engine(g, fp, 0.85)
    part = eng.nbytes()
    rep = native_engine(g, fp, 0.85).nbytes()
    assert engine_nbytes(g, fp) == rep["graph"] + rep["index"]
    p = comm.size
    tot = {k: comm.allreduce(v) for k, v in part.items()}
    assert tot["graph"] == rep["graph"] + 8 * (p - 1)
    assert tot["index"] == rep["index"] + 8 * (p - 1)
    assert comm.allreduce(eng.nlocal) == g.n
    entries = comm.allreduce(int(fp.ids.size))
    assert rep["index"] == 8 * (g.n + 1) + 12 * entries + 8 * g.n
    row = comm.allreduce(int(g.outdeg.max(initial=0)) * 4 + 12 * int(np.diff(fp.indptr).max(initial=0)),
                         op=MPI.MAX) + 24
    mine = part["graph"] + part["index"]
    assert comm.allreduce(mine, op=MPI.MAX) <= (tot["graph"] + tot["index"]) / p + row + 16


def test_missing_fingerprint_is_an_error_on_every_rank(indexed):
    from hpc.pagerank.ppr import Fingerprints, partitioned_engine, partitioned_query

    g, _ = indexed
    empty = Fingerprints(np.empty(0, np.int64), np.zeros(1, np.int64), np.empty(0, np.int64),
                         np.empty(0), np.empty(0))
    with pytest.raises(RuntimeError, match="no fingerprint"):
        partitioned_query(g, partitioned_engine(g, empty, 0.85), np.array([0, 1], np.int64),
                          1, 1e-2, 20)
