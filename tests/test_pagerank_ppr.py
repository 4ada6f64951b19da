"""The native PowerWalk query engine (hpc._core.pagerank_ppr, ppr.native_query): the same
answer as the SciPy decomposition, precision against exact PPR, the app's back ends."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from conftest import data_file, load_json, run_app

from hpc.core import backends as registry

pytestmark = pytest.mark.skipif(not registry.is_available("native"), reason="hpc._core not built")


def _graph(name: str):
    from hpc.pagerank import graphio

    g = graphio.read_snap(str(data_file("graphs", name)), MPI.COMM_SELF)
    return g, graphio.gather_csr(g)


@pytest.fixture(scope="module")
def email():
    from hpc.pagerank.ppr import build_fingerprints

    g, A = _graph("email-Eu-core.txt")
    fp = build_fingerprints(g, np.arange(g.n), 50, 0.85, seed=2, keep=64)
    return g, A, fp


@pytest.mark.parametrize("per_edge,threshold,iterations", [(False, 1e-2, 3), (True, 1e-3, 2),
                                                            (False, 1.0, 0)])
def test_native_equals_the_scipy_decomposition(email, per_edge, threshold, iterations):
    from hpc.pagerank.ppr import combine, decompose, native_engine, native_query

    g, _, fp = email
    verts = np.array([0, 3, 17, 500, 1004, 3], dtype=np.int64)   # a repeated source too
    dec = decompose(g, verts, 0.85, iterations, threshold, per_edge=per_edge)
    ref = combine(g, dec, fp, verts.size, 20, want_full=True)
    got, st = native_query(g, native_engine(g, fp, 0.85), verts, iterations, threshold, 20,
                           per_edge, want_full=True, threads=2)
    assert st.pushes == dec.pushes and st.residual_entries == dec.R.nnz
    assert np.isclose(st.residual_mass, dec.R.sum(), rtol=1e-12)
    assert np.abs(got.topk_scores - ref.topk_scores).max() < 1e-14
    for i in range(verts.size):
        a = np.zeros(g.n)
        b = np.zeros(g.n)
        a[got.full[i][0]] = got.full[i][1]
        b[ref.full[i][0]] = ref.full[i][1]
        assert np.abs(a - b).max() < 1e-14 and set(got.full[i][0]) == set(ref.full[i][0])
        # same order (score desc, id asc) wherever the scores are not tied to rounding
        same = got.topk_ids[i] == ref.topk_ids[i]
        assert np.all(same | np.isclose(got.topk_scores[i], ref.topk_scores[i], rtol=1e-12))
    assert np.array_equal(got.topk_ids[1], got.topk_ids[5])


def test_combine_rel_drops_only_small_contributions(email):
    from hpc.pagerank.ppr import native_engine, native_query

    g, _, fp = email
    eng = native_engine(g, fp, 0.85)
    verts = np.arange(0, g.n, 50, dtype=np.int64)
    full, s0 = native_query(g, eng, verts, 2, 1e-3, 20, True, 0.0)
    cut, s1 = native_query(g, eng, verts, 2, 1e-3, 20, True, 2e-3)
    assert s1.combined_entries < s0.combined_entries
    assert s1.residual_entries == s0.residual_entries and s1.pushes == s0.pushes
    # the scores only lose the dropped contributions (same normaliser): never larger
    assert np.all(cut.topk_scores[:, 0] <= full.topk_scores[:, 0] + 1e-15)
    assert np.mean(cut.topk_ids[:, :10] == full.topk_ids[:, :10]) > 0.9


@pytest.mark.parametrize("name", ["email-Eu-core.txt", "p2p-Gnutella08.txt"])
def test_native_precision_at_20_with_the_benchmark_settings(name):
    """The settings of scaling/compare/pagerank_ppr.py, with fewer walks (2000, not 4000)."""
    from hpc.pagerank.ppr import (build_fingerprints, exact_ppr, native_engine, native_query,
                                  precision_at_k)

    g, A = _graph(name)
    fp = build_fingerprints(g, np.arange(g.n), 2000, 0.85, seed=1, keep=256, batch=2048)
    verts = np.sort(np.random.default_rng(7).choice(g.n, 100, replace=False))
    ans, _ = native_query(g, native_engine(g, fp, 0.85), verts, 2, 1e-3, 20, True, 2e-3)
    ex = exact_ppr(A, verts, 0.85)
    prec = [precision_at_k(ans.topk_ids[i], ex[i], 20) for i in range(verts.size)]
    assert np.mean(prec) >= 0.95, np.mean(prec)
    assert np.all(np.diff(ans.topk_scores, axis=1) <= 0)


def test_engine_rejects_bad_input(email):
    from hpc import _core
    from hpc.pagerank.ppr import native_engine

    g, _, fp = email
    eng = native_engine(g, fp, 0.85)
    with pytest.raises(ValueError, match="source out of range"):
        eng.query(np.array([g.n], dtype=np.int64), 2, 1e-3)
    with pytest.raises(ValueError, match="wrong dtype"):
        eng.query(np.array([1], dtype=np.int32), 2, 1e-3)
    with pytest.raises(ValueError, match="threshold"):
        eng.query(np.array([1], dtype=np.int64), 2, 0.0)
    E = _core.pagerank_ppr.Engine
    ptr, idx = np.array([0, 1, 2], np.int64), np.array([1, 0], np.int64)
    z = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="out of range"):
        E(ptr, np.array([1, 2], np.int64), z, np.empty(0, np.int64), np.empty(0), np.zeros(2), 0.85)
    with pytest.raises(ValueError, match="span"):
        E(np.array([0, 1, 3], np.int64), idx, z, np.empty(0, np.int64), np.empty(0), np.zeros(2), 0.85)
    with pytest.raises(ValueError, match="damping"):
        E(ptr, idx, z, np.empty(0, np.int64), np.empty(0), np.zeros(2), 1.0)
    # a residual vertex without a fingerprint is an error, not a silent zero
    e = E(ptr, idx, z, np.empty(0, np.int64), np.empty(0), np.zeros(2), 0.85)
    with pytest.raises(RuntimeError, match="no fingerprint"):
        e.query(np.array([0], dtype=np.int64), 1, 1e-3)
    assert list(e.residual_support(np.array([0], dtype=np.int64), 1, 1e-3)) == [1]


def _same_topk(ia, sa, ib, sb) -> None:
    """Same top K up to ties: the ids scoring above the K-th score (less 1e-12) agree as sets
    (summation order may flip scores equal to rounding)."""
    for i in range(ia.shape[0]):
        cut = min(sa[i, -1], sb[i, -1]) + 1e-12
        assert set(ia[i][sa[i] > cut]) == set(ib[i][sb[i] > cut]), i


def test_app_backends_agree_across_ranks(tmp_path):
    path = data_file("graphs", "p2p-Gnutella08.txt")
    idx = tmp_path / "idx.h5"
    r = run_app("pagerank", 2, "ppr-index", "--graph", path, "--output", idx, "--walks", "200",
                "--keep", "64", "--seed", "4")
    assert r.returncode == 0, r.stderr
    common = ["ppr", "--graph", path, "--index", idx, "--sources", "random:60", "--seed", "4",
              "--iterations", "2", "--threshold", "1e-3", "--push-rule", "per-edge"]
    outs = []
    for n, backend, engine in ((1, "native", "auto"), (3, "native", "replicated"),
                               (3, "native", "partitioned"), (2, "numpy", "auto")):
        out, js = tmp_path / f"{backend}{n}{engine}.h5", tmp_path / f"{backend}{n}{engine}.json"
        r = run_app("pagerank", n, *common, "--backend", backend, "--output", out, "--json", js,
                    "--check", "--min-precision", "0.95",
                    *(["--engine", engine] if engine != "auto" else []))
        assert r.returncode == 0, r.stdout + r.stderr
        rec = load_json(js)
        assert rec["backend"] == backend and rec["metrics"]["queries"] == 60
        if engine == "partitioned":   # each rank its block's rows, balanced in bytes
            m = rec["metrics"]
            assert rec["engine"] == m["engine"] == "partitioned"
            assert len(m["engine_bytes_per_rank"]) == 3
            assert sum(m["engine_bytes_per_rank"]) == m["replicated_engine_bytes"] + 32
            assert m["engine_bytes_max_times_p_over_replicated"] <= 1.2
        outs.append(out)
    with h5py.File(outs[0]) as a:
        for o in outs[1:]:
            with h5py.File(o) as b:
                assert np.abs(a["/ppr/topk_scores"][:] - b["/ppr/topk_scores"][:]).max() < 1e-14
                _same_topk(a["/ppr/topk_ids"][:], a["/ppr/topk_scores"][:],
                           b["/ppr/topk_ids"][:], b["/ppr/topk_scores"][:])
    r = run_app("pagerank", 1, *common, "--combine-rel", "2e-3", "--check", "--min-precision",
                "0.9")
    assert r.returncode == 0, r.stdout + r.stderr


def test_app_rejects_bad_query_options(tmp_path):
    path = data_file("graphs", "email-Eu-core.txt")
    for extra, what in ((["--backend", "numpy", "--combine-rel", "1e-3"], "--combine-rel"),
                        (["--combine-rel", "-1"], "--combine-rel"),
                        (["--backend", "numba"], "numba"),
                        (["--backend", "numpy", "--engine", "partitioned"], "--engine"),
                        (["--engine", "sharded"], "--engine")):
        r = run_app("pagerank", 2, "ppr", "--graph", path, "--sources", "1", *extra)
        assert r.returncode == 2 and "error:" in r.stderr and what in r.stderr, r.stderr


@pytest.mark.parametrize("name,eps,failure,backend", [
    ("email-Eu-core.txt", 0.3, 0.01, "native"),
    ("p2p-Gnutella08.txt", 0.5, 0.1, "native"),
    ("email-Eu-core.txt", 0.5, 0.1, "numpy"),
])
def test_accuracy_mode_meets_its_bound(tmp_path, name, eps, failure, backend):
    """--accuracy EPS --failure DELTA: on every one of 40 sources, every score above 1/n
    within relative error EPS of exact PPR (the bound holds with probability 1 - DELTA per
    source; FORA's is conservative, so no source may fail here); the record states it."""
    from hpc.pagerank.ppr import guarantee_parameters

    path = data_file("graphs", name)
    js = tmp_path / "q.json"
    r = run_app("pagerank", 3, "ppr", "--graph", path, "--sources", "random:40", "--seed", "5",
                "--accuracy", str(eps), "--failure", str(failure), "--check", "--backend",
                backend, "--json", js, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(js)
    v = rec["validation"]
    assert v["guarantee_failed_sources"] == 0 and v["max_rel_err_above_1_over_n"] <= eps
    gp = rec["guarantee"]
    n = rec["graph"]["vertices"]
    assert gp == guarantee_parameters(n, eps, failure)
    assert f"{eps:g} pi(t)" in gp["bound"] and "guarantee:" in r.stdout
    assert rec["params"]["threshold"] == gp["threshold"] and rec["params"]["walks"] == gp["walks"]
    assert rec["precision"] == {"guaranteed": True, "checked": True,
                                "worst_source": v["precision_at_20_min"]}
    if eps <= 0.3:   # what the hint of a run without a guarantee promises (precision_hint)
        assert v["precision_at_20_min"] >= 0.9


def test_output_says_how_to_reach_precision_on_every_source(tmp_path):
    """Without --accuracy the record (`precision`) and the output say that precision@K has no
    bound and how to get >= 0.9 on every source; with --check, the worst source measured.
    The default settings with uniform walks miss 0.9 on some source of email-Eu-core (0.80 at
    seed 2; walks by degree, the default, reach 0.90 there)."""
    path = data_file("graphs", "email-Eu-core.txt")
    base = ["ppr", "--graph", path, "--sources", "random:40", "--seed", "2", "--walk-rule",
            "uniform"]
    js = tmp_path / "a.json"
    r = run_app("pagerank", 1, *base, "--json", js)
    assert r.returncode == 0, r.stdout + r.stderr
    note = load_json(js)["precision"]
    assert note["guaranteed"] is False and note["checked"] is False
    assert "--accuracy 0.3" in note["how"] and "neither checked nor guaranteed" in r.stdout
    r = run_app("pagerank", 1, *base, "--check", "--min-precision", "0", "--json", js)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(js)
    note = rec["precision"]
    worst = rec["validation"]["precision_at_20_min"]
    assert note["checked"] is True and note["worst_source"] == worst < 0.9
    # the sources reaching at most 20 vertices score 1.0 (exact): the rest's mean apart
    v = rec["validation"]
    h = v["nontrivial_sources"]
    assert 0 < h <= 40 and v["precision_at_20_nontrivial_mean"] * h + (40 - h) == \
        pytest.approx(v["precision_at_20_mean"] * 40)
    # the worst source's exact boundary, recomputed from exact PPR
    from hpc.pagerank.ppr import exact_ppr

    b = rec["validation"]["precision_at_20_worst"]
    g, A = _graph("email-Eu-core.txt")
    ex = exact_ppr(A, np.array([int(b["source"])]), 0.85)[0]   # email's ids are 0..n-1
    srt = np.sort(ex)[::-1]
    assert b["kth_score"] == pytest.approx(srt[19], rel=1e-12)
    assert b["gap_to_next_rel"] == pytest.approx((srt[19] - srt[20]) / srt[19], abs=1e-9)
    assert b["others_within_1pct_of_kth"] == (np.abs(ex - srt[19]) <= 0.01 * srt[19]).sum() - 1
    assert "--accuracy 0.3" in note["how"] and f"is {worst:.2f} on the worst source" in r.stdout
    idx = tmp_path / "i.h5"
    assert run_app("pagerank", 1, "ppr-index", "--graph", path, "--output", idx, "--walks",
                   "2000", "--keep", "64").returncode == 0
    r = run_app("pagerank", 1, *base, "--index", idx, "--iterations", "10", "--threshold",
                "1e-4", "--check", "--json", js)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(js)
    assert rec["validation"]["precision_at_20_min"] >= 0.9
    assert "how" not in rec["precision"] and "worst source" not in r.stdout
    r = run_app("pagerank", 1, *base, "--index", idx, "--json", js)
    how = load_json(js)["precision"]["how"]
    assert "--keep 0, this one keeps 64" in how and "--walk-rule" not in how
    assert run_app("pagerank", 1, "ppr-index", "--graph", path, "--output", idx, "--walks",
                   "20", "--keep", "64", "--walk-rule", "uniform").returncode == 0
    r = run_app("pagerank", 1, *base, "--index", idx, "--json", js)
    assert "--walk-rule degree (this one's are uniform)" in load_json(js)["precision"]["how"]


def test_accuracy_mode_needs_a_full_index(tmp_path):
    path = data_file("graphs", "email-Eu-core.txt")
    idx = tmp_path / "i.h5"
    assert run_app("pagerank", 1, "ppr-index", "--graph", path, "--output", idx, "--walks",
                   "4", "--keep", "8").returncode == 0
    r = run_app("pagerank", 3, "ppr", "--graph", path, "--sources", "1", "--index", idx,
                "--accuracy", "0.5")
    assert r.returncode == 2 and "--keep 0" in r.stderr


def test_precision_ties_aware_and_strict():
    """Ties at the K-th exact score: any of the tied ids counts (ties-aware); strict takes
    one fixed exact top K (ties broken by id)."""
    from hpc.pagerank.ppr import precision_at_k

    exact = np.array([0.5, 0.2, 0.1, 0.1, 0.1, 0.0, 1e-3])
    assert precision_at_k(np.array([0, 1, 4]), exact, 3) == 1.0
    assert precision_at_k(np.array([0, 1, 4]), exact, 3, strict=True) == pytest.approx(2 / 3)
    assert precision_at_k(np.array([0, 1, 2]), exact, 3, strict=True) == 1.0
    for strict in (False, True):
        assert precision_at_k(np.array([0, 1, 6]), exact, 3, strict) == pytest.approx(2 / 3)
        assert precision_at_k(np.array([5, 6, -1]), exact, 3, strict) == 0.0


def test_walks_per_vertex_rules(email):
    from hpc.pagerank.ppr import walks_per_vertex

    g = email[0]
    assert np.array_equal(walks_per_vertex(g, 7), np.full(g.n, 7))
    w = walks_per_vertex(g, 7, "degree")
    assert w.min() == 7 and np.array_equal(w, 7 * np.maximum(1, np.ceil(g.outdeg * g.n / g.m)))
    assert w.max() == 7 * 14          # the largest hub: out-degree 334, mean 25.4
    with pytest.raises(ValueError, match="walk rule"):
        walks_per_vertex(g, 7, "pagerank")


def test_degree_rule_sharpens_the_hubs_fingerprints(email):
    """The degree rule runs 8-14x the walks from email-Eu-core's five largest hubs: their
    fingerprints (divided by their own walk counts: masses in [c, 1]) are closer to exact
    PPR, by about the square root of that."""
    from hpc.pagerank.ppr import build_fingerprints, exact_ppr

    g, A, _ = email
    hubs = np.sort(np.argsort(-g.outdeg)[:5])
    ex = exact_ppr(A, hubs, 0.85)
    errs = {}
    for rule in ("uniform", "degree"):
        fp = build_fingerprints(g, hubs, 50, 0.85, seed=3, rule=rule)
        assert np.all((fp.mass >= 0.15 - 1e-12) & (fp.mass <= 1.1)), fp.mass
        errs[rule] = []
        for i in range(hubs.size):
            dense = np.zeros(g.n)
            dense[fp.ids[fp.indptr[i]:fp.indptr[i + 1]]] = fp.vals[fp.indptr[i]:fp.indptr[i + 1]]
            errs[rule].append(np.abs(dense / fp.mass[i] - ex[i]).sum())
    assert np.all(np.array(errs["degree"]) < 0.6 * np.array(errs["uniform"])), errs


def test_degree_rule_index_precision_with_the_per_edge_push(email):
    """An index with the degree rule (the default of ppr-index) against one with uniform
    walks, the same 100 walks at least per vertex, the benchmark's per-edge push: 100
    sources against exact PPR (measured: mean 0.955 / worst 0.80 against 0.935 / 0.55)."""
    from hpc.pagerank.ppr import (build_fingerprints, exact_ppr, native_engine, native_query,
                                  precision_at_k)

    g, A, _ = email
    verts = np.sort(np.random.default_rng(7).choice(g.n, 100, replace=False))
    ex = exact_ppr(A, verts, 0.85)
    prec = {}
    for rule in ("uniform", "degree"):
        fp = build_fingerprints(g, np.arange(g.n), 100, 0.85, seed=1, keep=128, rule=rule)
        ans, _ = native_query(g, native_engine(g, fp, 0.85), verts, 2, 1e-3, 20, True, 2e-3)
        prec[rule] = np.array([precision_at_k(ans.topk_ids[i], ex[i], 20) for i in range(100)])
    assert prec["degree"].mean() >= 0.95 and prec["degree"].min() >= 0.8, prec["degree"]
    assert prec["degree"].mean() > prec["uniform"].mean()


def test_degree_rule_index_does_not_depend_on_the_ranks(tmp_path):
    """ppr-index --walk-rule degree (the default) at 1 and 3 ranks: the same index (each
    walk's random stream is its vertex x the most walks + its number); the record counts
    every walk; PPRIndex.load reads the rule back."""
    from hpc.pagerank.api import PPRIndex
    from hpc.pagerank.ppr import walks_per_vertex

    path = data_file("graphs", "p2p-Gnutella08.txt")
    got = []
    for n in (1, 3):
        idx, js = tmp_path / f"i{n}.h5", tmp_path / f"i{n}.json"
        r = run_app("pagerank", n, "ppr-index", "--graph", path, "--output", idx, "--walks",
                    "20", "--keep", "16", "--seed", "6", "--json", js)
        assert r.returncode == 0, r.stdout + r.stderr
        with h5py.File(idx) as f:
            assert f["index"].attrs["walk_rule"] == "degree"
            got.append({k: f[k][:] for k in ("index/count", "index/ids", "index/values",
                                             "index/mass")})
        rec = load_json(js)
    for k, v in got[0].items():
        assert np.array_equal(v, got[1][k]), k
    g, _ = _graph("p2p-Gnutella08.txt")
    assert rec["metrics"]["walks"] == walks_per_vertex(g, 20, "degree").sum() > 20 * g.n
    assert PPRIndex.load(idx, g).walk_rule == "degree"


def test_rounds_of_walks_are_bounded_in_walks(email):
    """build_fingerprints' rounds hold about ``batch`` x ``walks`` walks however the rule
    spreads them (at most that plus one source's), and exactly ``batch`` sources with
    uniform walks."""
    from hpc.pagerank.ppr import _round_sources, walk_rounds, walks_per_vertex

    g = email[0]
    assert walk_rounds(g, 5, 64, "uniform") == -(-g.n // 64)
    w = walks_per_vertex(g, 5, "degree")
    got = _round_sources(g, np.arange(g.n), 64, w, 5)
    assert len(got) == walk_rounds(g, 5, 64, "degree") > -(-g.n // 64)
    assert np.array_equal(np.concatenate(got), np.arange(g.n))
    assert all(0 < w[r].sum() <= 64 * 5 + w.max() for r in got)


def test_partitioned_engine_reads_routed_pairs_in_any_layout(email):
    """The partitioned engine's routed (key, value) pairs: strided column views of one buffer
    (as `partial` returns them), contiguous copies, and the entries interleaved across
    queries (each query's own order kept: no runs, so the counting sort) give the same sums
    bit for bit; other dtypes and negative strides are refused."""
    from hpc.pagerank.ppr import partitioned_engine, partitioned_push

    g, _, fp = email
    eng = partitioned_engine(g, fp, 0.85)
    verts = np.arange(0, g.n, 5, dtype=np.int64)
    nq = verts.size
    partitioned_push(g, eng, verts, 2, 1e-3, per_edge=True)
    eng.combine(0.0, 20, 1)
    _, k, v = eng.partial(np.array([0, nq], np.int64))
    assert k.strides == v.strides == (16,) and k.base is v.base   # one (m, 2) buffer
    norm = np.ones(nq)
    ref = eng.answer(k, v, norm, 0, nq, 20)
    got = eng.answer(np.ascontiguousarray(k), np.ascontiguousarray(v), norm, 0, nq, 20)
    # entries dealt round-robin over the queries: the j-th entry of every query, then the
    # (j + 1)-th ...: each query's entries keep their order
    q = k >> 32
    first = np.searchsorted(q, q)            # k is in query order
    order = np.lexsort((q, np.arange(q.size) - first))
    assert np.count_nonzero(np.diff(q[order]) < 0) > 64
    mixed = eng.answer(k[order], v[order], norm, 0, nq, 20)
    for a in (got, mixed):
        assert np.array_equal(a[0], ref[0]) and np.array_equal(a[1], ref[1])
    assert (ref[1][:, 0] > 0).all()
    with pytest.raises(ValueError, match="wrong dtype"):
        eng.answer(k.astype(np.int32), v, norm, 0, nq, 20)
    with pytest.raises(ValueError, match="stride"):
        eng.answer(k[::-1], v[::-1], norm, 0, nq, 20)
