"""hpc.pagerank as a program under mpiexec: the contract's outputs, exit codes and errors."""
from __future__ import annotations

import importlib
import os

import h5py
import networkx as nx
import numpy as np
import pytest

from conftest import data_file, load_json, run_app


def _nx_from_file(path) -> nx.DiGraph:
    G = nx.DiGraph()
    with open(path) as f:
        for line in f:
            t = line.split()
            if t and t[0][0] not in "#%":
                G.add_edge(int(t[0]), int(t[1]))
    return G


def _ok(r):
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("n,layout", [(1, "1d"), (2, "1d"), (3, "2d"), (4, "2d"), (4, "1d")])
def test_global_pagerank_output_equals_networkx(tmp_path, n, layout):
    path = data_file("graphs", "email-Eu-core.txt")
    out, js = tmp_path / "pr.h5", tmp_path / "pr.json"
    r = run_app("pagerank", n, "--graph", path, "--tol", "1e-14", "--layout", layout,
                "--output", out, "--json", js, timeout=240)
    _ok(r)
    assert "pagerank: VALID" in r.stdout
    with h5py.File(out) as f:
        ids, pr = f["/vertex_ids"][:], f["/pagerank"][:]
    assert ids.dtype == np.int64 and np.all(np.diff(ids) > 0)
    ref = nx.pagerank(_nx_from_file(path), alpha=0.85, tol=1e-16, max_iter=10_000)
    assert list(ids) == sorted(ref)
    assert np.abs(pr - np.array([ref[int(v)] for v in ids])).max() <= 1e-12
    rec = load_json(js)
    assert rec["app"] == "pagerank" and rec["ranks"] == n and rec["validation"]["passed"]
    assert rec["metrics"]["iterations"] > 10 and rec["metrics"]["edges_per_s"] > 0
    assert set(rec["timings"]) >= {"solve", "load_graph"}


def test_snap_header_noncontiguous_ids_and_cache(tmp_path):
    text = ("# FromNodeId\tToNodeId\n% comment\n"
            "1000000007 3\n3 1000000007\n3 3\n3 42\n42 99999999999\n42 99999999999\n"
            "\n99999999999 7\n7 3\n8 7\n")
    g = tmp_path / "g.txt"
    g.write_text(text)
    out, cache = tmp_path / "pr.h5", tmp_path / "cache.h5"
    r = run_app("pagerank", 3, "--graph", g, "--cache", cache, "--output", out, "--check",
                "--tol", "1e-14")
    _ok(r)
    ref = nx.pagerank(_nx_from_file(g), alpha=0.85, tol=1e-16, max_iter=10_000)
    with h5py.File(out) as f:
        ids, pr = f["/vertex_ids"][:], f["/pagerank"][:]
    assert list(ids) == sorted(ref)
    assert np.abs(pr - np.array([ref[int(v)] for v in ids])).max() <= 1e-12
    assert cache.exists()
    # the cache reloads at another rank count, with the same answer
    out2 = tmp_path / "pr2.h5"
    r = run_app("pagerank", 2, "--graph", cache, "--output", out2, "--tol", "1e-14")
    _ok(r)
    with h5py.File(out2) as f:
        assert np.array_equal(f["/vertex_ids"][:], ids)
        assert np.abs(f["/pagerank"][:] - pr).max() <= 1e-13


def test_kronecker_generator_and_backends(tmp_path):
    from hpc.sparse.randgen import rmat_edges

    src, dst = rmat_edges(10, 8, 5, None)
    G = nx.DiGraph()
    G.add_nodes_from(range(1 << 10))
    G.add_edges_from(zip(src.tolist(), dst.tolist()))
    ref = nx.pagerank(G, alpha=0.85, tol=1e-16, max_iter=10_000)
    want = np.array([ref[v] for v in range(1 << 10)])
    for backend, layout in (("numba", "1d"), ("numpy", "2d")):
        out = tmp_path / f"{backend}.h5"
        r = run_app("pagerank", 2, "--generate", "kron:10:8", "--seed", "5", "--backend", backend,
                    "--layout", layout, "--tol", "1e-14", "--output", out)
        _ok(r)
        with h5py.File(out) as f:
            assert np.array_equal(f["/vertex_ids"][:], np.arange(1 << 10))
            assert np.abs(f["/pagerank"][:] - want).max() <= 1e-12


@pytest.mark.parametrize("n", [1, 3])
def test_malformed_line_exits_2_naming_the_line(tmp_path, n):
    lines = [f"{i} {i + 1}" for i in range(3000)]
    lines[2900] = "2900 x7"                      # in the last rank's share
    g = tmp_path / "bad.txt"
    g.write_text("# header\n" + "\n".join(lines) + "\n")
    r = run_app("pagerank", n, "--graph", g)
    assert r.returncode == 2, r.stdout + r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "bad.txt, line 2902" in err[0] and "'2900 x7'" in err[0]
    assert "Traceback" not in r.stderr


def test_bad_usage_exits_2(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a header\n% and a comment\n")
    for args, what in ((["--graph", tmp_path / "missing.txt"], "cannot read"),
                       (["ppr-index", "--graph", empty, "--output", tmp_path / "i.h5"], "no vertices"),
                       (["--generate", "kron:x:4"], "kron:SCALE:EDGEFACTOR"),
                       (["--generate", "kron:5:4", "--damping", "1.5"], "damping"),
                       (["ppr", "--generate", "kron:6:4", "--sources", "5,100000"], "100000")):
        r = run_app("pagerank", 2, *args)
        assert r.returncode == 2, (args, r.stdout + r.stderr)
        assert what in r.stderr and "Traceback" not in r.stderr


def test_help_lists_the_verbs():
    r = run_app("pagerank", 1, "--help")
    _ok(r)
    assert "subcommands:" in r.stdout
    for verb in ("pagerank", "ppr-index", "ppr"):
        assert f"\n  {verb} " in r.stdout
    r = run_app("pagerank", 1, "ppr-index", "--help")
    _ok(r)
    assert "--walks" in r.stdout and "--keep" in r.stdout


def test_unavailable_backend_is_a_clear_error():
    from hpc.core import backends

    if backends.is_available("cupy"):
        pytest.skip("cupy is available here")
    r = run_app("pagerank", 1, "--generate", "kron:6:4", "--backend", "cupy")
    assert r.returncode == 2 and "error:" in r.stderr and "cupy" in r.stderr


def test_ppr_index_save_reload_and_on_the_fly_agree(tmp_path):
    path = data_file("graphs", "p2p-Gnutella08.txt")
    idx, js = tmp_path / "idx.h5", tmp_path / "idx.json"
    r = run_app("pagerank", 3, "ppr-index", "--graph", path, "--output", idx, "--keep", "0",
                "--walks", "50", "--seed", "3", "--check", "10", "--json", js)
    _ok(r)
    with h5py.File(idx) as f:
        assert f["/index/mass"].shape == f["/vertex_ids"].shape
        assert f["/index/count"][:].sum() == f["/index/ids"].shape[0]
    q1, q2 = tmp_path / "q1.h5", tmp_path / "q2.h5"
    common = ["--graph", path, "--sources", "0,5,17,633,2000", "--topk", "20", "--walks", "50",
              "--seed", "3"]
    r = run_app("pagerank", 2, "ppr", *common, "--index", idx, "--output", q1, "--check")
    _ok(r)
    r2 = run_app("pagerank", 4, "ppr", *common, "--output", q2)
    _ok(r2)
    with h5py.File(q1) as a, h5py.File(q2) as b:
        assert list(a["/ppr/sources"][:]) == [0, 5, 17, 633, 2000]
        assert a["/ppr/topk_ids"].shape == (5, 20)
        # same walks (counter-based randomness), full fingerprints: the same answer
        assert np.array_equal(a["/ppr/topk_ids"][:], b["/ppr/topk_ids"][:])
        assert np.abs(a["/ppr/topk_scores"][:] - b["/ppr/topk_scores"][:]).max() < 1e-12
    # an index of another graph is refused
    other = data_file("graphs", "email-Eu-core.txt")
    r = run_app("pagerank", 2, "ppr", "--graph", other, "--sources", "1", "--index", idx)
    assert r.returncode == 2 and "another graph" in r.stderr


def test_ppr_check_reports_precision_on_a_real_graph(tmp_path):
    path = data_file("graphs", "email-Eu-core.txt")
    js = tmp_path / "q.json"
    r = run_app("pagerank", 4, "ppr", "--graph", path, "--sources", "random:100", "--check",
                "--json", js)
    _ok(r)
    v = load_json(js)["validation"]
    assert v["precision_at_20_mean"] >= 0.95 and v["l1_err_mean"] < 0.2
    m = load_json(js)["metrics"]
    assert m["queries"] == 100 and m["queries_per_s"] > 0


@pytest.mark.parametrize("text", [
    b"# c\n1 2\n 3\t4 \r\n\n% x\n5 6", b"1 2\n3\n", b"1 99999999999999999999\n",
    b"1 9223372036854775808\n", b"9223372036854775807 0", b"1 2\n-1 3", b"1 2\n1 2 3\n", b"",
    b"\n\n", b"1 2", b"1 2\na b\n", b"1 2 #c\n", b"1.5 2\n", b"\t7\t8\t\n"])
def test_native_and_python_parsers_agree(text):
    from hpc.pagerank.graphio import parse_edges, parse_edges_py

    a, b = parse_edges(text), parse_edges_py(text)
    assert a[2:] == b[2:]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_native_setup_helpers_match_numpy():
    """The setup's native helpers against NumPy (both the dense-marker and the sort path of
    ghost_columns), and their bounds checks."""
    import numpy as np

    from hpc import _core

    rng = np.random.default_rng(3)
    nl, nlo = 40, 100
    deg = rng.integers(0, 9, nl)
    outdeg = rng.integers(0, 3, nl).astype(np.int64)
    indptr = np.concatenate(([0], np.cumsum(deg))).astype(np.int64)
    send_idx = rng.integers(0, nl, 17).astype(np.int64)
    for n in (300, 10**9):                       # dense marker / sort of the ghost entries
        off = np.array([0, nlo, nlo + nl, n], dtype=np.int64)
        cols = rng.integers(0, n, int(indptr[-1])).astype(np.int64)
        cols[::3] = rng.integers(nlo, nlo + nl, cols[::3].size)   # some owned columns
        ghost = (cols < nlo) | (cols >= nlo + nl)
        gc, slot, counts = _core.pagerank.ghost_columns(cols, nlo, nlo + nl, n, off)
        ref, inv = np.unique(cols[ghost], return_inverse=True)
        assert np.array_equal(gc, ref)
        assert np.array_equal(slot[ghost], inv) and np.all(slot[~ghost] == -1)
        assert np.array_equal(counts, np.bincount(np.searchsorted(off, gc, "right") - 1,
                                                  minlength=3))
        gpos = rng.permutation(gc.size).astype(np.int64) + 5
        o = _core.pagerank.local_order(indptr=indptr, indices=cols, nlo=nlo, nhi=nlo + nl,
                                       slot=slot, ghost_pos=gpos, send_idx=send_idx,
                                       outdeg=outdeg)
        perm, pos, optr, oidx, pidx, invd = o.perm, o.pos, o.indptr, o.indices, o.pack_idx, o.inv_deg
        assert np.array_equal(perm, np.argsort(-deg, kind="stable"))
        assert np.array_equal(pos[perm], np.arange(nl))
        assert np.array_equal(pidx, pos[send_idx])
        want_inv = np.zeros(nl)
        np.divide(1.0, outdeg, out=want_inv, where=outdeg > 0)
        assert np.array_equal(invd, want_inv[perm])
        want = np.where(ghost, nl + gpos[np.maximum(slot, 0)], pos[np.clip(cols - nlo, 0, nl - 1)])
        for i, r in enumerate(perm):              # row r's entries, in order, at row i
            assert np.array_equal(oidx[optr[i]:optr[i + 1]], want[indptr[r]:indptr[r + 1]])
    with pytest.raises(ValueError):
        _core.pagerank.ghost_columns(np.array([5, 400], dtype=np.int64), 0, 10, 300,
                                     np.array([0, 10, 300], dtype=np.int64))
    bad = slot.copy()
    bad[np.flatnonzero(slot >= 0)[0]] = gc.size   # a slot past the ghost list
    with pytest.raises(ValueError):
        _core.pagerank.local_order(indptr, cols, nlo, nlo + nl, bad, gpos, send_idx, outdeg)
    with pytest.raises(ValueError):               # a row this rank does not own
        _core.pagerank.local_order(indptr, cols, nlo, nlo + nl, slot, gpos,
                                   np.array([nl], dtype=np.int64), outdeg)


def test_native_exchange_layout():
    """Rank 1 of 3: piggy-backed (every other rank, 2 partial slots a message) and not."""
    import numpy as np

    from hpc import _core

    rcnt = np.array([2, 0, 3], dtype=np.int64)
    scnt = np.array([1, 0, 0], dtype=np.int64)
    sidx = np.array([2], dtype=np.int64)             # rank 0 asks for local row 2
    L = _core.pagerank.exchange_layout(recv_counts=rcnt, send_counts=scnt, send_idx=sidx,
                                       rank=1, nl=5, piggyback=True)
    assert L.sources.tolist() == [0, 2] and L.dests.tolist() == [0, 2]
    assert L.recv_counts.tolist() == [4, 5] and L.recv_displs.tolist() == [0, 4]
    assert L.send_counts.tolist() == [3, 2] and L.send_displs.tolist() == [0, 3]
    assert L.ghost_pos.tolist() == [0, 1, 4, 5, 6] and L.send_idx.tolist() == [2]
    assert L.pack_pos.tolist() == [0] and (L.n_recv, L.n_send, L.own_block) == (9, 5, 1)
    assert L.part_pos.tolist() == [1, 3] and L.rpart_pos.tolist() == [5 + 2, 5 + 7]
    L = _core.pagerank.exchange_layout(recv_counts=rcnt, send_counts=scnt, send_idx=sidx,
                                       rank=1, nl=5, piggyback=False)
    assert L.sources.tolist() == [0, 2] and L.dests.tolist() == [0] and L.own_block == 0
    assert L.recv_counts.tolist() == [2, 3] and L.ghost_pos.tolist() == [0, 1, 2, 3, 4]
    assert L.part_pos.size == 0
    with pytest.raises(ValueError):                 # asks for a row rank 1 does not own
        _core.pagerank.exchange_layout(rcnt, scnt, np.array([5], dtype=np.int64), 1, 5, True)


def test_native_sweep_typed_arguments():
    """Sweep(order, layout, xg=, x=, send=, part_out=) on one rank of 1 against NumPy, and its
    checks of the buffers against the layout."""
    import numpy as np
    import scipy.sparse as sp

    from hpc import _core

    rng = np.random.default_rng(5)
    n = 30
    A = sp.random(n, n, density=0.2, random_state=rng, format="csr")   # A[v, u]: edge u -> v
    A.data[:] = 1.0
    outdeg = np.asarray(A.sum(axis=0)).ravel().astype(np.int64)
    none = np.zeros(1, dtype=np.int64)
    L = _core.pagerank.exchange_layout(recv_counts=none, send_counts=none,
                                       send_idx=np.empty(0, dtype=np.int64), rank=0, nl=n,
                                       piggyback=False)
    cols = A.indices.astype(np.int64)
    o = _core.pagerank.local_order(indptr=A.indptr.astype(np.int64), indices=cols, nlo=0, nhi=n,
                                   slot=np.full(cols.size, -1, dtype=np.int32),
                                   ghost_pos=np.empty(0, dtype=np.int64),
                                   send_idx=L.send_idx, outdeg=outdeg)
    xg, x, send, part = np.zeros(n + 1), np.empty(n), np.zeros(0), np.zeros(2)
    s = _core.pagerank.Sweep(o, L, xg=xg, x=x, send=send, part_out=part)
    x0 = rng.random(n)
    s.start(np.ascontiguousarray(x0[o.perm]))
    d, base = 0.85, 0.01
    s.step(d, base)
    inv = np.zeros(n)
    np.divide(1.0, outdeg, out=inv, where=outdeg > 0)
    want = d * (A @ (x0 * inv)) + base
    np.testing.assert_allclose(x, want[o.perm], rtol=1e-14)
    np.testing.assert_allclose(part, [np.abs(want - x0).sum(), want[outdeg == 0].sum()],
                               rtol=1e-13)
    with pytest.raises(ValueError, match="xg"):      # one slot short of rows + received + 1
        _core.pagerank.Sweep(o, L, xg=np.zeros(n), x=x, send=send, part_out=part)
    with pytest.raises(ValueError, match="send"):    # the layout sends nothing
        _core.pagerank.Sweep(o, L, xg=xg, x=x, send=np.zeros(3), part_out=part)
    with pytest.raises(TypeError):                   # buffers are keyword arguments
        _core.pagerank.Sweep(o, L, xg, x, send, part)


def test_cache_of_another_graph_is_rebuilt_not_used(tmp_path):
    """A cache newer than the graph, built from another graph, is rebuilt (not used)."""
    a, b, cache = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.h5"
    a.write_text("".join(f"{i} {(i * 7 + 1) % 40}\n" for i in range(40)))
    b.write_text("0 1\n1 2\n2 0\n")
    js = tmp_path / "r.json"
    _ok(run_app("pagerank", 3, "--graph", a, "--cache", cache))
    os.utime(b, (1e9, 1e9))   # older than the cache
    r = run_app("pagerank", 3, "--graph", b, "--cache", cache, "--json", js)
    _ok(r)
    rec = load_json(js)
    rec = rec["graph"] if "graph" in rec else rec["extra"]["graph"]   # app.extra's home
    assert rec["vertices"] == 3 and "another input" in rec["cache"], rec
    assert "rebuilt" in r.stdout


def test_index_of_the_reversed_graph_exits_2(tmp_path):
    """Same vertex count, edge count and ids, every edge reversed: the index is refused."""
    edges = [(i, (i * 7 + 3) % 50) for i in range(50)] + [(i, (i + 1) % 50) for i in range(50)]
    g, rev, idx = tmp_path / "g.txt", tmp_path / "rev.txt", tmp_path / "i.h5"
    g.write_text("".join(f"{u} {v}\n" for u, v in edges))
    rev.write_text("".join(f"{v} {u}\n" for u, v in edges))
    _ok(run_app("pagerank", 3, "ppr-index", "--graph", g, "--output", idx, "--walks", "10"))
    r = run_app("pagerank", 3, "ppr", "--graph", rev, "--sources", "1,2", "--index", idx)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"index {idx}: built for another graph" in r.stderr
    # a corrupt field: exit 2 naming the file and the field
    with h5py.File(idx, "r+") as f:
        f["index/values"][3] = np.nan
    r = run_app("pagerank", 3, "ppr", "--graph", g, "--sources", "1,2", "--index", idx)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"index {idx}: corrupt: /index/values" in r.stderr


@pytest.mark.parametrize("n,layout", [(3, "2d"), (1, "1d")])
def test_weighted_personalized_undirected_runs_equal_networkx(tmp_path, n, layout):
    """--weights (third column, the last duplicate line counts), --personalization and
    --dangling files (ids, some not in the graph), --undirected: networkx's answer."""
    rng = np.random.default_rng(n)
    e = rng.integers(0, 40, size=(160, 2)) * 3 + 5
    w = np.round(rng.random(160) * 4, 3)
    g, pf, df = tmp_path / "w.txt", tmp_path / "p.txt", tmp_path / "d.txt"
    g.write_text("# u v w\n" + "".join(f"{u} {v} {x}\n" for (u, v), x in zip(e, w)))
    pers = {int(v): float(rng.random()) for v in rng.choice(np.unique(e), 12, replace=False)}
    dang = {int(v): float(rng.random()) for v in rng.choice(np.unique(e), 9, replace=False)}
    pf.write_text("".join(f"{k} {v!r}\n" for k, v in pers.items()) + "999999 1.0\n")
    df.write_text("".join(f"{k}\t{v!r}\n" for k, v in dang.items()))
    out = tmp_path / "pr.h5"
    for undirected in (False, True):
        G = nx.Graph() if undirected else nx.DiGraph()
        G.add_weighted_edges_from((int(u), int(v), float(x)) for (u, v), x in zip(e, w))
        ref = nx.pagerank(G, alpha=0.85, personalization=pers, dangling=dang, tol=1e-16,
                          max_iter=10_000)
        r = run_app("pagerank", n, "--graph", g, "--weights", "--personalization", pf,
                    "--dangling", df, "--layout", layout, "--tol", "1e-14", "--check",
                    "--output", out, *(["--undirected"] if undirected else []))
        _ok(r)
        with h5py.File(out) as f:
            ids, pr = f["/vertex_ids"][:], f["/pagerank"][:]
        assert np.abs(pr - np.array([ref[int(v)] for v in ids])).max() <= 1e-12


@pytest.mark.parametrize("args", [
    ["--seed", "-1"], ["--damping", "nan"], ["--tol", "inf"], ["--max-iter", "0"],
    ["ppr", "--sources", "1", "--threshold", "0"], ["ppr", "--sources", "1", "--seed", "-1"],
    ["ppr-index", "--output", "NEVER", "--walks", "1e9"],
])
def test_out_of_range_options_exit_2(tmp_path, args):
    args = [str(tmp_path / "never.h5") if a == "NEVER" else a for a in args]
    verb = args[:1] if args[0] in ("ppr", "ppr-index") else []
    r = run_app("pagerank", 3, *verb, "--generate", "kron:5:2", *args[len(verb):])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("error:") >= 1 and "expected" in r.stderr
    assert not (tmp_path / "never.h5").exists()


def test_largest_seed_is_accepted():
    r = run_app("pagerank", 2, "ppr", "--generate", "kron:6:4", "--sources", "random:3",
                "--seed", str(2**63 - 1))
    _ok(r)


def test_gauss_seidel_sweep_run(tmp_path):
    path = data_file("graphs", "p2p-Gnutella08.txt")
    out, js = tmp_path / "pr.h5", tmp_path / "pr.json"
    r = run_app("pagerank", 3, "--graph", path, "--sweep", "gauss-seidel", "--tol", "1e-13",
                "--check", "--output", out, "--json", js)
    _ok(r)
    rec = load_json(js)
    assert rec["metrics"]["sweep"] == "gauss-seidel" and rec["validation"]["passed"]
    assert rec["validation"]["fixed_point_residual_l1"] < 1e-13
    ref = nx.pagerank(_nx_from_file(path), alpha=0.85, tol=1e-16, max_iter=10_000)
    with h5py.File(out) as f:
        ids, pr = f["/vertex_ids"][:], f["/pagerank"][:]
    assert np.abs(pr - np.array([ref[int(v)] for v in ids])).max() <= 1e-12
    r = run_app("pagerank", 1, "--generate", "kron:5:2", "--sweep", "gauss-seidel",
                "--layout", "2d")
    assert r.returncode == 2 and "layout 1d" in r.stderr


def test_unwritable_cache_exits_2_before_the_work(tmp_path):
    g = tmp_path / "g.txt"
    g.write_text("0 1\n1 2\n")
    for cache in (tmp_path, g):   # a directory; the input itself
        r = run_app("pagerank", 3, "--graph", g, "--cache", cache)
        assert r.returncode == 2 and "--cache" in r.stderr and "Traceback" not in r.stderr
        assert "load_graph" not in r.stdout and "iterations" not in r.stdout
    assert g.read_text() == "0 1\n1 2\n"


def _serial_iterates(A, iterations: int, d: float = 0.85) -> np.ndarray:
    """networkx's iteration (uniform teleport, dangling mass spread uniformly) on the
    weighted adjacency A (SciPy), from the uniform start, for a given number of steps."""
    n = A.shape[0]
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    PT = (A.multiply(inv[:, None])).T.tocsr()
    x = np.full(n, 1.0 / n)
    for _ in range(iterations):
        x = d * (PT @ x) + (d * x[deg == 0].sum() + 1.0 - d) / n
    return x


def test_native_sweep_threads_choice_keeps_the_bits():
    """Sweep.threads: 'auto' (run_local times its first steps on the thread team and on one
    thread and keeps the faster), 'team' or 'one' give the same scores, bit for bit, at 1-3
    OpenMP threads, on a graph with work enough for the team; and the serial iteration's."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from mpi4py import MPI

    from hpc.pagerank import graphio
    from hpc.pagerank.solver import Native1D

    g = graphio.generate_kron("kron:13:8", 3, MPI.COMM_SELF)
    xs = {}
    for t in (1, 2, 3):
        for how in ("auto", "team", "one"):
            with threadpoolctl.threadpool_limits(t, user_api="openmp"):
                s = Native1D(g)
                try:
                    assert s.sweep.threads == "auto"           # the default
                    s.sweep.threads = how
                    r = s.solve(0.85, 1e-12, 1000)
                    xs[t, how] = (r.x, r.iterations, r.l1_change)
                    if how != "auto":
                        assert s.sweep.team_used == (how == "team")
                finally:
                    s.free()
    x1, it1, c1 = xs[1, "one"]
    for key, (x, it, c) in xs.items():
        assert np.array_equal(x, x1) and (it, c) == (it1, c1), key
    assert np.abs(_serial_iterates(graphio.gather_csr(g), it1) - x1).max() <= 1e-15
    s = Native1D(g)
    try:
        with pytest.raises(ValueError, match="threads"):
            s.sweep.threads = "two"
    finally:
        s.free()


def test_native_threads_probe_runs_at_setup():
    """Native1D makes the sweep's 'auto' threads choice in its setup (timed steps from the
    start vector), so a solve runs only its own steps; one thread has nothing to choose."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from mpi4py import MPI

    importlib.import_module("hpc._core")   # libgomp loaded: threadpoolctl limits what is loaded
    from hpc.pagerank import graphio
    from hpc.pagerank.solver import Native1D

    g = graphio.generate_kron("kron:13:8", 3, MPI.COMM_SELF)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        s = Native1D(g)
        try:
            assert s.sweep.probe_steps == 0 and "threads" not in s.setup_times
            ref = s.solve(0.85, 1e-12, 1000)
        finally:
            s.free()
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        s = Native1D(g)
        try:
            assert "threads" in s.setup_times and s.sweep.probe_steps == 0
            r = s.solve(0.85, 1e-12, 1000)
            assert np.array_equal(r.x, ref.x) and r.iterations == ref.iterations
            s.sweep.threads = "auto"                   # measure again: the next run_local
            assert s.sweep.probe_steps == 7
            s.solve(0.85, 1e-12, 1000)
            assert s.sweep.probe_steps == 0
        finally:
            s.free()


def test_native_sweep_column_layouts_give_the_same_bits():
    """A rank alone sorts each row by column; the 16-bit delta columns (jumps over gaps of
    2^15 or more, padding) give the sorted 32-bit sweep's scores bit for bit, at 1 and 2
    threads, with a teleport too, and 'auto' keeps one of the two after timing both; both within 1e-14 of the serial iteration, and the order's
    own entry order within 1e-15 (scores sum to 1)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from mpi4py import MPI

    importlib.import_module("hpc._core")   # libgomp loaded: threadpoolctl limits what is loaded
    from hpc.pagerank import graphio
    from hpc.pagerank.solver import Native1D, Teleport

    rng = np.random.default_rng(11)
    n = 150_000                     # gaps up to ~n: jump entries in the packed lanes
    src = np.concatenate([rng.integers(0, n, 60_000), np.zeros(50, np.int64)])
    dst = np.concatenate([rng.integers(0, n, 60_000), rng.integers(n - 1000, n, 50)])
    keep = src != dst
    wide = graphio.from_edge_array(np.column_stack([src[keep], dst[keep]]), MPI.COMM_SELF)
    kron = graphio.generate_kron("kron:13:8", 3, MPI.COMM_SELF)
    pv = np.random.default_rng(2).random(kron.n)
    cases = [("kron", kron, None), ("wide", wide, None),
             ("kron-teleport", kron, Teleport(pv / pv.sum(), None))]
    for name, g, tp in cases:
        A = graphio.gather_csr(g)
        out = {}
        for cols in ("as-given", "sorted", "delta16", "auto"):
            for t in (1, 2):
                with threadpoolctl.threadpool_limits(t, user_api="openmp"):
                    s = Native1D(g, teleport=tp, _columns=cols)
                    try:
                        lay = s.sweep.column_layout
                        assert not s.sweep.column_choice      # 'auto': chosen by timed steps
                        assert (cols == "auto") == bool(s.column_times) or lay == "sorted32"
                        out[cols, t] = (s.solve(0.85, 1e-13, 1000), lay)
                    finally:
                        s.free()
        assert out["as-given", 1][1] == "int32" and out["sorted", 1][1] == "sorted32"
        assert out["delta16", 1][1] == "delta16", name
        assert out["auto", 1][1] in ("sorted32", "delta16")
        ref = out["sorted", 1][0]
        for key, (r, _) in out.items():
            if key[0] == "as-given":
                assert np.abs(r.x - ref.x).max() <= 1e-15, (name, key)
            else:
                assert np.array_equal(r.x, ref.x) and r.iterations == ref.iterations, (name, key)
        if tp is None:
            assert np.abs(_serial_iterates(A, ref.iterations) - ref.x).max() <= 1e-14, name
    with pytest.raises(ValueError, match="columns"):
        Native1D(kron, _columns="int16")
    s = Native1D(kron, _columns="sorted")
    try:
        with pytest.raises(ValueError, match="sorted"):
            s.sweep.set_weights(np.zeros(s.sweep.rows + 1, np.int64), np.zeros(0))
        with pytest.raises(ValueError, match="only one"):
            s.sweep.column_layout = "delta16"
    finally:
        s.free()


def test_native_float_weights_on_delta_columns_give_the_same_bits(monkeypatch):
    """A rank alone with float weights (values32) also keeps the 16-bit delta columns with the
    floats in their order (where the build has AVX2): both layouts give the same scores bit
    for bit (an explicit fma an entry in both kernels), at 1 and 2 threads, and match the
    serial weighted iteration."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    importlib.import_module("hpc._core")
    from mpi4py import MPI

    from hpc.pagerank import graphio
    from hpc.pagerank.solver import Native1D

    rng = np.random.default_rng(4)
    e = rng.integers(0, 40_000, size=(300_000, 2))
    e = e[e[:, 0] != e[:, 1]]
    w = (rng.random(e.shape[0]) + 0.5).astype(np.float32).astype(np.float64)   # exact floats
    g = graphio.from_edge_array(np.column_stack([e, w]), MPI.COMM_SELF, weights=True)
    monkeypatch.setattr(Native1D, "_choose_columns", lambda self: None)   # keep both
    out = {}
    for t in (1, 2):
        with threadpoolctl.threadpool_limits(t, user_api="openmp"):
            s = Native1D(g)
            try:
                assert s.sweep.weight_layout == "values32"
                if not s.sweep.column_choice:
                    pytest.skip("this build has no AVX2 delta kernels")
                for lay in ("sorted32", "delta16", "sorted32"):
                    s.sweep.column_layout = lay
                    out[t, lay] = s.solve(0.85, 1e-13, 1000)
            finally:
                s.free()
    ref = out[1, "sorted32"]
    for key, r in out.items():
        assert np.array_equal(r.x, ref.x) and r.iterations == ref.iterations, key
    assert np.abs(_serial_iterates(graphio.gather_csr(g), ref.iterations) - ref.x).max() <= 1e-14


def test_native_segmented_order_pads_each_block():
    """segmented_order lays block q's rows out as local_order orders them (in-degree
    descending, stable) from a multiple of 4, padding rows (perm -1, no entries) between;
    Sweep.set_segments rejects segments that do not tile the rows."""
    import scipy.sparse as sp

    from hpc import _core

    rng = np.random.default_rng(3)
    n = 11
    A = sp.random(n, n, density=0.3, random_state=rng, format="csr")
    A.data[:] = 1.0
    ip, ix = A.indptr.astype(np.int64), A.indices.astype(np.int64)
    outdeg = np.asarray(A.sum(axis=0)).ravel().astype(np.int64)
    off = np.array([0, 5, 5, 11], dtype=np.int64)       # an empty block
    o, starts = _core.pagerank.segmented_order(indptr=ip, indices=ix, outdeg=outdeg, offsets=off)
    assert list(starts) == [0, 8, 8] and o.perm.size == 16
    indeg = np.diff(ip)
    for q in range(3):
        rows = np.arange(off[q], off[q + 1])
        want = rows[np.argsort(-indeg[rows], kind="stable")]
        got = o.perm[starts[q]:starts[q] + rows.size]
        assert list(got) == list(want)
        assert np.all(o.perm[starts[q] + rows.size:(starts[q + 1] if q < 2 else 16)] == -1)
    assert np.array_equal(o.pos[o.perm[o.perm >= 0]], np.flatnonzero(o.perm >= 0))
    for i, r in enumerate(o.perm):                       # entries keep their order
        cols = o.indices[o.indptr[i]:o.indptr[i + 1]]
        assert list(cols) == ([] if r < 0 else list(o.pos[ix[ip[r]:ip[r + 1]]]))
    none = np.zeros(1, dtype=np.int64)
    L = _core.pagerank.exchange_layout(recv_counts=none, send_counts=none,
                                       send_idx=np.empty(0, dtype=np.int64), rank=0, nl=16,
                                       piggyback=False)
    s = _core.pagerank.Sweep(o, L, xg=np.zeros(17), x=np.empty(16), send=np.zeros(0),
                             part_out=np.zeros(2))
    s.set_segments(starts, np.diff(off))
    assert s.segments == 3
    with pytest.raises(ValueError, match="tile"):
        s.set_segments(np.array([0, 4, 8]), np.diff(off))


def test_periodic_relax_policy():
    """PeriodicRelax (native/include/hpc/pagerank_relax.hpp): a relaxed step only once the
    change is 1e-4 of the first and its last two ratios are within 3% of d; a relaxed step
    that does not bring the next change under d/2 of the one before ends relaxing; plain
    steps between; off when disabled."""
    from hpc import _core

    P = _core.pagerank.PeriodicRelax

    def decisions(changes, **kw):
        p = P(0.85, **kw)
        return [p.next(c) for c in changes], p

    tail = [0.85 ** k for k in range(80)]                 # a pure rate-d tail from 1
    out, p = decisions(tail)
    first = out.index(True)
    assert tail[first] < 1e-4 <= tail[first - 1]          # the first step below 1e-4 of c_1
    assert p.relaxed == 1 and not p.enabled               # the tail did not drop: judged
    assert not any(out[first + 1:])
    out, _ = decisions(tail, enabled=False)
    assert not any(out)
    assert not any(decisions([0.5 ** k for k in range(80)])[0])      # rate 0.5: never
    assert not any(decisions([(0.85 * 1.04) ** k for k in range(80)])[0])   # outside 3%
    # a tail the relaxed step removes: the change drops, and a later tail may relax again
    p = P(0.85)
    k = 0
    while not p.next(0.85 ** k):                          # step k + 1; the next one relaxes
        k += 1
    c = 0.85 ** k
    # the relaxed step's change (its input's: the tail goes on), then the relaxed iterate's
    # (far below), then a new tail at rate d
    after = [c * 0.85, c * 0.01, c * 0.01 * 0.85, c * 0.01 * 0.85 ** 2]
    assert [p.next(x) for x in after] == [False, False, False, True]   # plain steps between
    assert p.enabled and p.relaxed == 2
    assert not p.next(c * 0.01 * 0.85 ** 3)               # the relaxed step's own change
    assert not p.next(c * 0.01 * 0.85 ** 4) and not p.enabled   # did not pay: judged
