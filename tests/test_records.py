"""The result record: provenance, the JSON Schema, --threads capping the BLAS pools, --version,
-v, --help's defaults, and progress lines at the promised rate (fake clock and a real run).

Every app's record is validated against the schema by tests/test_suite.py (the suite's record
holds one record per workload); here a record is checked field by field at 3 ranks.
"""
from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from datetime import datetime

import pytest

from conftest import ROOT, load_json, run_app

jsonschema = pytest.importorskip("jsonschema")


def _utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def stream_record(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "stream.json"
    # a pool of 2 BLAS threads in the environment, --threads 1 on the command line
    env = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NODELIST": "node[01-02]", "SLURM_NTASKS": "3", "HPC_TEST_MARK": "x y",
           "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "true"}
    r = run_app("stream", 3, "--arraysize", "20000", "--numtimes", "3", "--threads", "1",
                "--json", out, "--quiet", env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return load_json(out)


def test_record_matches_schema(stream_record):
    from hpc.core.provenance import SCHEMA_VERSION, schema, validate_record

    jsonschema.Draft202012Validator.check_schema(schema())
    validate_record(stream_record)
    assert stream_record["schema_version"] == SCHEMA_VERSION
    broken = json.loads(json.dumps(stream_record))
    del broken["provenance"]["hosts"][0]["ranks"]
    with pytest.raises(jsonschema.ValidationError):
        validate_record(broken)
    broken = json.loads(json.dumps(stream_record))
    broken["provenance"]["started_utc"] = "yesterday"
    with pytest.raises(jsonschema.ValidationError):
        validate_record(broken)


def test_record_provenance(stream_record):
    import mpi4py.MPI as MPI

    prov = stream_record["provenance"]
    assert _utc(prov["started_utc"]) <= _utc(prov["finished_utc"])
    assert "-m hpc.stream" in prov["command"] and "--arraysize 20000" in prov["command"]
    (host,) = prov["hosts"]
    assert host["ranks"] == [0, 1, 2] and host["name"] == MPI.Get_processor_name()
    assert host["cpu_model"] and host["threads"] >= 1 and host["memory_bytes"] > 2**20
    pkg = prov["package"]
    assert pkg["version"] == stream_record["version"]
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0:
        assert pkg["git"]["commit"] == git.stdout.strip()
        assert isinstance(pkg["git"]["dirty"], bool)
    build = prov["build"]
    try:
        from hpc import _core
    except ImportError:
        assert build is None
    else:
        if hasattr(_core, "build_info"):
            info = _core.build_info()
            assert build["compiler"] == info["compiler"] and build["cxx_flags"] == info["cxx_flags"]
            assert "-O" in build["cxx_flags"] and build["backends"]["native"] is True
    assert prov["slurm"]["job_id"] == "4242" and prov["slurm"]["job_nodelist"] == "node[01-02]"
    env = prov["environment"]
    assert env["HPC_TEST_MARK"] == "x y" and env["MPIR_CVAR_CH4_PROGRESS_THROTTLE"] == "true"
    assert env["OMP_NUM_THREADS"] == "1"  # what the run used: --threads 1
    assert all(not k.startswith("SLURM_") for k in env)


def test_threads_caps_blas_and_openmp_pools(stream_record):
    pools = stream_record["provenance"]["thread_pools"]
    assert pools, "threadpoolctl found no pool"
    assert any(p["user_api"] == "blas" for p in pools)
    assert all(p["num_threads"] == 1 for p in pools), pools


def test_set_threads_in_process():
    code = ("import numpy, scipy.linalg\n"
            "from threadpoolctl import threadpool_info\n"
            "from hpc.core import backends\n"
            "backends.set_threads(1)\n"
            "print(sorted({p['num_threads'] for p in threadpool_info()}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2",
                            "OMP_NUM_THREADS": "2"}, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[1]", r.stdout + r.stderr


def test_version_and_help_defaults_once():
    from hpc import __version__

    r = run_app("stream", 1, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"python -m hpc.stream (hpc {__version__})"
    r = run_app("stream", 3, "--version")
    assert r.stdout.count("hpc ") == 1  # rank 0 only
    r = run_app("stream", 3, "--arraysize", "1000", "-v")
    assert r.returncode == 0 and "[hpc.app r0] INFO stream on 3 rank(s)" in r.stderr, r.stderr
    assert "r1]" not in r.stderr and "DEBUG" not in r.stderr  # -v: rank 0, INFO
    r = subprocess.run([sys.executable, "-m", "hpc", "--version"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.stdout.strip() == f"hpc {__version__}"
    h = run_app("stream", 1, "--help").stdout
    assert "(default: None)" not in h and h.count("default") >= 3
    threads = h[h.index("\n  --threads"):h.index("\n  --quiet")]
    assert threads.count("default") == 1, threads
    assert "(default: 0)" in h[h.index("\n  --seed"):h.index("\n  --repeat")]


def test_verbosity_levels():
    from hpc.core.cli import configure_logging

    log = logging.getLogger("hpc")
    try:
        for verbose, quiet, level in ((0, False, logging.WARNING), (1, False, logging.INFO),
                                      (2, False, logging.DEBUG), (5, False, logging.DEBUG),
                                      (2, True, logging.ERROR)):
            configure_logging(verbose, quiet)
            assert log.level == level
            assert sum(getattr(h, "_hpc", False) for h in log.handlers) == 1
    finally:
        configure_logging(0, False)


# -- progress ----------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _line_times(stream: io.StringIO) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"elapsed ([0-9.]+)s", stream.getvalue())]


def test_progress_rate_with_a_fake_clock():
    from hpc.core.progress import MAX_INTERVAL, MIN_INTERVAL, Progress

    clock, out = FakeClock(), io.StringIO()
    # 2000 fast updates (10 ms), then 8 slow ones (45 s apart): at most one line a second
    # while fast, and never more than 30 s without a line while updated
    stamps = []
    with Progress(2010, "fake", stream=out, clock=clock, mode="plain", unit="step") as p:
        for k in range(2010):
            clock.t += 0.01 if k < 2000 else 45.0
            before = p.lines
            p.update(residual=1.0 / (k + 1))
            if p.lines > before:
                stamps.append(clock.t)
    lines = out.getvalue().splitlines()
    assert len(lines) == p.lines >= 20
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= MIN_INTERVAL - 1e-9
    # while updates come every 10 ms: a line at least every MAX_INTERVAL (here: each 1 %)
    assert max(g for a, g in zip(stamps, gaps) if a < 100 + 19.0) <= MAX_INTERVAL
    # every slow update (45 s apart) prints: more than 30 s have passed
    assert sum(1 for a in stamps if a > 100 + 21.0) == 10
    assert lines[0].startswith("[fake]") and "% (" in lines[0] and "remaining ~" in lines[0]
    assert "residual=" in lines[0] and lines[-1].startswith("[fake] 100.0% (2010/2010 step)")


def test_progress_at_least_every_30s_when_progress_is_slow():
    from hpc.core.progress import MAX_INTERVAL, Progress

    clock, out = FakeClock(), io.StringIO()
    # a million-step loop: 0.1 % of the work takes 20 s, so the 1 % rule alone would wait
    # 200 s; the 30 s rule prints anyway
    stamps = []
    with Progress(10**6, "slow", stream=out, clock=clock, mode="plain") as p:
        for _ in range(300):
            clock.t += 2.0
            before = p.lines
            p.update(10)
            if p.lines > before:
                stamps.append(clock.t)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert stamps[0] - 100 <= MAX_INTERVAL and max(gaps) <= MAX_INTERVAL and min(gaps) >= 1.0


def test_progress_quiet_other_ranks_short_runs_and_unknown_total():
    from hpc.core.progress import Progress

    class Rank1:
        def Get_rank(self) -> int:
            return 1

    for kw in ({"quiet": True}, {"comm": Rank1()}, {"mode": "off"}):
        clock, out = FakeClock(), io.StringIO()
        with Progress(100, "x", stream=out, clock=clock, **{"mode": "plain", **kw}) as p:
            for _ in range(100):
                clock.t += 1.0
                p.update()
        assert out.getvalue() == "" and p.lines == 0
    clock, out = FakeClock(), io.StringIO()
    with Progress(100, "short", stream=out, clock=clock, mode="plain") as p:
        for _ in range(100):
            clock.t += 0.005  # done in half a second: nothing printed
            p.update()
    assert out.getvalue() == ""
    clock, out = FakeClock(), io.StringIO()
    with Progress(None, "open", stream=out, clock=clock, mode="plain", unit="B") as p:
        for _ in range(5):
            clock.t += 1.5
            p.update(1000)
    assert p.lines == 5 and "5000 B" in out.getvalue() and "remaining" not in out.getvalue()
    with pytest.raises(ValueError):
        Progress(-1, "bad")


def test_progress_lines_in_a_real_run():
    """SpGEMM's timed products report through Progress: a run of a few seconds prints lines
    on stderr (rank 0 only), at most one a second, and --quiet prints none."""
    args = ("--generate", "rmat:12:8", "--repeat", "40")
    env = {"HPC_PROGRESS": "plain"}
    r = run_app("spgemm", 3, *args, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[spgemm]")]
    times = [float(re.search(r"elapsed ([0-9.]+)s", ln).group(1)) for ln in lines]
    if not times:
        pytest.skip("the 40 products took under a second here: nothing to rate")
    # at least a second apart (the times are printed to 0.1 s)
    assert all(b - a >= 0.9 for a, b in zip(times, times[1:])), lines
    assert all("remaining ~" in ln and "multiply_s=" in ln for ln in lines)
    assert all(re.match(r"\[spgemm\] +[0-9.]+% \([0-9]+/40 product\)", ln) for ln in lines)
    q = run_app("spgemm", 3, *args, "--quiet", env=env, timeout=600)
    assert q.returncode == 0 and "[spgemm]" not in q.stderr + q.stdout


def test_build_watch_reports_a_silent_build(tmp_path):
    """tools/build_watch.py (the PETSc build in tools/run_tests.sh): lines while it runs with
    the stage and files compiled, the log kept, the command's exit status passed on."""
    script = ('echo configure; sleep 1.3; for i in 1 2 3; do echo "  CC src/f$i.c"; sleep 0.6; done; '
              'echo "  CLINKER libpetsc.so"; sleep 2.5; echo done')
    log = tmp_path / "b.log"
    r = subprocess.run([sys.executable, "tools/build_watch.py", "--log", log, "--every", "1",
                        "--label", "PETSc build", "--", "bash", "-c", script],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[PETSc build]")]
    assert len(lines) >= 3 and "stage=configure" in lines[0]
    assert any("stage=compiling" in ln for ln in lines) and "stage=linking" in lines[-1]
    assert re.search(r"\] 3 files compiled", lines[-1]) and log.read_text().endswith("done\n")
    bad = subprocess.run([sys.executable, "tools/build_watch.py", "--log", log, "--", "bash",
                          "-c", "echo broken; exit 3"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert bad.returncode == 3 and "failed (exit 3)" in bad.stdout and "broken" in bad.stdout


def test_progress_bar_on_a_terminal_style():
    """mode='bar' (what a terminal gets): a tqdm bar with the phase, count and fields."""
    pytest.importorskip("tqdm")
    import time as _time

    from hpc.core.progress import Progress

    out = io.StringIO()
    with Progress(5, "bar-phase", stream=out, mode="bar", unit="tile") as p:
        for k in range(5):
            _time.sleep(0.3)  # past tqdm's one-second delay
            p.update(gain=0.5 * k)
    text = out.getvalue()
    assert "bar-phase" in text and "5/5" in text and "tile" in text and "gain=" in text


def test_study_runner_heartbeat():
    """A long study run says it is still going (here every 0.2 s instead of 30 s)."""
    import time as _time

    from hpc.scaling.runner import heartbeat

    lines: list[str] = []
    with heartbeat(lines.append, "[scaling 1/2] cg strong ranks=4 rep=1", interval=0.2):
        _time.sleep(0.75)
    assert 2 <= len(lines) <= 4
    assert all(ln.startswith("[scaling 1/2] cg strong ranks=4 rep=1: still running") for ln in lines)
    n = len(lines)
    _time.sleep(0.4)
    assert len(lines) == n  # stopped with the block


def test_thread_pools_are_json_after_scipy_reads_matrix_market(tmp_path):
    """SciPy's fast_matrix_market registers a threadpoolctl controller whose version is a
    function: the record's thread pools must still be plain JSON (it once made every record
    written after scipy.io.mmread in the same process fail)."""
    import json

    import scipy.io
    import scipy.sparse as sp

    from hpc.core.provenance import thread_pools

    f = tmp_path / "a.mtx"
    scipy.io.mmwrite(str(f), sp.eye(3, format="coo"))
    scipy.io.mmread(str(f))
    pools = thread_pools()
    json.dumps(pools)
    assert all(not callable(v) for p in pools for v in p.values())
