"""hpc::StreamRows (native/include/hpc/stream_rows.hpp) built on its own and run: the
portable SSE2 stores, and the AVX-512 ones where this CPU has them (the extension is built
for this CPU, so tests/test_spgemm_onepass.py covers only the latter through the kernel)."""
from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CXX = shutil.which("c++") or shutil.which("g++")


def _avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the stores under test are x86-64's")
@pytest.mark.parametrize("arch", ["-march=x86-64", "-march=native"])
def test_streamed_runs_write_every_entry_and_nothing_else(arch, tmp_path):
    if arch == "-march=native" and not _avx512():
        pytest.skip("no AVX-512 here: the portable build above is the one that runs")
    exe = tmp_path / "stream_rows_check"
    subprocess.run([CXX, "-std=c++17", "-O2", arch, "-Wall", "-Wextra", "-Werror",
                    f"-I{ROOT / 'native' / 'include'}",
                    str(ROOT / "tests" / "native" / "stream_rows_check.cpp"), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "errors 0", out.stdout + out.stderr
