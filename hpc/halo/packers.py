"""CPU packers for canonical strided blocks: native C++/OpenMP, Numba, and NumPy.

Every packer has the same two calls, on byte addresses of C-contiguous arrays:

    pack(src, block, dst)    gathers block's bytes of src into dst[:block.size]
    unpack(src, block, dst)  scatters src[:block.size] into block's bytes of dst

``native`` (hpc._core.pack, the fast path), ``numba`` (JIT loops over the same odometer) and
``numpy`` (a strided view copied with ``np.copyto``; the reference and the fallback) are
interchangeable; tests check all three against ``MPI_Pack`` byte for byte.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hpc.core.errors import UsageError

from .canonical import StridedBlock

PACKERS = ("native", "numba", "numpy")


def as_bytes(a: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a C-contiguous array (no copy)."""
    if not a.flags.c_contiguous:
        raise ValueError("packers need C-contiguous arrays")
    return a.reshape(-1).view(np.uint8)


def _check(nbytes: int, block: StridedBlock, packed_nbytes: int) -> None:
    lo, hi = block.span()
    if lo < 0 or hi > nbytes:
        raise ValueError(f"block touches bytes [{lo}, {hi}) outside a buffer of {nbytes} bytes")
    if packed_nbytes < block.size:
        raise ValueError(f"packed buffer holds {packed_nbytes} bytes, need {block.size}")


# -- numpy: a strided view is the block, read outermost first ----------------------------
def _view(buf: np.ndarray, block: StridedBlock) -> np.ndarray:
    base = as_bytes(buf)
    return np.lib.stride_tricks.as_strided(
        base[block.start:], shape=block.counts[::-1], strides=block.strides[::-1],
        writeable=True)


def numpy_pack(src: np.ndarray, block: StridedBlock, dst: np.ndarray) -> int:
    d = as_bytes(dst)
    _check(as_bytes(src).size, block, d.size)
    if block.size:
        np.copyto(d[:block.size].reshape(block.counts[::-1]), _view(src, block))
    return block.size


def numpy_unpack(src: np.ndarray, block: StridedBlock, dst: np.ndarray) -> int:
    s = as_bytes(src)
    _check(as_bytes(dst).size, block, s.size)
    if block.size:
        np.copyto(_view(dst, block), s[:block.size].reshape(block.counts[::-1]))
    return block.size


# -- native: hpc._core.pack ---------------------------------------------------------------
def _native():
    global _NATIVE
    if _NATIVE is None:
        from hpc._core import pack as _p

        _NATIVE = _p
    return _NATIVE


_NATIVE = None


def native_pack(src: np.ndarray, block: StridedBlock, dst: np.ndarray, threads: int = 0) -> int:
    return _native().pack(src, dst, block.start, list(block.counts), list(block.strides), threads)


def native_unpack(src: np.ndarray, block: StridedBlock, dst: np.ndarray, threads: int = 0) -> int:
    return _native().unpack(src, dst, block.start, list(block.counts), list(block.strides), threads)


# -- numba ----------------------------------------------------------------------------------
_NUMBA: dict[str, Callable] = {}


def _numba_kernels() -> dict[str, Callable]:
    if _NUMBA:
        return _NUMBA
    import numba

    @numba.njit(cache=True, nogil=True)
    def walk(strided, packed, start, counts, strides, unpack):  # pragma: no cover - JIT
        nd = counts.shape[0]
        ln = counts[0]
        nblocks = 1
        for i in range(1, nd):
            nblocks *= counts[i]
        if nblocks == 0 or ln == 0:
            return
        idx = np.zeros(nd, np.int64)
        soff = start
        for b in range(nblocks):
            p = b * ln
            if unpack:  # explicit byte loops: LLVM vectorises them; slices cost a view each
                for t in range(ln):
                    strided[soff + t] = packed[p + t]
            else:
                for t in range(ln):
                    packed[p + t] = strided[soff + t]
            for i in range(1, nd):
                soff += strides[i]
                idx[i] += 1
                if idx[i] < counts[i]:
                    break
                soff -= counts[i] * strides[i]
                idx[i] = 0

    @numba.njit(cache=True, nogil=True)
    def walk_all(strided, packed, starts, counts, strides, ndims, offsets, unpack):  # pragma: no cover
        # every block of a plan in one call: block k at packed offset offsets[k]
        for k in range(starts.shape[0]):
            walk(strided, packed[offsets[k]:], starts[k], counts[k, :ndims[k]],
                 strides[k, :ndims[k]], unpack)

    _NUMBA["walk"] = walk
    _NUMBA["walk_all"] = walk_all
    return _NUMBA


def _words(s: np.ndarray, d: np.ndarray, block: StridedBlock):
    """Both buffers and the block in the widest word (8/4/2/1 bytes) that divides them."""
    bits = block.start | block.counts[0] | s.size | d.size
    for st in block.strides[1:]:
        bits |= abs(st)
    w = 8
    while w > 1 and bits % w:
        w //= 2
    wt = {8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}[w]
    counts = np.asarray((block.counts[0] // w,) + block.counts[1:], np.int64)
    strides = np.asarray((1,) + tuple(x // w for x in block.strides[1:]), np.int64)
    return s.view(wt), d.view(wt), np.int64(block.start // w), counts, strides


def numba_pack(src: np.ndarray, block: StridedBlock, dst: np.ndarray) -> int:
    s, d = as_bytes(src), as_bytes(dst)
    _check(s.size, block, d.size)
    ws, wd, start, counts, strides = _words(s, d, block)
    _numba_kernels()["walk"](ws, wd, start, counts, strides, False)
    return block.size


def numba_unpack(src: np.ndarray, block: StridedBlock, dst: np.ndarray) -> int:
    s, d = as_bytes(src), as_bytes(dst)
    _check(d.size, block, s.size)
    wd, ws, start, counts, strides = _words(d, s, block)
    _numba_kernels()["walk"](wd, ws, start, counts, strides, True)
    return block.size


_TABLE = {
    "native": (native_pack, native_unpack, "native"),
    "numba": (numba_pack, numba_unpack, "numba"),
    "numpy": (numpy_pack, numpy_unpack, "numpy"),
}


class Plan:
    """A fixed list of blocks over one strided buffer size, packed one by one or all at once.

    ``pack_all`` writes block i at ``offsets[i]`` of one contiguous buffer (``total`` bytes).
    The native packer does this in C++ (one call for all blocks, validated once): with
    ``sweep`` (the default) every block is cut into per-plane pieces that run in order of
    their source address, one pass over the source for all blocks (same bytes as block after
    block; unpacking keeps block order where blocks write the same byte). The others loop here.
    """

    def __init__(self, name: str, blocks: list[StridedBlock], strided_bytes: int,
                 sweep: bool = True, threads: int = 0):
        self.name = name
        # native OpenMP threads per call (0: the OpenMP default, every core: too many when
        # several ranks share a host -- callers in MPI jobs pass their share)
        self.threads = int(threads)
        self.strided_bytes = int(strided_bytes)
        self.blocks = list(blocks)
        for b in self.blocks:
            _check(strided_bytes, b, b.size)
        self.offsets = [0]
        for b in self.blocks[:-1]:
            self.offsets.append(self.offsets[-1] + b.size)
        self.total = sum(b.size for b in self.blocks)
        self._pack, self._unpack = get(name)
        self._native = None
        self._numba = None
        if name == "numba" and self.blocks:
            # one word size for all blocks, so one JIT call packs the whole plan
            bits = strided_bytes | self.total
            for b, o in zip(self.blocks, self.offsets):
                bits |= b.start | b.counts[0] | o
                for st in b.strides[1:]:
                    bits |= abs(st)
            w = 8
            while w > 1 and bits % w:
                w //= 2
            nd = max(b.ndim for b in self.blocks)
            counts = np.ones((len(self.blocks), nd), np.int64)
            strides = np.ones((len(self.blocks), nd), np.int64)
            for k, b in enumerate(self.blocks):
                counts[k, :b.ndim] = (b.counts[0] // w,) + b.counts[1:]
                strides[k, :b.ndim] = (1,) + tuple(x // w for x in b.strides[1:])
            self._numba = (w, np.asarray([b.start // w for b in self.blocks], np.int64), counts,
                           strides, np.asarray([b.ndim for b in self.blocks], np.int64),
                           np.asarray([o // w for o in self.offsets], np.int64))
            self._numba_wt = {8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}[w]
        if name == "native":
            from hpc._core import pack as _p

            self._native = _p.Plan([(b.start, list(b.counts), list(b.strides))
                                    for b in self.blocks], strided_bytes, sweep)

    def pack_one(self, i: int, src: np.ndarray, dst: np.ndarray) -> int:
        if self._native is not None:
            return self._native.pack_one(i, src, dst, self.threads)
        return self._pack(src, self.blocks[i], dst)

    def unpack_one(self, i: int, src: np.ndarray, dst: np.ndarray) -> int:
        if self._native is not None:
            return self._native.unpack_one(i, src, dst, self.threads)
        return self._unpack(src, self.blocks[i], dst)

    def pack_all(self, src: np.ndarray, dst: np.ndarray) -> int:
        if self._native is not None:
            return self._native.pack_all(src, dst, self.threads)
        if self._numba is not None:
            return self._numba_all(src, dst, False)
        d = as_bytes(dst)
        for b, o in zip(self.blocks, self.offsets):
            self._pack(src, b, d[o:o + b.size])
        return self.total

    def unpack_all(self, src: np.ndarray, dst: np.ndarray) -> int:
        if self._native is not None:
            return self._native.unpack_all(src, dst, self.threads)
        if self._numba is not None:
            return self._numba_all(dst, src, True)
        s = as_bytes(src)
        for b, o in zip(self.blocks, self.offsets):
            self._unpack(s[o:o + b.size], b, dst)
        return self.total


    def _numba_all(self, strided: np.ndarray, packed: np.ndarray, unpack: bool) -> int:
        sb, pb = as_bytes(strided), as_bytes(packed)
        if sb.size < self.strided_bytes or pb.size < self.total:
            raise ValueError(f"plan needs {self.strided_bytes} strided and {self.total} packed "
                             f"bytes, got {sb.size} and {pb.size}")
        w, starts, counts, strides, ndims, offsets = self._numba
        n_s, n_p = sb.size - sb.size % w, pb.size - pb.size % w
        _numba_kernels()["walk_all"](sb[:n_s].view(self._numba_wt), pb[:n_p].view(self._numba_wt),
                                     starts, counts, strides, ndims, offsets, unpack)
        return self.total


def get(name: str) -> tuple[Callable, Callable]:
    """(pack, unpack) of a packer; an unavailable one is a UsageError naming why."""
    from hpc.core import backends

    if name not in _TABLE:
        raise UsageError(f"unknown packer {name!r} (choose from {', '.join(PACKERS)})")
    pk, up, backend = _TABLE[name]
    why = backends.why_unavailable(backend)
    if why:
        raise UsageError(f"packer {name} is not available here: {why}")
    return pk, up
