"""Real inputs as people have them: compressed SNAP graphs, Matrix Market files and CSVs give
results identical to the uncompressed files, through the apps' command lines (odd ranks)."""
from __future__ import annotations

import bz2
import gzip
import lzma

import h5py
import numpy as np
import pytest

from conftest import data_file, load_json, run_app

PACK = {".gz": lambda b: gzip.compress(b, compresslevel=1),
        ".bz2": lambda b: bz2.compress(b, compresslevel=1),
        ".xz": lambda b: lzma.compress(b, preset=0)}


def _run(app: str, ranks: int, *args) -> dict:
    r = run_app(app, ranks, *args, "--quiet", timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


@pytest.mark.parametrize("ext", [".gz"])  # (.bz2 below; .xz in tests/mpi/test_mmio_fast.py)
def test_pagerank_compressed_snap_graph(tmp_path, ext):
    src = data_file("graphs", "p2p-Gnutella08.txt")
    packed = tmp_path / f"g.txt{ext}"
    packed.write_bytes(PACK[ext](src.read_bytes()))
    outs = []
    for graph in (src, packed):
        out = tmp_path / f"{graph.name}.h5"
        _run("pagerank", 3, "--graph", graph, "--output", out)
        with h5py.File(out, "r") as f:
            outs.append((f["vertex_ids"][...], f["pagerank"][...]))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_pagerank_compressed_bad_line_named(tmp_path):
    text = b"0 1\n1 2\n2 x\n3 0\n"
    bad = tmp_path / "bad.txt.bz2"
    bad.write_bytes(PACK[".bz2"](text))
    r = run_app("pagerank", 3, "--graph", bad)
    assert r.returncode == 2 and "line 3" in r.stderr and r.stderr.count("error:") == 1, r.stderr


def test_cg_compressed_matrix(tmp_path):
    src = data_file("matrices", "bcsstk13.mtx")
    packed = tmp_path / "A.mtx.bz2"
    packed.write_bytes(PACK[".bz2"](src.read_bytes()))
    recs = []
    for m in (src, packed):
        out = tmp_path / f"{m.name}.json"
        # 100 iterations of an ill-conditioned matrix: not converged (exit 1), the same either way
        r = run_app("cg", 3, "--matrix", m, "--method", "pcg", "--pc", "jacobi", "--maxiter",
                    "100", "--json", out, "--quiet", timeout=600)
        assert r.returncode in (0, 1), r.stderr[-2000:]
        recs.append(load_json(out)["metrics"])
    assert recs[0]["iterations"] == recs[1]["iterations"]
    assert recs[0]["final_relres"] == recs[1]["final_relres"]


def test_kmedoids_compressed_csv(tmp_path):
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(c, 0.3, (40, 3)) for c in (0.0, 3.0, 6.0)])
    plain = tmp_path / "x.csv"
    np.savetxt(plain, X, delimiter=",", header="a,b,c", comments="")
    packed = tmp_path / "x.csv.gz"
    packed.write_bytes(PACK[".gz"](plain.read_bytes()))
    outs = []
    for data in (plain, packed):
        out = tmp_path / f"{data.name}.h5"
        _run("kmedoids", 3, "--data", data, "--k", "3", "--output", out)
        with h5py.File(out, "r") as f:
            outs.append((f["medoids"][...], f["labels"][...]))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    # the CSV parsed by NumPy still names a bad line, on any rank's share
    bad = tmp_path / "bad.csv"
    lines = plain.read_text().splitlines()
    lines[100] = lines[100].replace(",", ",nan,", 1).rsplit(",", 1)[0]
    bad.write_text("\n".join(lines) + "\n")
    r = run_app("kmedoids", 3, "--data", bad, "--k", "3")
    assert r.returncode == 2 and "line 101" in r.stderr, r.stderr
