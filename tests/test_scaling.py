"""hpc.scaling: per-app study rules, the study runner on hpc.stream, CSV/JSON, plots, CLI errors."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hpc.core import launch
from hpc.core.spec import names
from hpc.scaling import apps, argv as A, runner
from conftest import MPI_ENV, ROOT

STUDIES = sorted((ROOT / "scaling" / "studies").glob("*.toml"))


def scaling(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(MPI_ENV)
    return subprocess.run([sys.executable, "-m", "hpc.scaling", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=str(ROOT))


# -- option rewriting and per-app rules ------------------------------------------------------
def test_argv_find_replace_remove():
    argv = ["--grid", "4", "5", "6", "--radius=2", "-x"]
    assert A.find(argv, "--grid", 3) == ["4", "5", "6"]
    assert A.find(argv, "--radius") == ["2"]
    assert A.find(argv, "--nope") is None
    assert A.replace(argv, "--radius", "3") == ["--grid", "4", "5", "6", "--radius", "3", "-x"]
    assert A.replace(argv, "--grid", ["8", "5", "6"])[:4] == ["--grid", "8", "5", "6"]
    assert A.replace([], "--dp", "2") == ["--dp", "2"]
    assert A.remove(argv, "--grid", 3) == ["--radius=2", "-x"]


def test_weak_halo_keeps_cells_per_rank():
    for p in (1, 2, 3, 4, 6, 8, 12, 16, 27, 64):
        argv = apps.args_for("halo", "weak", ["--grid", "10", "12", "14"], p, 1)
        g = [int(x) for x in A.find(argv, "--grid", 3)]
        assert g[0] * g[1] * g[2] == 10 * 12 * 14 * p
    assert A.find(apps.args_for("halo", "weak", ["--grid", "8", "8", "8"], 8, 1), "--grid", 3) \
        == ["16", "16", "16"]
    assert apps.args_for("halo", "strong", ["--grid", "8", "8", "8"], 8, 1) == \
        ["--grid", "8", "8", "8"]


@pytest.mark.parametrize("app,argv,p,key,want", [
    ("cg", ["--problem", "poisson3d:20"], 8, "--problem", "poisson3d:40"),
    ("cg", ["--problem", "poisson2d:100"], 4, "--problem", "poisson2d:200"),
    ("cg", ["--problem", "hpcg:16"], 27, "--problem", "hpcg:48"),
    ("spgemm", ["--generate", "rmat:10:8"], 4, "--generate", "rmat:12:8"),
    ("spgemm", ["--generate", "poisson3d:10"], 8, "--generate", "poisson3d:20"),
    ("pagerank", ["--generate", "kron:12:16"], 8, "--generate", "kron:15:16"),
    ("kmedoids", ["--data", "blobs:1000:8:5", "--k", "5"], 4, "--data", "blobs:2000:8:5"),
    ("kmedoids", ["--data", "uniform:100:3"], 9, "--data", "uniform:300:3"),
    ("train", ["--global-batch", "8"], 4, "--global-batch", "32"),
    ("stream", ["--arraysize", "1000"], 4, "--arraysize", "1000"),
])
def test_weak_rules(app, argv, p, key, want):
    assert A.find(apps.args_for(app, "weak", argv, p, 1), key) == [want]


def test_strong_stream_divides_per_rank_size():
    assert A.find(apps.args_for("stream", "strong", ["--arraysize", "1200"], 4, 1),
                  "--arraysize") == ["300"]
    assert A.find(apps.args_for("stream", "strong", ["-s", "1200"], 3, 1), "--arraysize") == ["400"]
    with pytest.raises(apps.StudyError, match="divisible"):
        apps.args_for("stream", "strong", ["--arraysize", "1000"], 3, 1)


def test_train_layout_sets_dp():
    argv = apps.args_for("train", "strong", ["--tp", "2", "--global-batch", "8"], 8, 2)
    assert A.find(argv, "--dp") == ["4"]
    with pytest.raises(apps.StudyError, match="tp x pp"):
        apps.args_for("train", "strong", ["--tp", "2"], 3, 1)


@pytest.mark.parametrize("app,argv,msg", [
    ("cg", ["--matrix", "a.mtx"], "cannot grow"),
    ("pagerank", ["--graph", "g.txt"], "kron"),
    ("pagerank", ["--generate", "kron:10:8"], "powers of 2"),
    ("spgemm", ["--a", "a.mtx"], "rmat"),
    ("kmedoids", ["--data", "x.npy"], "generated"),
    ("halo", ["--radius", "1"], "--grid"),
    ("train", ["--layers", "2"], "--global-batch"),
])
def test_weak_rules_refuse_what_cannot_grow(app, argv, msg):
    p = 3 if "powers" in msg else 2
    with pytest.raises(apps.StudyError, match=msg):
        apps.args_for(app, "weak", argv, p, 1)
    with pytest.raises(apps.StudyError, match="multiple"):
        apps.args_for(app, "weak", argv, 3, 2)


def test_run_time_sources():
    rec = {"metrics": {"exchange_us": 250.0}, "timings": {"exchange": {"min": 1.0}}}
    assert apps.run_time("halo", rec) == (pytest.approx(250e-6), "metrics.exchange_us*1e-6")
    rec = {"timings": {"build": {"min": 1.5}, "swap": {"min": 2.0}}}
    assert apps.run_time("kmedoids", rec) == (3.5, "timings.build+timings.swap")
    rec = {"metrics": {"time_s": 4.0}, "timings": {"x": {"min": 1.0}}}
    assert apps.run_time("train", rec) == (4.0, "metrics.time_s")
    rec = {"timings": {"a": {"min": 1.0}, "b": {"min": 2.0}}}
    assert apps.run_time("cg", rec) == (3.0, "timings.*(sum)")
    assert apps.run_time("cg", {}) == (None, "none")


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_configs_are_valid(path):
    cfg = tomllib.loads(path.read_text())
    assert cfg["app"] in names() and cfg["mode"] in ("strong", "weak")
    assert cfg["ranks"] == sorted(cfg["ranks"]) and all(isinstance(a, str) for a in cfg["args"])
    p0 = min(cfg["ranks"])
    for p in cfg["ranks"]:
        apps.args_for(cfg["app"], cfg["mode"], cfg["args"], p, p0)


def test_every_app_has_a_study_of_each_mode():
    have = {(tomllib.loads(p.read_text())["app"], tomllib.loads(p.read_text())["mode"])
            for p in STUDIES}
    for app in names():
        assert (app, "strong") in have and (app, "weak") in have, app


def test_missing_app_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(apps.StudyError, match="hpc.cg is not in this build"):
        runner.require_app("cg")


# -- the runner end to end on hpc.stream -------------------------------------------------------
@pytest.fixture(scope="module")
def weak_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream_weak")
    p = scaling("run", "--app", "stream", "--mode", "weak", "--ranks", "1,2,3", "--repeat", "2",
                "--out", out, "--", "--arraysize", "20000", "--numtimes", "5",
                "--backend", "numpy")
    return out, p


def test_run_writes_csv_and_json(weak_study):
    out, p = weak_study
    assert p.returncode == 0, p.stdout + p.stderr
    progress = [ln for ln in p.stdout.splitlines() if ln.startswith("[scaling ")]
    assert len(progress) == 6 and all("VALID" in ln for ln in progress)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [int(r["ranks"]) for r in rows] == [1, 1, 2, 2, 3, 3]
    assert [int(r["rep"]) for r in rows] == [1, 2] * 3
    for r in rows:
        assert r["app"] == "stream" and r["mode"] == "weak" and r["passed"] == "True"
        assert r["time_source"] == "timings.triad"
        assert float(r["time_s"]) == pytest.approx(float(r["t_triad"]))
        assert float(r["m_triad_GBps"]) > 0
        assert r["app_args"] == "--arraysize 20000 --numtimes 5 --backend numpy"
        assert r["oversubscribed"] == str(int(r["ranks"]) > int(r["cores"]))
    doc = json.loads((out / "results.json").read_text())
    assert doc["study"]["ranks"] == [1, 2, 3] and len(doc["runs"]) == 6
    for run in doc["runs"]:
        rec = run["record"]
        assert rec["ranks"] == run["ranks"] and rec["validation"]["passed"] is True
        assert rec["params"]["arraysize"] == 20000  # weak: per rank, unchanged
        assert (out / run["log"]).exists()


def test_plot_writes_pngs(weak_study):
    out, _ = weak_study
    p = scaling("plot", out)
    assert p.returncode == 0, p.stderr
    for name in ("time", "speedup", "efficiency", "scaling"):
        f = out / f"{name}.png"
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000


def test_model_prints_measured_and_modelled(weak_study):
    out, _ = weak_study
    p = scaling("model", out)
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert "MEASURED" in text and "MODELLED" in text and "b1_Bps" in text
    assert "\n   10000 " in text  # extrapolated to 10^4 ranks
    if launch.cores() < 3:
        assert "exceed them (oversubscribed)" in text and "not fitted" in text
    rep = json.loads((out / "model.json").read_text())
    assert rep["modelled"][-1]["ranks"] == 10000
    assert (out / "model.png").read_bytes()[:4] == b"\x89PNG"


def test_strong_study_from_config(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('app = "stream"\nmode = "strong"\nranks = [1, 2]\n'
                   'args = ["--arraysize", "40000", "--numtimes", "4", "--backend", "numpy"]\n')
    p = scaling("run", "--config", cfg, "--out", tmp_path / "o")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    sizes = {r["ranks"]: r["record"]["params"]["arraysize"] for r in doc["runs"]}
    assert sizes == {1: 40000, 2: 20000}  # strong: the global arrays stay 40000 long
    assert scaling("plot", tmp_path / "o").returncode == 0


def test_app_usage_error_stops_the_study(tmp_path):
    p = scaling("run", "--app", "stream", "--ranks", "1,2", "--out", tmp_path,
                "--", "--arraysize", "100", "--numtimes", "1", "--backend", "numpy")
    assert p.returncode == 2
    assert "rejected its options at 1 ranks" in p.stdout and "--numtimes" in p.stdout
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 1


@pytest.mark.parametrize("args,msg", [
    (["run", "--app", "nope", "--out", "x"], "invalid choice"),
    (["run", "--app", "stream", "--ranks", "1,0", "--out", "x"], "positive"),
    (["run", "--app", "stream", "--ranks", "a", "--out", "x"], "rank counts"),
    (["run", "--app", "halo", "--mode", "weak", "--out", "x", "--", "--radius", "1"], "--grid"),
    (["plot", "/nonexistent/dir"], "no such results file"),
    (["model", "/nonexistent/dir"], "no such results file"),
    (["model", ".", "--set", "bad"], "NAME=VALUE"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_cli_errors_are_one_line_exit_2(args, msg, monkeypatch):
    p = scaling(*args)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], p.stderr


def test_bad_config(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('app = "stream"\nbogus = 1\n')
    p = scaling("run", "--config", cfg, "--out", tmp_path / "o")
    assert p.returncode == 2 and "unknown key(s) bogus" in p.stderr


def test_yield_env_only_when_ranks_exceed_cores(tmp_path, monkeypatch):
    for k in launch.YIELD_ENV:
        monkeypatch.delenv(k, raising=False)
    seen = {}

    def fake_run(cmd, capture_output, text, env, timeout):
        p = int(cmd[cmd.index("-n") + 1])
        seen[p] = env
        rec = cmd[cmd.index("--json") + 1]
        Path(rec).write_text(json.dumps({"ranks": p, "validation": {"passed": True},
                                         "timings": {"triad": {"min": 0.5 / p}}}))
        return subprocess.CompletedProcess(cmd, 0, "ok\n", "")

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    monkeypatch.setattr(runner, "cores", lambda: 2)
    st = runner.Study(app="stream", mode="weak", ranks=[1, 2, 4], out=tmp_path, threads=1,
                      app_args=["--arraysize", "10"])
    lines = []
    assert runner.run_study(st, say=lines.append) == 0
    assert len(lines) == 3 and "oversubscribed" in lines[2] and "oversubscribed" not in lines[1]
    for k, v in launch.YIELD_ENV.items():
        assert seen[4][k] == v
        assert k not in seen[1] and k not in seen[2]
    assert all(seen[p]["OMP_NUM_THREADS"] == "1" for p in seen)


def test_collect_rebuilds_results_from_records(weak_study, tmp_path):
    out, _ = weak_study
    import shutil

    shutil.copytree(out / "records", tmp_path / "records")
    (tmp_path / "records" / "p3-r2.json").unlink()  # a run that never reported
    p = scaling("collect", "--app", "stream", "--mode", "weak", "--ranks", "1,2,3", "--repeat",
                "2", "--out", tmp_path, "--", "--arraysize", "20000", "--numtimes", "5",
                "--backend", "numpy")
    assert p.returncode == 1 and "5/6 runs validated" in p.stdout
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [(r["ranks"], r["passed"]) for r in rows][-2:] == [("3", "True"), ("3", "False")]
    assert scaling("plot", tmp_path).returncode == 0


def test_progress_env_modes(monkeypatch):
    """The runner's launches and the benchmarks share hpc.core.launch's progress settings."""
    assert runner.YIELD_ENV is launch.YIELD_ENV and runner.find_mpiexec is launch.find_mpiexec
    monkeypatch.setenv("MPIR_CVAR_POLLS_BEFORE_YIELD", "7")   # a user's setting: replaced
    monkeypatch.setattr(launch, "cores", lambda: 2)
    keys = set(launch.YIELD_ENV)
    busy = launch.progress_env("busy", 2, {"OMP_NUM_THREADS": "1"})
    assert keys.isdisjoint(busy) and busy["OMP_NUM_THREADS"] == "1"
    assert launch.progress_env("throttle", 1).items() >= launch.YIELD_ENV.items()
    assert keys.isdisjoint(launch.progress_env("auto", 2))
    assert launch.progress_env("auto", 3).items() >= launch.YIELD_ENV.items()
