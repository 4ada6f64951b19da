"""STREAM's run rules (hpc.stream.rules): the cache rule, the timer rule, placement.

Sizes are chosen on both sides of the rule: with a known (faked) last-level cache the flag
must be set exactly when an array is under 4x the rank's share; the real machine's cache is
read from sysfs where it is there.
"""
from __future__ import annotations

import pytest
from mpi4py import MPI

from conftest import load_json, run_app
from hpc.stream import api, rules

COMM = MPI.COMM_SELF


def _fake_sysfs(root, llc_kib: int, cpus: int = 2):
    for c in range(cpus):
        for i, (level, kind, size, shared) in enumerate([
                (1, "Data", "32K", str(c)), (1, "Instruction", "32K", str(c)),
                (2, "Unified", "512K", str(c)), (3, "Unified", f"{llc_kib}K", f"0-{cpus - 1}")]):
            d = root / f"cpu{c}" / "cache" / f"index{i}"
            d.mkdir(parents=True)
            for name, val in (("level", level), ("type", kind), ("size", size),
                              ("shared_cpu_list", shared)):
                (d / name).write_text(f"{val}\n")


def test_sysfs_parsing_finds_the_last_level(tmp_path):
    _fake_sysfs(tmp_path, 8192)
    assert rules.llc_instances({0, 1}, tmp_path) == {"0-1": 8192 * 1024}
    assert rules.llc_instances({5}, tmp_path) == {}
    assert rules._cpulist("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert rules._ranges({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert rules._size("32768K") == 32 << 20 and rules._size("2M") == 2 << 20


@pytest.mark.parametrize("array_bytes, resident", [(4 * 256 * 1024 - 8, True),
                                                   (4 * 256 * 1024, False)])
def test_cache_rule_flags_exactly_below_four_times_the_share(monkeypatch, array_bytes,
                                                             resident):
    monkeypatch.setattr(rules, "llc_instances", lambda cpus: {"0-1": 256 * 1024})
    got = rules.check(COMM, array_bytes, {"copy": 1.0})
    assert got["cache_resident"] is resident
    assert got["llc"]["share_bytes"] == 256 * 1024 and str(4 * 256 * 1024) in got["cache_rule"]


def test_unknown_cache_is_said_not_guessed(monkeypatch):
    monkeypatch.setattr(rules, "llc_instances", lambda cpus: {})
    got = rules.check(COMM, 8, {"copy": 1.0})
    assert got["cache_resident"] is False and "unknown" in got["cache_rule"]


def test_timer_rule_flags_kernels_under_twenty_ticks(monkeypatch):
    tick = rules.timer_granularity()
    assert 0 < tick < 1e-3
    monkeypatch.setattr(rules, "timer_granularity", lambda: 1e-6)
    got = rules.check(COMM, 8, {"copy": 19e-6, "triad": 21e-6})
    assert got["short_kernels"] == ["copy"] and got["timer_granularity_s"] == 1e-6


def test_a_real_run_of_a_cache_sized_array_is_flagged():
    if not rules.llc_instances(rules.affinity()):
        pytest.skip("this machine's sysfs does not list the caches")
    r = api.run(1000, backend="numpy", ntimes=3, comm=COMM)
    assert r["valid"] and r["rules"]["cache_resident"] is True
    assert r["init"]["best_s"] > 0 and r["read"]["bytes"] == 3 * 1000 * 8
    assert r["rules"]["placement"]["ranks"][0]["cpus"]


def test_app_notes_and_record(tmp_path):
    out = tmp_path / "r.json"
    r = run_app("stream", 2, "-s", "2000", "-n", "3", "--backend", "numpy", "--json", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    m = load_json(out)["metrics"]
    assert m["init_GBps"] > 0 and "read_GBps" in m
    assert isinstance(m["ranks_share_cores"], bool) and isinstance(m["short_kernels"], list)
    if m["cache_resident"]:
        assert "cache_resident" in r.stdout and "measures cache, not memory" in r.stdout
    if m["ranks_share_cores"]:
        assert "warning: ranks share cores" in r.stdout


# -- devices: --list, --device, --mem, --copies ---------------------------------------------
def test_list_shows_the_host_for_host_back_ends():
    r = run_app("stream", 1, "--list", "--backend", "numpy")
    assert r.returncode == 0 and r.stdout.startswith("numpy device 0: host: ")


@pytest.mark.parametrize("kw, needle", [
    ({"device": 1}, "runs on the host"),
    ({"mem": "managed"}, "takes device"),
    ({"mem": "sideways"}, "takes device"),
])
def test_device_options_on_host_back_ends_are_usage_errors(kw, needle):
    from hpc.core.errors import UsageError

    with pytest.raises(UsageError, match=needle):
        api.run(1000, backend="numpy", ntimes=2, comm=COMM, **kw)


def test_device_options_on_the_command_line_exit_2_with_one_line():
    for args, needle in ((["--device", "1"], "runs on the host"),
                         (["--copies"], "--backend cuda")):
        r = run_app("stream", 1, "-s", "1000", "-n", "2", "--backend", "numpy", *args)
        errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 2 and len(errs) == 1 and needle in errs[0], r.stderr[-1000:]


def _cuda():
    from hpc.core import backends

    why = backends.why_unavailable("cuda")
    if why:
        pytest.skip(f"no CUDA here: {why}")
    from hpc import _cuda

    return _cuda


@pytest.mark.parametrize("mem", ["device", "managed", "pagefault"])
def test_cuda_memory_modes_validate_and_time_with_events(mem):
    _cuda()
    try:
        r = api.run(1 << 20, backend="cuda", ntimes=3, comm=COMM, mem=mem, device=0)
    except Exception as exc:  # noqa: BLE001 - a device without pageable access says so
        if mem == "pagefault" and "pageable" in str(exc):
            pytest.skip(str(exc))
        raise
    assert r["valid"] and r["model"]["mem"] == mem and "CUDA events" in r["model"]["timing"]
    assert all(k["best_s"] > 0 for k in r["kernels"].values())


def test_cuda_list_and_copy_bandwidth():
    cu = _cuda()
    devs = cu.stream.devices()
    assert devs and devs[0]["index"] == 0 and devs[0]["memory_bytes"] > 0
    for what in ("h2d_ce", "d2h_ce", "bidir_ce", "h2d_sm", "d2h_sm"):
        assert cu.stream.copy_bandwidth(what, 1 << 24) > 0
    with pytest.raises(ValueError, match="unknown copy"):
        cu.stream.copy_bandwidth("sideways", 1 << 20)
