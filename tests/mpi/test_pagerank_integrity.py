"""hpc.pagerank's caches and indexes prove they belong to their input (tools/run_tests.sh runs
1..4 ranks): the graph cache's input and content fingerprints, the PPR index's graph
fingerprint, and every corrupt-but-well-formed index field refused with its name."""
from __future__ import annotations

import os
import shutil
import tempfile

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.pagerank import PPRIndex, graphio

comm = MPI.COMM_WORLD


@pytest.fixture
def shared_dir():
    d = tempfile.mkdtemp(prefix="hpc_print_") if comm.rank == 0 else None
    d = comm.bcast(d)
    yield d
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(d, ignore_errors=True)


def _edges(n: int = 50, m: int = 300, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(m, 2)).astype(np.int64)


def _write(path: str, edges: np.ndarray) -> None:
    if comm.rank == 0:
        with open(path, "w") as f:
            f.writelines(f"{u} {v}\n" for u, v in edges)
    comm.Barrier()


@pytest.mark.mpi
def test_content_hash_is_rank_independent_and_sees_reversal():
    e = _edges()
    g = graphio.from_edge_array(e, comm)
    h = graphio.content_hash(g)
    # one rank's view of the same graph (a split communicator of size 1) gives the same value
    solo = comm.Split(comm.rank, 0)
    assert graphio.content_hash(graphio.from_edge_array(e, solo)) == h
    solo.Free()
    # reversed edges: same n, m and ids, another fingerprint
    r = graphio.from_edge_array(e[:, ::-1].copy(), comm)
    assert (r.n, r.m) == (g.n, g.m)
    assert graphio.content_hash(r) != h


@pytest.mark.mpi
def test_cache_of_another_input_is_rebuilt(shared_dir):
    a, b, cache = (os.path.join(shared_dir, x) for x in ("a.txt", "b.txt", "c.h5"))
    _write(a, _edges(50, 300, 1))
    _write(b, _edges(30, 100, 2))
    if comm.rank == 0:   # b older than the cache: a modification-time check would use it
        os.utime(b, (1e9, 1e9))
    comm.Barrier()
    ga = graphio.load_graph(comm, graph=a, cache=cache)
    assert "rebuilt" in ga.info["cache"]
    again = graphio.load_graph(comm, graph=a, cache=cache)
    assert again.info["cache"].startswith("read")
    assert graphio.content_hash(again) == graphio.content_hash(ga)
    gb = graphio.load_graph(comm, graph=b, cache=cache)
    ref = graphio.load_graph(comm, graph=b)
    assert "another input" in gb.info["cache"]
    assert (gb.n, gb.m) == (ref.n, ref.m) and graphio.content_hash(gb) == graphio.content_hash(ref)
    # the same generator with another seed is another input too
    k1 = graphio.load_graph(comm, generate="kron:6:4", seed=1, cache=cache)
    k2 = graphio.load_graph(comm, generate="kron:6:4", seed=2, cache=cache)
    assert "another input" in k2.info["cache"]
    assert graphio.content_hash(k1) != graphio.content_hash(k2)


@pytest.mark.mpi
def test_corrupt_cache_is_rebuilt_and_a_corrupt_graph_file_refused(shared_dir):
    a, cache = os.path.join(shared_dir, "a.txt"), os.path.join(shared_dir, "c.h5")
    _write(a, _edges())
    good = graphio.load_graph(comm, graph=a, cache=cache)
    if comm.rank == 0:   # one edge moved: well-formed, in range, another content
        with h5py.File(cache, "r+") as f:
            d = f["graph/out_indices"]
            x = d[:]
            row = x[:int(f["graph/out_degree"][0])]
            assert row.size, "vertex 0 of the test graph has out-edges"
            x[0] = next(v for v in range(good.n) if v not in row)
            d[:] = x
    comm.Barrier()
    g = graphio.load_graph(comm, graph=a, cache=cache)
    assert "unusable" in g.info["cache"] and "content fingerprint" in g.info["cache"]
    assert graphio.content_hash(g) == graphio.content_hash(good)
    # read as an input (not a cache) the corrupt file is an error naming the field
    if comm.rank == 0:
        with h5py.File(cache, "r+") as f:
            f["graph/out_indices"][0] = good.n + 5
    comm.Barrier()
    with pytest.raises(UsageError, match=r"c\.h5: corrupt graph file: /graph/out_indices"):
        graphio.load_graph(comm, graph=cache)


def _rewrite(path: str, name: str, data) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]
        f[name] = data


def _set(name: str, i, value):
    def edit(path: str, f_n: int) -> None:
        with h5py.File(path, "r+") as f:
            d = f[name]
            x = d[:]
            x[i(f_n, x) if callable(i) else i] = value(f_n) if callable(value) else value
            d[:] = x
    return edit


def _shorten(*names: str):
    def edit(path: str, f_n: int) -> None:
        with h5py.File(path, "r") as f:
            parts = {nm: f[nm][:-3] for nm in names}
        for nm, x in parts.items():
            _rewrite(path, nm, x)
    return edit


CORRUPTIONS = {
    "id out of range": (_set("index/ids", 4, lambda n: n), "/index/ids"),
    "negative id": (_set("index/ids", -1, -2), "/index/ids"),
    "negative count": (_set("index/count", lambda n, x: n // 2, -1), "/index/count"),
    "too-large count": (_set("index/count", lambda n, x: n - 1, lambda n: n + 1), "/index/count"),
    "NaN value": (_set("index/values", 7, np.nan), "/index/values"),
    "zero mass": (_set("index/mass", lambda n, x: n - 1, 0.0), "/index/mass"),
    "infinite mass": (_set("index/mass", 0, np.inf), "/index/mass"),
    "short ids array": (_shorten("index/ids", "index/values"), "/index/ids"),
    "short values array": (_shorten("index/values"), "/index/values"),
    "short mass array": (_shorten("index/mass"), "/index/mass"),
    "value above the mass": (_set("index/values", 0, 5.0), "/index/values"),
}


@pytest.fixture(scope="module")
def built_index():
    d = tempfile.mkdtemp(prefix="hpc_pridx_") if comm.rank == 0 else None
    d = comm.bcast(d)
    e = _edges(40, 200, 9)
    g = graphio.from_edge_array(e, comm)
    path = os.path.join(d, "idx.h5")
    PPRIndex.build(g, walks=20, keep=8, seed=1).save(path)
    yield e, g, path
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.mpi
@pytest.mark.parametrize("what", sorted(CORRUPTIONS))
def test_corrupt_index_field_is_named(built_index, what):
    e, g, path = built_index
    edit, field = CORRUPTIONS[what]
    bad = path.replace("idx.h5", f"bad-{what.replace(' ', '_')}.h5")
    if comm.rank == 0:
        shutil.copy(path, bad)
        edit(bad, g.n)
    comm.Barrier()
    with pytest.raises(UsageError) as err:
        PPRIndex.load(bad, g)
    msg = str(err.value)
    assert bad in msg and field in msg, msg


@pytest.mark.mpi
def test_index_of_a_reversed_graph_is_refused(built_index):
    e, g, path = built_index
    assert PPRIndex.load(path, g).fingerprints.mass.size == g.nlocal   # the intact file loads
    rev = graphio.from_edge_array(e[:, ::-1].copy(), comm)
    assert (rev.n, rev.m) == (g.n, g.m) and np.array_equal(rev.ids, g.ids)
    with pytest.raises(UsageError, match="built for another graph.*fingerprint"):
        PPRIndex.load(path, rev)
