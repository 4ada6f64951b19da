"""python -m hpc.spgemm triangles against networkx (the graph taken as undirected and simple),
on generated R-MAT and Erdos-Renyi graphs and the real SNAP graphs, at 1-4 ranks; bad inputs
and --seed -1 exit 2 with one error line per rank before any work."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from conftest import data_file, load_json, run_app
from hpc.sparse.randgen import er_edges, rmat_edges


def nx_triangles(src, dst) -> int:
    G = nx.Graph()
    G.add_edges_from(zip(src.tolist(), dst.tolist()))
    G.remove_edges_from(nx.selfloop_edges(G))
    return sum(nx.triangles(G).values()) // 3


def run_triangles(tmp_path, n, *args) -> dict:
    js = tmp_path / "r.json"
    r = run_app("spgemm", n, "triangles", *args, "--json", str(js), "--quiet", timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = load_json(js)
    assert rec["validation"]["passed"]
    return rec


@pytest.mark.parametrize("n,spec", [(1, "rmat:9:8"), (3, "rmat:9:8"), (4, "er:700:6")])
def test_generated_graphs_equal_networkx(tmp_path, n, spec):
    rec = run_triangles(tmp_path, n, "--generate", spec, "--seed", "3", "--threads", "2")
    kind, a, b = spec.split(":")
    s, d = (rmat_edges(int(a), int(b), 3, None) if kind == "rmat"
            else er_edges(int(a), float(b), 3, None))
    assert rec["metrics"]["triangles"] == nx_triangles(s, d)
    assert rec["metrics"]["triangles"] > 0


@pytest.mark.parametrize("name,n", [("email-Eu-core.txt", 3), ("p2p-Gnutella08.txt", 2)])
def test_real_graphs_equal_networkx(tmp_path, name, n):
    path = data_file("graphs", name)
    rec = run_triangles(tmp_path, n, "--graph", str(path))
    edges = np.loadtxt(path, comments="#", dtype=np.int64, ndmin=2)
    assert rec["metrics"]["triangles"] == nx_triangles(edges[:, 0], edges[:, 1])


@pytest.mark.parametrize("args,match", [
    (("--generate", "rmat:9:8", "--seed", "-1"), "seed"),
    (("--generate", "poisson3d:4"), "rmat"),
    ((), "one of"),
    (("--graph", "/nonexistent/graph.txt"), "graph"),
])
def test_bad_inputs_exit_2(args, match):
    r = run_app("spgemm", 2, "triangles", *args, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) >= 1 and match in r.stderr


def test_spgemm_seed_minus_one_exits_2():
    r = run_app("spgemm", 1, "--generate", "rmat:6:4", "--seed", "-1", timeout=120)
    assert r.returncode == 2 and "seed" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("n", [1, 3])
def test_app_phases_same_product_less_memory(tmp_path, n):
    recs = {}
    for k in (1, 4):
        js = tmp_path / f"r{k}.json"
        r = run_app("spgemm", n, "--generate", "rmat:10:8", "--phases", str(k), "--json",
                    str(js), "--quiet", timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr
        recs[k] = load_json(js)
    m1, m4 = recs[1]["metrics"], recs[4]["metrics"]
    assert recs[4]["validation"]["passed"] and m4["phases"] == 4
    assert m4["nnz_C"] == m1["nnz_C"] and m4["products"] == m1["products"]
    assert recs[4]["validation"]["rel_err"] == recs[1]["validation"]["rel_err"]
    assert m4["c_peak_bytes"] <= 0.4 * m1["c_peak_bytes"]


def test_app_phases_usage_errors(tmp_path):
    for args in (("--phases", "0"), ("--phases", "2", "--output", str(tmp_path / "c.h5"))):
        r = run_app("spgemm", 1, "--generate", "rmat:6:4", *args, timeout=120)
        assert r.returncode == 2 and "phases" in r.stderr, r.stdout + r.stderr
