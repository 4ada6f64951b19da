"""The send model behind --method auto: statistics, interpolation, choices, the cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
from mpi4py import MPI

from hpc.halo import model as M
from hpc.halo.canonical import StridedBlock

SIZES, BLOCKS = [64, 4096, 1 << 20], [8, 64, 512, 4096]


def make(dt_same, pack, contig_same=(1e-6, 2e-6, 1e-4), other=None) -> M.Model:
    contig = {"same_host": list(contig_same)}
    dtype = {"same_host": {str(b): list(dt_same) for b in BLOCKS}}
    if other is not None:
        contig["other_host"] = list(other[0])
        dtype["other_host"] = {str(b): list(other[1]) for b in BLOCKS}
    return M.Model(SIZES, BLOCKS, contig, dtype, {str(b): list(pack) for b in BLOCKS},
                   {str(b): list(pack) for b in BLOCKS},
                   {"mpi": MPI.Get_library_version().splitlines()[0]})


def test_trimean_weights_the_median_twice():
    assert M.trimean([1, 2, 3, 4, 5]) == pytest.approx((2 + 2 * 3 + 4) / 4)
    assert M.trimean([1, 1, 1, 1, 1000]) == pytest.approx(1.0)  # one outlier does not move it


def test_sampling_stops_when_two_batches_agree_or_at_the_limit():
    s = M._Stable(0.05, 2, 10)
    assert not s.add([1.0, 1.0, 1.0])
    assert s.add([1.0, 1.01, 0.99])
    noisy = M._Stable(0.01, 2, 4)
    rng = np.random.default_rng(0)
    done = [noisy.add(list(rng.random(5) * k)) for k in (1, 10, 100, 1000)]
    assert done == [False, False, False, True] and noisy.batches == 4


def test_choice_follows_the_cheaper_path_with_reasons():
    strided = StridedBlock(0, (8, 100), (1, 64))
    slow_dt = make(dt_same=(1e-3, 1e-3, 1e-1), pack=(1e-7, 1e-6, 1e-4))
    pick, why = slow_dt.choose(strided, 800, True)
    assert pick == "pack" and why.startswith("model:") and "same host" in why
    fast_dt = make(dt_same=(1e-7, 1e-7, 1e-6), pack=(1e-5, 1e-4, 1e-2))
    assert fast_dt.choose(strided, 800, True)[0] == "datatype"
    # contiguous faces need no packing; non-canonical ones go to the library
    assert fast_dt.choose(StridedBlock(0, (800,), (1,)), 800, True)[0] == "datatype"
    assert slow_dt.choose(StridedBlock(0, (800,), (1,)), 800, True)[0] == "datatype"
    assert slow_dt.choose(None, 800, True) == ("datatype", "library fallback: not a strided form")


def test_off_host_uses_its_own_table_or_says_it_has_none():
    strided = StridedBlock(0, (64, 10), (1, 128))
    m = make(dt_same=(1e-7, 1e-7, 1e-6), pack=(1e-6, 1e-6, 1e-5),
             other=((1e-3, 1e-3, 1e-2), (1.0, 1.0, 1.0)))
    assert m.choose(strided, 640, True)[0] == "datatype"
    pick, why = m.choose(strided, 640, False)
    assert pick == "pack" and "other host" in why
    only_same = make(dt_same=(1e-7, 1e-7, 1e-6), pack=(1e-6, 1e-6, 1e-5))
    assert "no off-host measurement" in only_same.choose(strided, 640, False)[1]


def test_interpolation_is_log_log_and_linear_beyond_the_table():
    m = make(dt_same=(1e-6, 1e-4, 1e-2), pack=(1e-6, 1e-6, 1e-6))
    t = m._at(m.datatype["same_host"]["8"], 512)  # halfway in log size between 64 and 4096
    assert t == pytest.approx(1e-5, rel=1e-6)
    assert m._at(m.datatype["same_host"]["8"], 2 << 20) == pytest.approx(2e-2)
    assert m._block(100) == "64" and m._block(3000) == "4096"


def test_cache_roundtrip_and_foreign_models_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("HPC_HALO_MODEL", str(tmp_path / "m.json"))
    assert M.cache_path() == tmp_path / "m.json"
    assert M.load() is None
    m = make(dt_same=(1e-6, 1e-5, 1e-4), pack=(1e-6, 1e-6, 1e-6))
    m.save()
    back = M.load()
    assert back is not None and back.to_json() == m.to_json()
    assert back.source.startswith("cached model")
    d = json.loads((tmp_path / "m.json").read_text())
    d["meta"]["mpi"] = "some other MPI 1.0"
    (tmp_path / "m.json").write_text(json.dumps(d))
    assert M.load() is None  # measured with another library: not used
    monkeypatch.delenv("HPC_HALO_MODEL")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert str(M.cache_path()).startswith(str(tmp_path / "xdg" / "hpc" / "halo" / "model-"))


def test_measure_on_one_rank_gives_a_complete_model():
    m = M.measure(MPI.COMM_WORLD, quick=True)
    assert m.sizes == M.QUICK_SIZES and "same_host" in m.contig
    assert all(len(v) == len(m.sizes) for v in m.pack.values())
    assert all(t > 0 for t in m.contig["same_host"])


# -- the cache hardened: validated on load, re-measured when invalid, a private directory ----
def _good() -> dict:
    return make(dt_same=(1e-6, 1e-5, 1e-4), pack=(1e-6, 1e-6, 1e-6)).to_json()


def _broken(kind: str) -> str:
    d = _good()
    if kind == "list":
        return json.dumps([d])
    if kind == "empty_object":
        return "{}"
    if kind == "empty_sizes":
        d["sizes"] = []
    elif kind == "missing_key":
        del d["pack"]
    elif kind == "missing_block":
        del d["unpack"]["512"]
    elif kind == "missing_place":
        del d["contig"]["same_host"]
    elif kind == "short_series":
        d["datatype"]["same_host"]["64"] = d["datatype"]["same_host"]["64"][:1]
    elif kind == "string_series":
        d["contig"]["same_host"] = "fast"
    elif kind == "negative_time":
        d["pack"]["8"][0] = -1.0
    elif kind == "unsorted_sizes":
        d["sizes"] = d["sizes"][::-1]
    elif kind == "deep_nesting":
        return "[" * 100_000 + "]" * 100_000
    elif kind == "not_json":
        return "{\"version\": 1,"
    elif kind == "nan":
        return json.dumps(d).replace("1e-06", "NaN", 1)
    return json.dumps(d)


BROKEN = ["list", "empty_object", "empty_sizes", "missing_key", "missing_block",
          "missing_place", "short_series", "string_series", "negative_time", "unsorted_sizes",
          "deep_nesting", "not_json", "nan"]


@pytest.mark.parametrize("kind", BROKEN)
def test_a_cache_of_the_wrong_structure_is_refused_with_the_reason(tmp_path, kind):
    path = tmp_path / "m.json"
    path.write_text(_broken(kind))
    m, why = M.read(path)
    assert m is None and "not" in why and str(path) in why
    with pytest.raises(ValueError):  # InvalidModel, JSONDecodeError or RecursionError's kin
        try:
            M.Model.from_json(json.loads(path.read_text()))
        except RecursionError as exc:
            raise ValueError("deep") from exc


def test_an_invalid_cache_is_remeasured_and_replaced(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    monkeypatch.setenv("HPC_HALO_MODEL", str(path))
    fresh = make(dt_same=(2e-6, 2e-5, 2e-4), pack=(1e-6, 1e-6, 1e-6))
    calls = []
    monkeypatch.setattr(M, "measure", lambda comm, quick: calls.append(quick) or fresh)
    for kind in ("list", "short_series", "deep_nesting"):
        path.write_text(_broken(kind))
        m = M.load_or_measure(MPI.COMM_SELF)
        assert m is fresh and "cached model not used" in m.source and "cached in" in m.source
        assert M.load() is not None and M.load().to_json() == fresh.to_json()  # replaced
        assert M.load_or_measure(MPI.COMM_SELF).source.startswith("cached model")
    assert calls == [True] * 3


def test_default_cache_directory_is_private(tmp_path, monkeypatch):
    import stat

    monkeypatch.delenv("HPC_HALO_MODEL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    m = make(dt_same=(1e-6, 1e-5, 1e-4), pack=(1e-6, 1e-6, 1e-6))
    path = m.save()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.parent.chmod(0o755)  # loosened by hand: tightened again on the next write
    m.save()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert M.load() is not None


def test_a_directory_of_someone_else_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    monkeypatch.setenv("HPC_HALO_MODEL", str(path))
    m = make(dt_same=(1e-6, 1e-5, 1e-4), pack=(1e-6, 1e-6, 1e-6))
    m.save()
    assert M.load() is not None
    me = M._uid()
    monkeypatch.setattr(M, "_uid", lambda: me + 1)  # the directory and file are now another's
    got, why = M.read()
    assert got is None and "belongs to uid" in why and "refused" in why
    with pytest.raises(M.UntrustedCache):
        m.save()
    monkeypatch.setattr(M, "measure", lambda comm, quick: m)
    src = M.load_or_measure(MPI.COMM_SELF).source
    assert "cached model not used" in src and "not cached" in src


def test_a_cache_others_can_write_or_a_symlink_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    m = make(dt_same=(1e-6, 1e-5, 1e-4), pack=(1e-6, 1e-6, 1e-6))
    m.save(shared / "m.json")
    shared.chmod(0o777)
    got, why = M.read(shared / "m.json")
    assert got is None and "writable by others" in why
    with pytest.raises(M.UntrustedCache):
        m.save(shared / "m.json")
    shared.chmod(0o700)
    (shared / "link.json").symlink_to(shared / "m.json")
    got, why = M.read(shared / "link.json")
    assert got is None and "cannot open" in why
