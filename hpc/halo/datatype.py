"""TEMPI's idea for any mpi4py program: pack MPI derived datatypes with the suite's kernels.

:func:`fast` takes a committed datatype as an application built it (vectors, subarrays,
indexed and struct types, resized, nested) and returns a :class:`FastType` whose calls follow
mpi4py's conventions (``pack``/``unpack`` as ``Datatype.Pack``/``Unpack``, ``send``/``recv``/
``isend``/``irecv`` as ``Comm.Send``/``Recv``/``Isend``/``Irecv`` of ``[buf, count, dt]``)::

    from hpc.halo.datatype import fast

    t = MPI.DOUBLE.Create_vector(100, 3, 17).Commit()
    ft = fast(t)                        # canonicalised once
    pos = ft.pack(a, out, 0)            # the bytes t.Pack(a, out, 0, comm) writes
    ft.send(comm, [a, 1], dest, tag)    # packed by the suite, sent as bytes
    ft.recv(comm, [b, 1], source, tag)  # received as bytes, unpacked by the suite

The type is read once (:func:`hpc.halo.canonical.canonicalize_blocks`) into a list of strided
blocks in type-map order and packed by one :class:`hpc.halo.packers.Plan` call (the native
C++ packer by default), byte for byte what ``MPI_Pack`` writes. A type that cannot be
canonicalised (darray, pair types with holes, more than ``MAX_BLOCKS`` blocks) falls back to
the library's own calls: :attr:`FastType.canonical` is False, :attr:`FastType.reason` says why,
and a :class:`FallbackWarning` is issued once per type.

Messages sent by ``send`` are plain bytes (``pack_size`` of them), so the receiver must use
``recv`` of a :class:`FastType` of a type with the same type signature (or receive bytes and
``unpack``) -- as with ``MPI_Pack``-ed messages. Both sides of the suite's calls agree.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError

from . import packers
from .canonical import NotCanonical, StridedBlock, canonicalize_blocks, repeat_blocks

__all__ = ["fast", "FastType", "FallbackWarning"]

#: plans kept per FastType (one per element count seen)
_PLANS = 8


class FallbackWarning(UserWarning):
    """A datatype the suite cannot canonicalise: the MPI library packs it."""


def _bytes(buf: Any, writable: bool, what: str) -> np.ndarray:
    """A flat uint8 view of a buffer (numpy array or anything with the buffer protocol)."""
    if type(buf) is np.ndarray:  # the common case, kept short (a microsecond matters)
        if buf.dtype == np.uint8 and buf.ndim == 1 and buf.flags.c_contiguous and \
                (buf.flags.writeable or not writable):
            return buf
        a = buf
    elif isinstance(buf, np.ndarray):
        a = buf
    else:
        try:
            a = np.frombuffer(memoryview(buf).cast("B"), np.uint8)
        except TypeError:
            raise InputTypeError(f"{what} must support the buffer protocol (a numpy array, "
                                 f"bytearray...), got {type(buf).__name__}") from None
    if not a.flags.c_contiguous:
        raise UsageError(f"{what} must be C-contiguous")
    if writable and not a.flags.writeable:
        raise UsageError(f"{what} must be writable")
    return a.reshape(-1).view(np.uint8)


def _spec(msg: Any) -> tuple[Any, int | None]:
    """mpi4py message forms: buf, [buf, count], [buf, count, dt] / (buf, count)."""
    if isinstance(msg, (list, tuple)):
        if len(msg) == 1:
            return msg[0], None
        if len(msg) in (2, 3):
            count = msg[1]
            if isinstance(count, (tuple, list)):
                raise UsageError("a FastType message is [buffer, count]: no displacement")
            return msg[0], int(count)
        raise UsageError("a FastType message is buffer or [buffer, count]")
    return msg, None


class FastType:
    """A datatype packed by the suite's packer (see :func:`fast`)."""

    def __init__(self, dt: MPI.Datatype, packer: str = "native", threads: int = 1):
        if not isinstance(dt, MPI.Datatype):
            raise InputTypeError(f"fast() takes an mpi4py Datatype, got {type(dt).__name__}")
        if dt == MPI.DATATYPE_NULL:
            raise UsageError("fast() of MPI.DATATYPE_NULL")
        packers.get(packer)  # an unavailable packer is a UsageError now
        self.dt, self.packer, self.threads = dt, packer, int(threads)
        self.lb, self.extent = dt.Get_extent()
        self.size = dt.Get_size()
        try:
            self.blocks: list[StridedBlock] | None = canonicalize_blocks(dt)
            self.reason = (f"canonical: {len(self.blocks)} strided block"
                           f"{'s' if len(self.blocks) != 1 else ''}")
        except NotCanonical as exc:
            self.blocks = None
            self.reason = f"library fallback: {exc}"
            warnings.warn(f"hpc.halo.datatype.fast: {self.reason}; MPI packs this type",
                          FallbackWarning, stacklevel=3)
        self._plans: dict[int, tuple[int, Any]] = {}
        # ``pack`` / ``unpack`` of numpy arrays with a plan for the count: ONE native call.
        # The native packer binds a plain CPython function as this instance's pack/unpack
        # (same signatures as the methods below); it serves numpy arrays from the plans it
        # is given, by element count, and hands every other call, unchanged, to the methods
        # (_pack_py/_unpack_py), which build the plan or raise. Measured per call: a pybind11
        # method plus a Python layer 0.45 us, this 0.09 us; mpi4py's Datatype.Pack 0.6 us.
        self._fast: Any = None
        if self.blocks is not None and packer == "native":
            from hpc._core import pack as _native

            self._fast = _native.FastCall(self.extent, self.threads, self)
            self.pack = self._fast.pack  # type: ignore[method-assign]
            self.unpack = self._fast.unpack  # type: ignore[method-assign]

    @property
    def canonical(self) -> bool:
        """True when the suite packs this type; False when the library does."""
        return self.blocks is not None

    def __repr__(self) -> str:
        return f"FastType({self.reason}; size {self.size}, extent {self.extent})"

    # -- sizes -------------------------------------------------------------------------------
    def pack_size(self, count: int = 1, comm: MPI.Comm | None = None) -> int:
        """Bytes ``count`` elements pack into: exactly ``count * size`` when canonical (the
        bytes :meth:`pack` writes), else the library's ``MPI_Pack_size`` bound."""
        if count < 0:
            raise UsageError(f"count must be >= 0, got {count}")
        if self.blocks is None:
            return self.dt.Pack_size(count, comm or MPI.COMM_SELF)
        return count * self.size

    def _count(self, nbytes: int, count: int | None) -> int:
        if count is not None:
            if count < 0:
                raise UsageError(f"count must be >= 0, got {count}")
            return count
        return nbytes // self.extent if self.extent > 0 else 0  # mpi4py's rule

    def _plan(self, count: int) -> tuple[int, Any]:
        """(packed bytes, plan) of ``count`` elements, kept per count. The plan needs the
        strided buffer to reach the last byte the elements touch."""
        plan = self._plans.get(count)
        if plan is None:
            if count < 0:
                raise UsageError(f"count must be >= 0, got {count}")
            blocks = repeat_blocks(self.blocks, count, self.extent) if count else []
            reach = max((b.span()[1] for b in blocks), default=0)
            p = packers.Plan(self.packer, blocks, reach, threads=self.threads)
            # the native C++ plan itself: one call, no Python layer (it takes the threads)
            plan = (p.total, p._native) if p._native is not None else \
                (p.total, _Threadless(p))
            if len(self._plans) >= _PLANS:
                old = next(iter(self._plans))
                del self._plans[old]
                if self._fast is not None:
                    self._fast.remove(old)
            self._plans[count] = plan
            if self._fast is not None and p._native is not None:
                self._fast.add(count, p._native)
        return plan

    # -- pack / unpack (mpi4py's Datatype.Pack / Unpack) ------------------------------------
    def pack(self, inbuf: Any, outbuf: Any, position: int = 0, comm: MPI.Comm | None = None,
             count: int | None = None) -> int:
        """Pack ``count`` elements of ``inbuf`` (default: as many as it holds, mpi4py's
        ``len(inbuf) // extent``) into ``outbuf`` at byte ``position``; the new position.

        Raises UsageError when a buffer is too small, not C-contiguous or (outbuf) read-only.
        """
        if self.blocks is None:
            return self._lib_call("Pack", inbuf, outbuf, position, comm, count)
        return self._run(False, inbuf, outbuf, position, count)

    def unpack(self, inbuf: Any, position: int, outbuf: Any, comm: MPI.Comm | None = None,
               count: int | None = None) -> int:
        """Unpack from ``inbuf`` at ``position`` into ``count`` elements of ``outbuf``
        (default: as many as it holds); the new position."""
        if self.blocks is None:
            return self._lib_call("Unpack", inbuf, outbuf, position, comm, count)
        return self._run(True, inbuf, outbuf, position, count)

    def _run(self, unpack: bool, inbuf: Any, outbuf: Any, position: int,
             count: int | None) -> int:
        # numpy arrays go straight to the native plan, which checks contiguity, writability
        # and sizes itself (a microsecond of Python checks would cost more than small packs)
        strided, packed = (outbuf, inbuf) if unpack else (inbuf, outbuf)
        if type(strided) is not np.ndarray:
            strided = _bytes(strided, unpack, "outbuf" if unpack else "inbuf")
        if type(packed) is not np.ndarray or position:
            packed = _bytes(packed, not unpack, "inbuf" if unpack else "outbuf")
        n = count if count is not None else (strided.nbytes // self.extent if self.extent > 0
                                             else 0)
        total, plan = self._plans.get(n) or self._plan(n)
        if position:
            if position < 0 or position > packed.size:
                raise UsageError(f"position {position} outside a buffer of {packed.size} bytes")
            packed = packed[position:]
        if not total:
            return position
        try:
            if unpack:
                plan.unpack_all(packed, strided, self.threads)
            else:
                plan.pack_all(strided, packed, self.threads)
        except ValueError as exc:  # the plan's own checks: one-line usage errors
            raise UsageError(f"{'unpack' if unpack else 'pack'}: {exc}") from None
        return position + total

    # what the native pack/unpack hand back (the instance attributes shadow the methods)
    _pack_py = pack
    _unpack_py = unpack

    def _lib_call(self, what: str, inbuf: Any, outbuf: Any, position: int,
                  comm: MPI.Comm | None, count: int | None) -> int:
        """The library's Pack / Unpack (a type the suite cannot canonicalise)."""
        comm = comm or MPI.COMM_SELF
        t = self.dt if count is None else self.dt.Create_contiguous(count).Commit()
        try:  # mpi4py takes the element count from the strided buffer's size
            if what == "Pack":
                return t.Pack(inbuf, outbuf, position, comm)
            return t.Unpack(inbuf, position, outbuf, comm)
        finally:
            if t is not self.dt:
                t.Free()

    # -- point to point (mpi4py's message forms: buf or [buf, count]) -----------------------
    def _packed(self, msg: Any) -> np.ndarray:
        buf, count = _spec(msg)
        n = self._count(_bytes(buf, False, "buffer").size, count)
        out = np.empty(max(1, self.pack_size(n)), np.uint8)
        used = self.pack(buf, out, 0, count=n)
        return out[:used]

    def send(self, comm: MPI.Comm, msg: Any, dest: int, tag: int = 0) -> None:
        """Send ``count`` elements: packed by the suite, sent as bytes (blocking)."""
        if self.blocks is None:
            buf, count = _spec(msg)
            return comm.Send(self._lib(buf, count), dest, tag)
        comm.Send([self._packed(msg), MPI.BYTE], dest, tag)

    def isend(self, comm: MPI.Comm, msg: Any, dest: int, tag: int = 0) -> MPI.Request:
        """Non-blocking :meth:`send` (the packed copy is kept alive by the request)."""
        if self.blocks is None:
            buf, count = _spec(msg)
            return comm.Isend(self._lib(buf, count), dest, tag)
        packed = self._packed(msg)
        req = comm.Isend([packed, MPI.BYTE], dest, tag)
        return _Keep(req, packed)

    def recv(self, comm: MPI.Comm, msg: Any, source: int = MPI.ANY_SOURCE,
             tag: int = MPI.ANY_TAG, status: MPI.Status | None = None) -> None:
        """Receive bytes sent by :meth:`send` and unpack them into ``count`` elements."""
        req = self.irecv(comm, msg, source, tag)
        req.Wait(status)

    def irecv(self, comm: MPI.Comm, msg: Any, source: int = MPI.ANY_SOURCE,
              tag: int = MPI.ANY_TAG) -> Any:
        """Non-blocking :meth:`recv`: ``Wait()`` / ``Test()`` on the result unpack."""
        buf, count = _spec(msg)
        if self.blocks is None:
            return comm.Irecv(self._lib(buf, count), source, tag)
        nbytes = _bytes(buf, True, "buffer").size
        n = self._count(nbytes, count)
        reach = max((b.span()[1] for b in repeat_blocks(self.blocks, n, self.extent)),
                    default=0) if n else 0
        if reach > nbytes:  # a too-small buffer fails now, not at Wait
            raise UsageError(f"buffer of {nbytes} bytes too small for {n} element(s) of "
                             f"this type (they reach byte {reach})")
        staging = np.empty(max(1, self.pack_size(n)), np.uint8)
        req = comm.Irecv([staging, self.pack_size(n), MPI.BYTE], source, tag)
        return _Unpacking(req, lambda: self.unpack(staging, 0, buf, count=n))

    def _lib(self, buf: Any, count: int | None) -> Any:
        return buf if count is None else [buf, count, self.dt]


class _Threadless:
    """A Python-side plan (numba, numpy packers) called like the native one."""

    def __init__(self, plan: packers.Plan):
        self.plan = plan

    def pack_all(self, src: np.ndarray, dst: np.ndarray, threads: int) -> int:
        return self.plan.pack_all(src, dst)

    def unpack_all(self, src: np.ndarray, dst: np.ndarray, threads: int) -> int:
        return self.plan.unpack_all(src, dst)


class _Keep:
    """A send request that keeps its packed buffer alive until completion."""

    def __init__(self, req: MPI.Request, buf: np.ndarray):
        self.req, self.buf = req, buf

    def Wait(self, status: MPI.Status | None = None) -> bool:
        return self.req.Wait(status)

    def Test(self, status: MPI.Status | None = None) -> bool:
        return self.req.Test(status)


class _Unpacking:
    """A receive request that unpacks when it completes (Wait, or a Test that says done)."""

    def __init__(self, req: MPI.Request, unpack):
        self.req, self._unpack = req, unpack

    def Wait(self, status: MPI.Status | None = None) -> bool:
        self.req.Wait(status)
        self._finish()
        return True

    def Test(self, status: MPI.Status | None = None) -> bool:
        done = self.req.Test(status)
        if done:
            self._finish()
        return done

    def _finish(self) -> None:
        if self._unpack is not None:
            self._unpack()
            self._unpack = None


def fast(dt: MPI.Datatype, packer: str = "native", threads: int = 1) -> FastType:
    """The suite's packer for a committed mpi4py datatype (see the module docstring).

    Parameters
    ----------
    dt : mpi4py.MPI.Datatype
        A datatype (predefined or derived; committed to be sent); not modified, not freed.
    packer : {'native', 'numba', 'numpy'}, default 'native'
        The CPU packer (:mod:`hpc.halo.packers`).
    threads : int, default 1
        OpenMP threads of the native packer (``MPI_Pack`` is serial; an MPI program's ranks
        usually share the host's cores). 0: OpenMP's default.

    Returns
    -------
    FastType
        ``pack``, ``unpack``, ``pack_size``, ``send``, ``recv``, ``isend``, ``irecv``;
        ``canonical`` False (and a :class:`FallbackWarning`) when the library packs.

    Raises
    ------
    InputTypeError (a TypeError)
        ``dt`` is not an mpi4py Datatype.
    UsageError (a ValueError)
        ``MPI.DATATYPE_NULL``, an unavailable packer.
    """
    return FastType(dt, packer, threads)
