"""CUDA packers of hpc.halo (native/cuda/pack.cu) against the CPU reference; skip without a GPU."""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc.halo import packers
from hpc.halo.canonical import canonicalize


def _cuda_pack():
    from hpc.halo import gpu

    why = gpu.why_unavailable("gpu-staged")
    if why:
        pytest.skip(f"GPU path unavailable: {why}")
    from hpc._cuda import pack

    return pack


def test_cuda_module_is_built_where_nvcc_exists():
    import shutil

    if not shutil.which("nvcc"):
        pytest.skip("no nvcc here")
    try:
        from hpc import _cuda
    except ImportError as exc:
        pytest.skip(f"hpc._cuda not built: {exc}")
    assert hasattr(_cuda, "pack") and hasattr(_cuda.pack, "PinnedBuffer")


@pytest.mark.parametrize("sub, start, q", [
    ([2, 3, 4], [1, 1, 1], 1), ([5, 1, 6], [0, 2, 0], 3), ([1, 7, 1], [3, 0, 5], 2),
])
def test_device_and_pinned_pack_match_cpu(sub, start, q):
    cp = _cuda_pack()
    shape = [6, 7, 8, q]
    a = np.random.default_rng(1).random(shape)
    t = MPI.DOUBLE.Create_subarray(shape, sub + [q], start + [0]).Commit()
    block = canonicalize(t)
    t.Free()
    want = np.empty(block.size, np.uint8)
    packers.get("numpy")[0](a, block, want)
    dev = cp.DeviceBuffer(a.nbytes)
    dev.upload(a.reshape(-1).view(np.uint8))
    args = (block.start, list(block.counts), list(block.strides))
    # device path
    d = cp.DeviceBuffer(block.size)
    cp.pack(dev.ptr, a.nbytes, d.ptr, block.size, *args)
    got = np.empty(block.size, np.uint8)
    cp.copy_to_host(got, d.ptr, block.size)
    assert np.array_equal(got, want)
    # one-shot path: straight into mapped pinned host memory
    pin = cp.PinnedBuffer(block.size)
    cp.pack(dev.ptr, a.nbytes, pin.device_ptr, block.size, *args)
    assert np.array_equal(pin.array, want)
    # unpack inverts pack, and writes nothing else
    z = cp.DeviceBuffer(a.nbytes)
    z.upload(np.zeros(a.nbytes, np.uint8))
    cp.unpack(pin.device_ptr, block.size, z.ptr, a.nbytes, *args)
    back = np.empty_like(a)
    z.download(back.reshape(-1).view(np.uint8))
    ref = np.zeros_like(a)
    packers.get("numpy")[1](want, block, ref)
    assert np.array_equal(back, ref)


def test_cuda_pack_refuses_out_of_range():
    cp = _cuda_pack()
    d = cp.DeviceBuffer(64)
    with pytest.raises(ValueError):
        cp.pack(d.ptr, 64, d.ptr, 64, 0, [8, 9], [1, 8])


@pytest.mark.parametrize("radius, q", [(1, 1), (2, 3)])
def test_fused_plan_packs_all_26_faces_in_one_launch_like_the_cpu_plan(radius, q):
    cp = _cuda_pack()
    from hpc.core.decomp import decompose
    from hpc.halo.engine import HaloExchange

    dec = decompose(MPI.COMM_SELF, (9, 7, 8))
    with HaloExchange(dec.cart, dec.local_shape, radius, quantities=q) as h:
        a = np.random.default_rng(radius).random(h.shape)
        blocks = [f.send_block for f in h.faces]
        cpu = packers.Plan("numpy", blocks, a.nbytes)
        want = np.empty(cpu.total, np.uint8)
        cpu.pack_all(a, want)
        plan = cp.DevicePlan([(b.start, list(b.counts), list(b.strides)) for b in blocks],
                             a.nbytes)
        assert plan.total == cpu.total and list(plan.offsets) == cpu.offsets
        dev = cp.DeviceBuffer(a.nbytes)
        dev.upload(a.reshape(-1).view(np.uint8))
        d = cp.DeviceBuffer(plan.total)
        assert plan.pack_all(dev.ptr, a.nbytes, d.ptr, plan.total) == plan.total
        got = np.empty(plan.total, np.uint8)
        cp.copy_to_host(got, d.ptr, plan.total)
        assert np.array_equal(got, want)
        # unpack of the receive blocks: the ghosts, and nothing else, written
        rblocks = [f.recv_block for f in h.faces]
        rplan = cp.DevicePlan([(b.start, list(b.counts), list(b.strides)) for b in rblocks],
                              a.nbytes)
        z = cp.DeviceBuffer(a.nbytes)
        z.upload(np.zeros(a.nbytes, np.uint8))
        rplan.unpack_all(d.ptr, plan.total, z.ptr, a.nbytes)
        back = np.zeros_like(a)
        z.download(back.reshape(-1).view(np.uint8))
        ref = np.zeros_like(a)
        packers.Plan("numpy", rblocks, a.nbytes).unpack_all(want, ref)
        assert np.array_equal(back, ref)
        with pytest.raises(ValueError, match="packed buffer holds"):
            plan.pack_all(dev.ptr, a.nbytes, d.ptr, plan.total - 1)
    dec.free()


def test_gpu_auto_is_refused_cleanly_without_a_device_or_picks_a_measured_path(tmp_path):
    from conftest import load_json, run_app
    from hpc.halo import gpu

    out = tmp_path / "r.json"
    r = run_app("halo", 1, "--grid", "8", "8", "8", "--method", "gpu-auto", "--iterations", "2",
                "--repeat", "1", "--json", str(out), "--quiet")
    why = gpu.why_unavailable("gpu-auto")
    if why:
        errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 2 and len(errs) == 1 and "not available" in errs[0]
        return
    assert r.returncode == 0, r.stderr[-2000:]
    s = load_json(out)["strategy"]
    assert s["gpu_method"] in gpu.MODES and s["gpu_method"] in s["gpu_auto_us"]
    assert min(s["gpu_auto_us"], key=s["gpu_auto_us"].get) == s["gpu_method"]
