"""The GPU paths of the halo exchange: the field lives on a CUDA device and is packed there.

Three ways to get a face from one device to another (TEMPI's), each with pack and unpack:

- ``gpu-oneshot``: the kernel packs straight into mapped pinned host memory (one pass over
  PCIe/NVLink, no separate copy); MPI sends the host buffer; the receiver's kernel unpacks
  straight from its mapped pinned buffer.
- ``gpu-staged``: pack into device memory, copy to pinned host memory, send; the receiver
  copies to the device and unpacks there.
- ``gpu-device``: pack into device memory and hand the device buffer to MPI (needs a
  CUDA-aware MPI; refused otherwise); unpack from the device receive buffer.

Built on :class:`hpc.halo.engine.HaloExchange` (the faces, their canonical blocks, the
neighbours and tags) and the CUDA packers of ``hpc._cuda.pack`` (native/cuda/pack.cu). The
send side packs every face in ONE kernel launch (``DevicePlan``: all 26 faces into one buffer
at per-face offsets; one-shot into one mapped pinned buffer, staged into one device buffer
copied to the host in one copy); each face is then sent from its slice. Faces are unpacked
one kernel each as they arrive (the arrivals overlap the unpacking).
Point-to-point transport only. Without a CUDA device every entry point raises UsageError.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from mpi4py import MPI

from hpc.core.errors import UsageError

from .engine import HaloExchange

MODES = ("gpu-oneshot", "gpu-staged", "gpu-device")
#: chooses one of MODES by timing them here (the GPU counterpart of --method auto)
AUTO = "gpu-auto"


def why_unavailable(mode: str) -> str | None:
    """None when this GPU path can run here, else why not."""
    from hpc.core import backends

    if mode == AUTO:
        return why_unavailable("gpu-staged")  # auto needs at least the staged path
    if mode not in MODES:
        return f"unknown GPU method {mode!r}"
    why = backends.why_unavailable("cuda")
    if why:
        return why
    try:
        from hpc import _cuda

        _cuda.pack  # noqa: B018 - the CUDA packers were built in
    except (ImportError, AttributeError):
        return "hpc._cuda has no pack module (rebuild: make build)"
    if mode == "gpu-device":
        from hpc.core.envinfo import cuda_aware

        if not cuda_aware():
            return "the MPI library is not CUDA-aware (HPC_CUDA_AWARE=1 overrides)"
    return None


def require(mode: str) -> None:
    why = why_unavailable(mode)
    if why:
        raise UsageError(f"--method {mode} is not available here: {why}")


class GpuHaloExchange:
    """Exchange the ghosts of a device-resident field (a DeviceBuffer of the padded field)."""

    def __init__(self, halo: HaloExchange, mode: str):
        require(mode)
        from hpc._cuda import pack as cp

        if halo.transport != "p2p":
            raise UsageError("GPU methods use point-to-point transport (--transport p2p)")
        for f in halo.faces:
            if f.send_block is None or f.recv_block is None:
                raise UsageError(f"GPU methods need canonical face types: {f.reason}")
        self.halo, self.mode, self._cp = halo, mode, cp
        self.nbytes = halo.field_nbytes
        # every face's send block in one plan: one launch packs them all, face k at offset k
        self._plan = cp.DevicePlan([(f.send_block.start, list(f.send_block.counts),
                                     list(f.send_block.strides)) for f in halo.faces],
                                   self.nbytes)
        self._offs = [0]
        for f in halo.faces[:-1]:
            self._offs.append(self._offs[-1] + f.nbytes)
        total = max(1, sum(f.nbytes for f in halo.faces))
        self._hsend = cp.PinnedBuffer(total) if mode in ("gpu-oneshot", "gpu-staged") else None
        self._dsend = cp.DeviceBuffer(total) if mode == "gpu-staged" else None
        self._bufs: list[dict[str, Any]] = []
        for f, o in zip(halo.faces, self._offs):
            b: dict[str, Any] = {}
            if mode in ("gpu-oneshot", "gpu-staged"):
                b["hsend"] = self._hsend.array[o:o + f.nbytes]  # a host view of the slice
                b["hrecv"] = cp.PinnedBuffer(f.nbytes)
            if mode == "gpu-staged":
                b["drecv"] = cp.DeviceBuffer(f.nbytes)
            if mode == "gpu-device":
                b["dsend"], b["drecv"] = cp.DeviceBuffer(f.nbytes), cp.DeviceBuffer(f.nbytes)
            self._bufs.append(b)
        # ghosts beyond a physical boundary: unpacked from a constant buffer each exchange
        self._fill = None
        if halo.fill is not None:
            self._fill = {}
            for f in halo.faces:
                if f.dest == MPI.PROC_NULL:
                    v = np.full(f.nbytes // halo.dtype.itemsize, halo.fill, halo.dtype)
                    d = cp.DeviceBuffer(f.nbytes)
                    d.upload(v.view(np.uint8))
                    self._fill[f.index] = d

    # -- field transfer ------------------------------------------------------------------
    def upload(self, field: np.ndarray):
        self.halo._check_field(field)
        d = self._cp.DeviceBuffer(self.nbytes)
        d.upload(field.reshape(-1).view(np.uint8))
        return d

    def download(self, dev) -> np.ndarray:
        out = np.empty(self.halo.shape, self.halo.dtype)
        dev.download(out.reshape(-1).view(np.uint8))
        return out

    def sync(self) -> None:
        self._cp.synchronize()

    # -- one kernel call per face ----------------------------------------------------------
    def _pack(self, dev, f, dst_ptr: int) -> None:
        b = f.send_block
        self._cp.pack(dev.ptr, self.nbytes, dst_ptr, f.nbytes, b.start, list(b.counts),
                      list(b.strides), True)

    def _unpack(self, src_ptr: int, f, dev) -> None:
        b = f.recv_block
        self._cp.unpack(src_ptr, f.nbytes, dev.ptr, self.nbytes, b.start, list(b.counts),
                        list(b.strides), True)

    def exchange(self, dev) -> None:
        """Fill every ghost cell of the device field in place (collective)."""
        h, comm, cp = self.halo, self.halo.comm, self._cp
        mirror = {f.direction: f.index for f in h.faces}
        recvs, sends = [], []
        for f, b in zip(h.faces, self._bufs):
            tag = mirror[tuple(-x for x in f.direction)]
            buf = [b["hrecv"].array, MPI.BYTE] if self.mode != "gpu-device" else b["drecv"]
            recvs.append(comm.Irecv(buf, f.dest, tag))
        if self.mode == "gpu-oneshot":  # one launch, straight into mapped pinned memory
            self._plan.pack_all(dev.ptr, self.nbytes, self._hsend.device_ptr,
                                self._hsend.nbytes, True)
        elif self.mode == "gpu-staged":  # one launch, then one copy of every face
            self._plan.pack_all(dev.ptr, self.nbytes, self._dsend.ptr, self._dsend.nbytes,
                                True)
            cp.copy_to_host(self._hsend.array, self._dsend.ptr, self._plan.total)
        for f, b in zip(h.faces, self._bufs):
            if self.mode == "gpu-device":  # device buffers per face for a CUDA-aware MPI
                self._pack(dev, f, b["dsend"].ptr)
                buf = b["dsend"]
            else:
                buf = [b["hsend"], MPI.BYTE]
            sends.append(comm.Isend(buf, f.dest, f.index))
        for _ in range(len(h.faces)):
            i = MPI.Request.Waitany(recvs)
            f, b = h.faces[i], self._bufs[i]
            if f.dest == MPI.PROC_NULL:
                if self._fill is not None:
                    self._unpack(self._fill[f.index].ptr, f, dev)
                continue
            if self.mode == "gpu-oneshot":
                self._unpack(b["hrecv"].device_ptr, f, dev)
            elif self.mode == "gpu-staged":
                cp.copy_to_device(b["drecv"].ptr, b["hrecv"].array, f.nbytes)
                self._unpack(b["drecv"].ptr, f, dev)
            else:
                self._unpack(b["drecv"].ptr, f, dev)
        MPI.Request.Waitall(sends)

    def pack_all(self, dev) -> int:
        """Pack every face on the device into one device buffer, ONE kernel launch (what
        pack_GBps times)."""
        if getattr(self, "_scratch", None) is None:
            self._scratch = self._cp.DeviceBuffer(max(1, self._plan.total))
        return self._plan.pack_all(dev.ptr, self.nbytes, self._scratch.ptr,
                                   self._scratch.nbytes, True)

    def pack_faces(self, dev) -> int:
        """The same bytes one kernel launch per face (the fused launch's baseline)."""
        if getattr(self, "_scratch", None) is None:
            self._scratch = self._cp.DeviceBuffer(max(1, self._plan.total))
        for f, o in zip(self.halo.faces, self._offs):
            b = f.send_block
            self._cp.pack(dev.ptr, self.nbytes, self._scratch.ptr + o, f.nbytes, b.start,
                          list(b.counts), list(b.strides), False)
        self._cp.synchronize()
        return self._plan.total

    def free(self) -> None:
        self._scratch = None
        self._bufs = []
        self._plan = self._hsend = self._dsend = None
        self._fill = None


def choose(halo: HaloExchange, field: np.ndarray, rounds: int = 3) -> tuple[str, dict[str, float]]:
    """The GPU path to use, measured on the spot (collective): every available mode times
    two exchanges of ``field`` (uploaded to the device) per round, rounds alternating; the
    median of the slowest rank decides, as ``method='auto'`` does on the CPU (TEMPI chooses
    between its device, one-shot and staged paths from measured costs the same way).

    Returns (mode, {mode: us per exchange})."""
    import time

    modes = [m for m in MODES if why_unavailable(m) is None]
    exs = {m: GpuHaloExchange(halo, m) for m in modes}
    try:
        devs = {m: ex.upload(field) for m, ex in exs.items()}
        for m, ex in exs.items():
            ex.exchange(devs[m])  # warm: buffers touched, kernels loaded
        samples: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(rounds):
            for m, ex in exs.items():
                halo.comm.Barrier()
                t0 = time.perf_counter()
                ex.exchange(devs[m])
                ex.exchange(devs[m])
                ex.sync()
                samples[m].append((time.perf_counter() - t0) / 2)
    finally:
        for ex in exs.values():
            ex.free()
    med = np.array([float(np.median(samples[m])) for m in modes])
    halo.comm.Allreduce(MPI.IN_PLACE, med, op=MPI.MAX)
    return modes[int(np.argmin(med))], {m: float(t * 1e6) for m, t in zip(modes, med)}
