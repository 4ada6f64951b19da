"""The shared runtime: partitions, timers, error and abort paths, atomic output, back ends."""
from __future__ import annotations

import json
import shutil
import time

import h5py
import numpy as np
import pytest

from conftest import mpirun
from hpc.core import partition
from hpc.core import backends


@pytest.mark.parametrize("n,p", [(0, 1), (1, 4), (3, 4), (10, 3), (17, 4), (1000, 7)])
def test_block_partition_covers_exactly(n, p):
    off = partition.block_offsets(n, p)
    assert off[0] == 0 and off[-1] == n
    counts = partition.block_counts(n, p)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    for r in range(p):
        assert partition.block_range(n, p, r) == (off[r], off[r + 1])
    if n:
        idx = np.arange(n)
        owners = partition.block_owner(idx, n, p)
        for r in range(p):
            assert np.all(idx[owners == r] == np.arange(off[r], off[r + 1]))


def test_grid_2d():
    assert partition.grid_2d(4) == (2, 2)
    assert partition.grid_2d(6) == (2, 3)
    assert partition.grid_2d(7) == (1, 7)


def test_unknown_and_missing_backend_errors():
    with pytest.raises(Exception, match="unknown back end"):
        backends.require("nonsense")
    with pytest.raises(Exception, match="supports"):
        backends.require("numba", allowed=["numpy"])
    assert backends.is_available("numpy")


SCRIPT_RAISE = """
from hpc.core import run, world
def main(argv):
    c = world()
    if c.Get_rank() == {bad}:
        raise RuntimeError("deliberate failure")
    c.Barrier()   # the other ranks would wait here forever without the abort
    return 0
run(main)
"""

SCRIPT_LOCAL_USAGE = """
from hpc.core import run, world, UsageError, collective
def main(argv):
    c = world()
    with collective(c):
        if c.Get_rank() == c.Get_size() - 1:
            raise UsageError("data.txt line 7: malformed")
    return 0
run(main)
"""


@pytest.mark.parametrize("n", [2, 3])
def test_exception_on_one_rank_aborts_job_quickly(tmp_path, n):
    script = tmp_path / "boom.py"
    script.write_text(SCRIPT_RAISE.format(bad=n - 1))
    t0 = time.monotonic()
    r = mpirun(n, script, timeout=60)
    assert r.returncode != 0
    assert time.monotonic() - t0 < 30
    assert "deliberate failure" in r.stderr


@pytest.mark.parametrize("n", [1, 3, 4])
def test_local_usage_error_is_agreed_and_exits_2_with_one_line(tmp_path, n):
    script = tmp_path / "usage.py"
    script.write_text(SCRIPT_LOCAL_USAGE)
    r = mpirun(n, script, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines == ["error: data.txt line 7: malformed"]
    assert "Traceback" not in r.stdout + r.stderr


def test_atomic_json_leaves_no_partial_file(tmp_path):
    from hpc.core.atomic import write_json

    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert not target.exists()
    assert not list(tmp_path.iterdir())
    write_json(target, {"x": np.float64(1.5), "a": np.arange(3)})
    assert json.loads(target.read_text()) == {"x": 1.5, "a": [0, 1, 2]}


H5_SCRIPT = """
import numpy as np
from hpc.core import run, world
from hpc.core import h5io, partition
def main(argv):
    c = world()
    n = 1003
    lo, hi = partition.block_range(n, c.Get_size(), c.Get_rank())
    h5io.CHUNK_BYTES = 800   # force many chunks
    h5io.write(argv[0] if argv else __import__('sys').argv[1], c,
               {"/v": h5io.Distributed(np.arange(lo, hi, dtype=np.int64)),
                "/g/m": h5io.Distributed(np.arange(lo, hi, dtype=np.float64)[:, None] * [1.0, 2.0]),
                "/meta": np.array([1, 2, 3])},
               attrs={"/g": {"shape": (7, 9)}})
    return 0
run(main)
"""


@pytest.mark.parametrize("n", [1, 3])
def test_hdf5_gathered_write(tmp_path, n):
    script = tmp_path / "h5.py"
    script.write_text(H5_SCRIPT)
    out = tmp_path / "r.h5"
    r = mpirun(n, script, out, timeout=60)
    assert r.returncode == 0, r.stderr
    with h5py.File(out) as f:
        assert np.array_equal(f["/v"][:], np.arange(1003))
        assert np.array_equal(f["/g/m"][:, 1], 2.0 * np.arange(1003))
        assert list(f["/g"].attrs["shape"]) == [7, 9]
        assert list(f["/meta"][:]) == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h5.py", "r.h5"]


def test_hpc_lists_workloads_and_backends():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "hpc"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert "stream" in r.stdout and "numpy" in r.stdout and "Back ends" in r.stdout


def test_cuda_extension_compiled_when_nvcc_present():
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not installed: the CUDA extension is not built")
    import importlib.util

    assert importlib.util.find_spec("hpc._cuda") is not None, "nvcc exists but hpc._cuda was not built"
