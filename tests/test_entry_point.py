"""The `hpc` command (the console script the editable install puts in the venv) and
`python -m hpc`: the listing, --help, --version, the verbs, and unknown verbs (exit 2)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import hpc

ROOT = Path(__file__).resolve().parents[1]
HPC = Path(sys.executable).parent / "hpc"


def _run(*args: str, script: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(HPC)] if script else [sys.executable, "-m", "hpc"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd="/")


def test_console_script_declared_and_installed():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["hpc"] == "hpc.__main__:main"
    assert HPC.exists(), f"{HPC} missing: run `make build` (pip install -e . in the venv)"
    r = _run("--version", script=True)
    assert r.returncode == 0 and r.stdout.strip() == f"hpc {hpc.__version__}"


def test_installed_package_is_this_checkout():
    """The editable install imports the source tree, from any working directory."""
    r = subprocess.run([sys.executable, "-c", "import hpc; print(hpc.__file__)"],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0 and Path(r.stdout.strip()) == ROOT / "hpc" / "__init__.py"


@pytest.mark.parametrize("script", [False, True], ids=["python-m-hpc", "hpc"])
def test_help_lists_workloads_and_verbs(script):
    r = _run("--help", script=script)
    assert r.returncode == 0, r.stderr
    for name, what in hpc.WORKLOADS.items():
        assert f"{name}" in r.stdout and what in r.stdout
    for verb in ("list", "suite", "scaling", "jobs", "report", "compare"):
        assert f"\n  {verb} " in r.stdout


def test_plain_command_is_the_listing():
    r = _run()
    assert r.returncode == 0, r.stderr
    assert "Workloads (mpiexec -n N python -m hpc.<app>):" in r.stdout
    assert "Back ends on this machine:" in r.stdout and "numpy" in r.stdout
    assert _run("list").stdout == r.stdout


@pytest.mark.parametrize("argv, named", [(["reprot", "x"], "reprot"), (["frobnicate"], "frobnicate"),
                                         (["--frobnicate"], "--frobnicate"),
                                         (["list", "extra"], "extra")])
@pytest.mark.parametrize("script", [False, True], ids=["python-m-hpc", "hpc"])
def test_unknown_verb_or_option_exits_2_with_one_error_line(argv, named, script):
    r = _run(*argv, script=script)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hpc:"), r.stderr
    assert named in lines[0]


def test_verbs_forward_to_the_tools():
    direct = subprocess.run([sys.executable, "-m", "hpc.suite", "--list"], capture_output=True,
                            text=True, timeout=120)
    r = _run("suite", "--list")
    assert r.returncode == direct.returncode == 0
    assert r.stdout == direct.stdout and "stream" in r.stdout
    bad = _run("suite", "--frobnicate")
    assert bad.returncode == 2 and "error:" in bad.stderr
