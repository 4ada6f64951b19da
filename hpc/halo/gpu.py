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
neighbours and tags) and the CUDA packers of ``hpc._cuda.pack`` (native/cuda/pack.cu).
Point-to-point transport only. Without a CUDA device every entry point raises UsageError.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from mpi4py import MPI

from hpc.core.errors import UsageError

from .engine import HaloExchange

MODES = ("gpu-oneshot", "gpu-staged", "gpu-device")


def why_unavailable(mode: str) -> str | None:
    """None when this GPU path can run here, else why not."""
    from hpc.core import backends

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
        self._bufs: list[dict[str, Any]] = []
        for f in halo.faces:
            b: dict[str, Any] = {}
            if mode in ("gpu-oneshot", "gpu-staged"):
                b["hsend"], b["hrecv"] = cp.PinnedBuffer(f.nbytes), cp.PinnedBuffer(f.nbytes)
            if mode in ("gpu-staged", "gpu-device"):
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
        for f, b in zip(h.faces, self._bufs):
            if self.mode == "gpu-oneshot":
                self._pack(dev, f, b["hsend"].device_ptr)
                buf = [b["hsend"].array, MPI.BYTE]
            elif self.mode == "gpu-staged":
                self._pack(dev, f, b["dsend"].ptr)
                cp.copy_to_host(b["hsend"].array, b["dsend"].ptr, f.nbytes)
                buf = [b["hsend"].array, MPI.BYTE]
            else:
                self._pack(dev, f, b["dsend"].ptr)
                buf = b["dsend"]
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
        """Pack every face on the device into one device buffer (what pack_GBps times)."""
        h, cp = self.halo, self._cp
        total = sum(f.nbytes for f in h.faces)
        if getattr(self, "_scratch", None) is None:
            self._scratch = cp.DeviceBuffer(max(1, total))
        off = 0
        for f in h.faces:
            b = f.send_block
            cp.pack(dev.ptr, self.nbytes, self._scratch.ptr + off, f.nbytes, b.start,
                    list(b.counts), list(b.strides), False)
            off += f.nbytes
        cp.synchronize()
        return total

    def free(self) -> None:
        self._scratch = None
        self._bufs = []
        self._fill = None
