"""Parallel Matrix Market I/O: every rank reads and parses its own byte range of the file.

Reader: the header (banner, comments, size line) is read by every rank (it is short); the
entry lines are split into p byte ranges, a line belonging to the rank whose range holds its
first byte, so no rank ever holds the whole file and nothing is gathered on rank 0. The usual
read costs two collectives: ONE Allgather carries every rank's status (an error, a range that
needs the exact parser, a memory shortfall), its memory figures, entry count and per-owner send
counts, and one Alltoallv routes the entries (i, j and the bits of v as int64 rows) to their
row owners. One rank calls no MPI. Only when something is wrong does a rank learn the line
number of its first line (an exclusive scan of newline counts), so every error names the file
and line.

Each rank's range is parsed in one strict pass by the native parser (``hpc._core.mmio``:
every line exactly k numerals, digits read 8 at a time, a value of at most 19 digits and a
small exponent by Clinger's exact fast path, any other by ``std::from_chars``; indices in
range; values finite) when the extension is built; when it rejects a line, the exact NumPy parser below names the
line and the fault. Without the extension, fast_matrix_market (C++, ``fast_float``; the parser
inside ``scipy.io.mmread``) parses the range; when that parser rejects the range, or finds a
value that is not finite or an ``integer`` value with a fraction, the exact NumPy parser below
parses it again to name the line and the fault. Before that, two byte counts at memchr
speed check what fmm would let pass: only the field's numeral characters (digits, signs and,
for real values, ``.eE``) between the whitespace, and exactly one separator between tokens or
else an exact token count. What remains unchecked on the fast path, as in
``scipy.io.mmread``: a numeral made of those characters but malformed only in its structure
(``9.2.5``, ``1e5e5``) is read as its longest valid prefix.

One read opens the file once (header and range through one stream), and
:func:`read_matrix` reuses its text, routed and received buffers from one read to the next
(fresh ones cost a page fault per 4 KiB, a fifth of a small read's time).

Compressed files (``.gz``, ``.bz2``, ``.xz``: recognised by their first bytes) cannot be split
by byte offset: every rank decompresses the stream and keeps its share of the entry lines.
The ``array`` (dense, column-major) format is read whole by every rank, after a memory check.

Supported: ``coordinate`` and ``array`` with ``real``, ``integer`` or ``pattern`` fields and
``general``, ``symmetric`` or ``skew-symmetric`` symmetry. Checked: the banner, the size line,
the number of tokens per entry line, numeric and finite fields, 1-based index ranges, the
declared entry count (too few = truncated file, too many). Errors are UsageError, agreed on
all ranks. The memory an entry needs is checked (:func:`hpc.core.memory.require_memory`)
from the header before anything is allocated.
"""
from __future__ import annotations

import io
import logging
import math
import os
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.atomic import atomic_path
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import exscan, node_comm
from hpc.core.fileio import compression, open_input, take_lines
from hpc.core.memory import available_bytes, gib, require_memory
from hpc.core.runtime import as_comm
from hpc.core.partition import block_offsets
from hpc.core.runtime import collective

from .dcsr import DistCSR, _as_offsets

log = logging.getLogger("hpc.sparse.mmio")

FIELDS = ("real", "integer", "pattern")
FORMATS = ("coordinate", "array")
SYMMETRIES = ("general", "symmetric", "skew-symmetric")
_WS = np.array([32, 9, 13, 10, 11, 12], dtype=np.uint8)


@dataclass
class Header:
    path: str
    field: str
    symmetry: str
    rows: int
    cols: int
    entries: int
    size_line: int    # 1-based line number of the size line
    data_start: int   # byte offset of the first line after the size line (decompressed)
    format: str = "coordinate"
    compression: str | None = None  # "gzip", "bz2", "xz" or None


def read_header(path: str | os.PathLike) -> Header:
    """Parse banner, comments and size line; UsageError names the file and line."""
    f, kind = _open(path)
    with f:
        return _parse_header(str(path), f, kind)


def _open(path: str | os.PathLike):
    """``(stream, compression)``: the decompressed binary stream of ``path``, or UsageError."""
    try:
        kind = compression(path)
        # a plain file directly: open_input would look at its first bytes again
        return (open(path, "rb") if kind is None else open_input(path, "rb")), kind
    except OSError as exc:
        raise UsageError(f"{path}: cannot open ({exc.strerror})") from None


def _parse_header(name: str, f, kind: str | None) -> Header:
    """The header read from the binary stream ``f`` at its start (``kind``: its compression)."""
    first = f.readline()
    banner = first.decode("latin-1").split()
    if len(banner) < 5 or banner[0].lower() != "%%matrixmarket":
        raise UsageError(f"{name}:1: not a Matrix Market file (expected a '%%MatrixMarket' banner)")
    obj, fmt, field, sym = (t.lower() for t in banner[1:5])
    if obj != "matrix":
        raise UsageError(f"{name}:1: object '{obj}' not supported (only 'matrix')")
    if fmt not in FORMATS:
        raise UsageError(f"{name}:1: format '{fmt}' not supported (supported: {', '.join(FORMATS)})")
    if fmt == "array" and field == "pattern":
        raise UsageError(f"{name}:1: an 'array' matrix cannot have the 'pattern' field")
    if field not in FIELDS:
        raise UsageError(f"{name}:1: field '{field}' not supported (supported: {', '.join(FIELDS)})")
    if sym not in SYMMETRIES:
        raise UsageError(f"{name}:1: symmetry '{sym}' not supported (supported: {', '.join(SYMMETRIES)})")
    lineno = 1
    want = 3 if fmt == "coordinate" else 2
    while True:
        try:
            raw = f.readline()
        except (OSError, EOFError) as exc:
            raise UsageError(f"{name}: corrupt {kind} stream ({exc})") from None
        if not raw:
            raise UsageError(f"{name}:{lineno}: file ends before the size line (truncated?)")
        lineno += 1
        text = raw.decode("latin-1").strip()
        if not text or text.startswith("%"):
            continue
        parts = text.split()
        try:
            vals = [int(t) for t in parts]
        except ValueError:
            vals = []
        if len(parts) != want or len(vals) != want:
            expect = "rows cols entries" if want == 3 else "rows cols"
            raise UsageError(f"{name}:{lineno}: bad size line {text[:60]!r} (expected '{expect}')")
        m, n = vals[:2]
        nnz = vals[2] if want == 3 else _array_count(m, n, sym)
        if m < 0 or n < 0 or nnz < 0:
            raise UsageError(f"{name}:{lineno}: negative size in {text!r}")
        if sym != "general" and m != n:
            raise UsageError(f"{name}:{lineno}: a {sym} matrix must be square, got {m} x {n}")
        return Header(name, field, sym, m, n, nnz, lineno, f.tell(), fmt, kind)


def _array_count(m: int, n: int, sym: str) -> int:
    """Values stored by an ``array`` file: all, the lower triangle, or the strict lower one."""
    if sym == "general":
        return m * n
    return n * (n + 1) // 2 if sym == "symmetric" else n * (n - 1) // 2


def _line_start_at_or_after(f, pos: int, lo: int, size: int) -> int:
    """Offset of the first line that begins at or after pos (lines split at '\\n')."""
    if pos <= lo:
        return lo
    if pos >= size:
        return size
    f.seek(pos - 1)
    cur = pos - 1
    while True:
        chunk = f.read(1 << 16)
        if not chunk:
            return size
        k = chunk.find(b"\n")
        if k >= 0:
            return cur + k + 1
        cur += len(chunk)


def _parse_region(h: Header, region: bytes, first_line: int):
    """Parse entry lines; returns (i, j, v, line_of_entry) 0-based indices, or raises UsageError."""
    name = h.path
    k = 2 if h.field == "pattern" else 3
    b = np.frombuffer(region, dtype=np.uint8)
    if b.size == 0:
        e = np.empty(0, np.int64)
        return e, e, np.empty(0, np.float64), e
    nl = b == 10
    ws = np.isin(b, _WS)
    tok_start = ~ws
    tok_start[1:] &= ws[:-1]
    line_of_byte = np.cumsum(nl) - nl          # line index (0-based within region) of each byte
    nlines = int(line_of_byte[-1]) + 1
    per_line = np.bincount(line_of_byte[tok_start], minlength=nlines)
    bad = np.flatnonzero((per_line != 0) & (per_line != k))
    if bad.size:
        ln = int(bad[0])
        text = region.split(b"\n")[ln].decode("latin-1").strip()
        if text.startswith("%"):
            raise UsageError(f"{name}:{first_line + ln}: comment line among the entries")
        raise UsageError(f"{name}:{first_line + ln}: expected {k} fields "
                         f"('row col{'' if k == 2 else ' value'}'), got {per_line[ln]}: {text[:60]!r}")
    entry_line = np.flatnonzero(per_line).astype(np.int64)
    toks = np.array(region.split()).reshape(-1, k) if entry_line.size else np.empty((0, k), "S1")

    def convert(col: int, dtype, what: str):
        try:
            return toks[:, col].astype(dtype)
        except ValueError:
            for r in range(toks.shape[0]):
                try:
                    np.array([toks[r, col]]).astype(dtype)
                except ValueError:
                    tok = toks[r, col].decode("latin-1")
                    raise UsageError(f"{name}:{first_line + int(entry_line[r])}: {what} {tok!r} "
                                     "is not a valid number") from None
            raise

    i = convert(0, np.int64, "row index")
    j = convert(1, np.int64, "column index")
    if k == 2:
        v = np.ones(i.size, dtype=np.float64)
    else:
        v = convert(2, np.int64 if h.field == "integer" else np.float64,
                    "integer value" if h.field == "integer" else "value").astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            r = int(bad[0])
            raise UsageError(f"{name}:{first_line + int(entry_line[r])}: value "
                             f"{toks[r, 2].decode('latin-1')!r} is not finite")
    for arr, lim, what in ((i, h.rows, "row"), (j, h.cols, "column")):
        out = np.flatnonzero((arr < 1) | (arr > lim))
        if out.size:
            r = int(out[0])
            raise UsageError(f"{name}:{first_line + int(entry_line[r])}: {what} index {arr[r]} "
                             f"out of range 1..{lim}")
    if h.symmetry == "skew-symmetric":
        d = np.flatnonzero(i == j)
        if d.size:
            raise UsageError(f"{name}:{first_line + int(entry_line[d[0]])}: diagonal entry in a "
                             "skew-symmetric matrix")
    return i - 1, j - 1, v, entry_line + first_line


class _Chain:
    """A read-only stream of a short header followed by a buffer (no copy of the buffer):
    what fast_matrix_market reads a rank's range through."""

    def __init__(self, head: bytes, body: bytes):
        self._parts = [memoryview(head), memoryview(body)]
        self._k = 0
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        out = []
        while self._k < len(self._parts) and (n < 0 or n > 0):
            part = self._parts[self._k]
            take = part[self._pos:] if n < 0 else part[self._pos:self._pos + n]
            out.append(bytes(take))
            self._pos += len(take)
            if n > 0:
                n -= len(take)
            if self._pos >= len(part):
                self._k, self._pos = self._k + 1, 0
        return b"".join(out)


_WS_BYTES = b" \t\r\n\v\f"
_WS_TABLE = np.zeros(256, dtype=bool)
_WS_TABLE[list(_WS_BYTES)] = True
#: the bytes an entry line may hold, per field: anything else is a fault to report
_ALLOWED = {"real": b"0123456789+-.eE", "integer": b"0123456789+-"}
_ALLOWED["pattern"] = _ALLOWED["integer"]


def _tokens_ok(region: bytes, end: int, k: int, lines: int, regular: bool) -> bool:
    """Whether ``region[:end]`` (``lines`` entry lines) holds exactly ``k`` tokens a line:
    fast_matrix_market ignores extra tokens. Every line has at least ``k`` (fmm fails on a
    short line), so with only spaces and newlines (``regular``), a count of exactly one
    space between tokens proves it at memchr speed; other layouts (tabs, aligned columns,
    CR LF) count the tokens with NumPy."""
    if regular and region.count(b" ", 0, end) == (k - 1) * lines:
        return True
    ws = _WS_TABLE[np.frombuffer(region, dtype=np.uint8, count=end)]
    tokens = int(not ws[0]) + int(np.count_nonzero(ws[:-1] & ~ws[1:]))
    return tokens == k * lines


def _native_parser():
    """hpc._core.mmio.parse_coo, or None where the extension is not built."""
    try:
        from hpc import _core
    except ImportError:
        return None
    return getattr(getattr(_core, "mmio", None), "parse_coo", None)


@dataclass
class _Packed:
    """A range parsed by the native router: its entries and their mirrors as rows (i, j,
    bits of v) of an (n, 3) int64 array grouped by owner rank (``counts`` of each), ready for
    the Alltoallv, and ``lines``, the entry lines parsed (what the declared count counts)."""

    packed: np.ndarray
    counts: np.ndarray
    lines: int
    order: tuple = (0, 0, 0, 0, 0)  # (flags, first/last row-major, first/last column-major key)


def _native_router():
    """(hpc._core.mmio.parse_route, csr_from_packed), or None where the extension is not built
    (or the native parser is switched off, as the tests do to run the fmm path)."""
    if _native_parser() is None:
        return None
    from hpc import _core

    route = getattr(_core.mmio, "parse_route", None)
    build = getattr(_core.mmio, "csr_from_packed", None)
    return None if route is None or build is None else (route, build)


#: a reused buffer is kept only up to this size: the memory of a large read (an app reads
#: once, then solves) goes back, at most 3 x 16 MiB stays
_KEEP_MAX = 16 << 20
_scratch_lock = threading.Lock()
_scratch: dict[str, np.ndarray] = {}


@contextmanager
def _scratch_lease():
    """The reader's buffers reused from one read to the next (a dict of arrays), or None
    while another thread holds them (that read allocates its own).

    Why: fresh buffers cost a page fault per 4 KiB first touched, and glibc gives freed
    memory back to the kernel, so every read faulted its text, routed and received rows
    again (bcsstk13 at 2 ranks: ~500 faults a read, a fifth of its time)."""
    if not _scratch_lock.acquire(blocking=False):
        yield None
        return
    try:
        yield _scratch
    finally:
        for name in [n for n, b in _scratch.items() if b.nbytes > _KEEP_MAX]:
            del _scratch[name]
        _scratch_lock.release()


def _buffer(bufs: dict | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array: a view of the reused buffer ``name`` of ``bufs`` (replaced by a
    larger one when too small), or a fresh array where ``bufs`` is None."""
    if bufs is None:
        return np.empty(shape, dtype)
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buf = bufs.get(name)
    if buf is None or buf.nbytes < nbytes:
        buf = bufs[name] = np.empty(nbytes, np.uint8)
    else:
        buf = buf.reshape(-1).view(np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _text(region) -> bytes:
    """A range's text as bytes (the exact parser and the line count work on bytes)."""
    return region if isinstance(region, bytes) else bytes(region)


def _parse_fast(h: Header, region, threads: int, path: str | None = None,
                roff: np.ndarray | None = None, bufs: dict | None = None):
    """Parse a range: (i, j, v) 0-based, or None when the range needs the exact parser (a
    fault to report). The native strict parser (hpc._core.mmio: one pass, every line exactly
    k numerals, indices in range, values finite) when built; else fast_matrix_market after
    byte checks: with ``path`` (one rank, a plain file: ``region`` is all its entry lines)
    fmm reads the file itself, otherwise the range goes through an in-memory file behind a
    made-up header. ``region``: bytes or a uint8 array; ``bufs``: see :func:`_scratch_lease`
    (the routed rows are written into its ``packed`` buffer when large enough)."""
    native = _native_parser()
    if native is not None:
        k = 2 if h.field == "pattern" else 3
        # a thread per 2 MiB at most: OpenMP's start and spin-wait cost more CPU than a
        # smaller range takes (bcsstk13, 1 MB: 2.1 ms of CPU on one thread, 8 ms on two)
        threads = max(1, min(threads, len(region) >> 21))
        router = _native_router() if roff is not None else None
        if router is not None:  # parsed, mirrored and grouped by owner in one native call
            spare = bufs.get("packed") if bufs is not None else None
            got = router[0](region, k, h.field, h.rows, h.cols, h.symmetry,
                            np.ascontiguousarray(roff, dtype=np.int64), threads, spare)
            if got is None:
                return None
            if bufs is not None and got[0].base is None:  # the spare was too small: keep
                bufs["packed"] = got[0]                   # this one for the next read
            return _Packed(*got)
        return native(region, k, h.field, h.rows, h.cols, h.symmetry == "skew-symmetric",
                      threads)
    try:
        import fast_matrix_market as fmm
    except ImportError:
        return None
    region = _text(region)
    end = len(region)
    while end and region[end - 1] in _WS_BYTES:  # trailing blank lines: not entries
        end -= 1
    if end == 0:
        e = np.empty(0, np.int64)
        return e, e, np.empty(0, np.float64)
    # the whole file: fmm checks the declared count itself ("too many lines", "truncated"),
    # so a success has read exactly h.entries lines (blank ones aside): no newline count
    lines = h.entries if path is not None else region.count(b"\n", 0, end) + 1
    k = 2 if h.field == "pattern" else 3
    # fmm takes a numeral's prefix ('1x2' -> 1): only the field's numeral bytes may appear
    # (integer fields: digits and signs, so fmm's integer parse is exact); one pass, whose
    # output (what is neither a numeral byte, a space nor a newline) is empty in a usual file
    other = region.translate(None, _ALLOWED[h.field] + b" \n")
    if other.translate(None, _WS_BYTES):
        return None
    if not _tokens_ok(region, end, k, lines, regular=not other):
        return None
    # a thread per MiB at most: starting threads costs more than a small range takes
    threads = max(1, min(threads, end >> 20))
    try:
        if path is not None:
            (v, (i, j)), _ = fmm.read_coo(path, parallelism=threads, generalize_symmetry=False)
        else:
            head = (f"%%MatrixMarket matrix coordinate {h.field} general\n"
                    f"{h.rows} {h.cols} {lines}\n").encode()
            (v, (i, j)), _ = _fmm_range(fmm, head, memoryview(region)[:end], threads)
    except (ValueError, RuntimeError, OverflowError):
        return None
    v = np.asarray(v, dtype=np.float64)
    if not np.isfinite(v).all():  # overflow to inf ('1e999')
        return None
    if h.symmetry == "skew-symmetric" and (i == j).any():
        return None
    return i, j, v  # fmm's int32 indices where they fit: half the bytes to sort and send


def _fmm_range(fmm, head: bytes, body: memoryview, threads: int):
    """fmm.read_coo of ``head`` + ``body``: through an in-memory file where Linux has one
    (fmm reads a file natively, a Python stream 1 KiB a call), else a stream."""
    if not hasattr(os, "memfd_create"):
        return fmm.read_coo(_Chain(head, body), parallelism=threads, generalize_symmetry=False)
    fd = os.memfd_create("hpc-mmio")
    try:
        os.write(fd, head)
        while body:
            body = body[os.write(fd, body):]
        return fmm.read_coo(f"/proc/self/fd/{fd}", parallelism=threads,
                            generalize_symmetry=False)
    finally:
        os.close(fd)


def _threads(comm=None) -> int:
    """Parser threads: the run's --threads (set_threads exports OMP_NUM_THREADS), else this
    process's cores shared by the job's ranks."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // (comm.Get_size() if comm is not None else 1))


def _local_range(h: Header, comm, f=None, bufs: dict | None = None):
    """This rank's entry lines, and the file line number of the first of them when known
    without a scan (compressed input), else None. A plain file is read through ``f`` (the
    stream its header was read from: one open per read) when given, into the reused
    ``text`` buffer of ``bufs`` (a uint8 array) when given, else as bytes."""
    p, r = comm.Get_size(), comm.Get_rank()
    if h.compression is not None:
        # no byte offsets into a compressed stream: split by line, each rank decompresses
        first = h.entries * r // p
        stop = h.entries * (r + 1) // p if r < p - 1 else None
        try:
            with open_input(h.path, "rb") as g:
                g.seek(h.data_start)
                return take_lines(g, first, stop), h.size_line + 1 + first
        except (OSError, EOFError) as exc:
            raise UsageError(f"{h.path}: corrupt {h.compression} stream ({exc})") from None
    with ExitStack() as stack:
        if f is None:
            f = stack.enter_context(open(h.path, "rb"))
        size = os.fstat(f.fileno()).st_size
        span = size - h.data_start
        lo = h.data_start + span * r // p
        hi = h.data_start + span * (r + 1) // p
        s0 = _line_start_at_or_after(f, lo, h.data_start, size)
        e0 = _line_start_at_or_after(f, hi, h.data_start, size) if r < p - 1 else size
        f.seek(s0)
        if bufs is None:
            return f.read(max(0, e0 - s0)), None
        text = _buffer(bufs, "text", (max(0, e0 - s0),), np.uint8)
        return text[:f.readinto(text)], None


def _entry_bytes(h: Header, p: int) -> float:
    """Bytes per rank the entries need while read: the text share, the parsed triplets (the
    mirrors of a symmetric matrix doubled), their exchange and the local CSR, plus what the
    declared rows cost (the local indptr and two vectors of the rows: a 10^12-row header
    with one entry is refused, not allocated)."""
    mirror = 1 if h.symmetry == "general" else 2
    per_rank = h.entries / max(p, 1)
    return per_rank * (3 * 24 * mirror + 40) + 24.0 * (h.rows / max(p, 1) + 1)


# A rank's state after reading its range, the first column of the one Allgather.
_OK, _ERROR, _EXACT, _MEMORY = 0, 1, 2, 3
#: up to this many ranks the send counts ride in the Allgather (p*p int64 on every rank);
#: beyond it they take their own Alltoall
_GATHER_COUNTS_MAX = 64
#: columns of the Allgather before the send counts: status, need, have, entry lines, and the
#: order flags and keys of parse_route
_FIXED = 9
#: an order flag the reader adds: this rank's range went through the native router
_ROUTED = 32


def _memory_here(h: Header, comm) -> tuple[bool, int, int]:
    """The memory check of :func:`hpc.core.memory.require_memory`, local only (the node
    communicator is cached on ``comm``): (fits, bytes needed on this host, bytes free)."""
    per_rank = _entry_bytes(h, comm.Get_size())
    ranks_here = node_comm(comm).Get_size() if comm.Get_size() > 1 else 1
    need, have = per_rank * ranks_here, available_bytes()
    return need <= 0.85 * have, int(min(need, 2**62)), int(have)  # an int64 in the table


def _read_fast(path, comm, threads: int | None, roff_arg, bufs: dict | None = None):
    """Header, memory check, range read and fast parse: everything a rank does before it
    must hear from the others, with no communication. Returns (status, message, header,
    row offsets, region, first line, (i, j, v) or None, need, have). The file is opened
    once (its header and this rank's range read through one stream)."""
    p = comm.Get_size()
    h = roff = None
    region, first_line, result, need, have = b"", None, None, 0, 0
    try:
        f, kind = _open(path)
        with f:
            h = _parse_header(str(path), f, kind)
            roff = (block_offsets(h.rows, p) if roff_arg is None
                    else _as_offsets(roff_arg, h.rows, p))
            fits, need, have = _memory_here(h, comm)
            if not fits:  # nothing allocated: the agreement names the shortfall
                return _MEMORY, None, h, roff, region, first_line, None, need, have
            if h.format == "array":  # read whole after the agreement (its own checks)
                return _OK, None, h, roff, region, first_line, None, need, have
            region, first_line = _local_range(h, comm, f if kind is None else None, bufs)
        whole = h.path if p == 1 and h.compression is None else None
        result = _parse_fast(h, region, threads or _threads(comm), whole, roff, bufs)
    except UsageError as exc:
        return _ERROR, str(exc), h, roff, region, first_line, None, need, have
    return (_EXACT if result is None else _OK), None, h, roff, region, first_line, result, \
        need, have


def _expand(h: Header, i, j, v):
    """Add the mirror of every off-diagonal entry of symmetric and skew-symmetric storage."""
    if h.symmetry == "general":
        return i, j, v
    off = i != j
    if h.symmetry == "skew-symmetric":
        return (np.concatenate((i, j[off])), np.concatenate((j, i[off])),
                np.concatenate((v, -v[off])))
    return np.concatenate((i, j[off])), np.concatenate((j, i[off])), np.concatenate((v, v[off]))


def _owners(roff: np.ndarray, i: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """The owner rank of every row index, and how many entries go to each rank."""
    dest = np.searchsorted(roff, i, side="right") - 1
    return dest, np.bincount(dest, minlength=p).astype(np.int64)


def _gather_rows(comm, row: np.ndarray) -> np.ndarray:
    """One Allgather of a fixed-length int64 row from every rank: (p, len(row))."""
    out = np.empty((comm.Get_size(), row.size), dtype=np.int64)
    comm.Allgather(np.ascontiguousarray(row, dtype=np.int64), out)
    return out


def _raise_agreed(comm, table: np.ndarray, msg: str | None, h, bytes_per_rank) -> None:
    """Raise on every rank when some rank failed (column 0 of the gathered ``table``): the
    lowest failing rank's message (one broadcast, only then)."""
    status = table[:, 0]
    if (status == _ERROR).any():
        raise UsageError(comm.bcast(msg, root=int(np.flatnonzero(status == _ERROR)[0])))
    if (status == _MEMORY).any():
        what = f"reading {h.path} ({h.rows:,} x {h.cols:,}, {h.entries:,} entries)"
        require_memory(bytes_per_rank, what, comm)  # the agreed message, on every rank
        # memory was freed meanwhile: name the shortfall every rank saw
        need, have = int(table[:, 1].max()), int(table[:, 2].min())
        raise UsageError(f"{what} needs {gib(need)} on a host that had {gib(have)} free; "
                         "use a smaller size or more nodes")


def read_local_entries(path, comm, threads: int | None = None, row_offsets=None):
    """Header, row offsets, and this rank's entries ``(h, roff, i, j, v)``: 0-based, its
    rows only, symmetric storage expanded. Collective (see :func:`_entries`)."""
    h, roff, got, _ = _entries(path, comm, threads, row_offsets)
    if isinstance(got, np.ndarray):
        return h, roff, got[:, 0], got[:, 1], np.ascontiguousarray(got[:, 2]).view(np.float64)
    return (h, roff, *got)


def _entries(path, comm, threads: int | None = None, row_offsets=None,
             bufs: dict | None = None):
    """Header, row offsets, this rank's entries (0-based, symmetric storage expanded): the
    received (n, 3) int64 rows (i, j, bits of v) of the native router, else (i, j, v); and
    the matrix's entry count when the gathered order proves there are no duplicates, else
    None. Collective.

    The usual path (every range parsed by fast_matrix_market) costs ONE collective: an
    Allgather of each rank's status, memory figures, entry count and send counts (an
    Alltoall of the send counts beyond ``_GATHER_COUNTS_MAX`` ranks). On one rank it costs
    none. Errors, memory shortfalls and ranges that need the exact parser (to name a fault)
    cost more, and the line numbers (a scan of newline counts) are only computed then.

    With ``bufs`` (:func:`_scratch_lease`), the text, the routed rows and the received rows
    live in buffers reused from read to read: the received rows are then valid only until
    the lease ends.
    """
    p, rank = comm.Get_size(), comm.Get_rank()
    status, msg, h, roff, region, first_line, result, need, have = \
        _read_fast(path, comm, threads, row_offsets, bufs)
    dest = scount = None
    order = (0, 0, 0, 0, 0)  # nothing proved
    if status == _OK and h.format == "coordinate" and isinstance(result, _Packed):
        count, scount = int(result.lines), result.counts  # mirrored and grouped natively
        order = (int(result.order[0]) | _ROUTED, *result.order[1:])
    elif status == _OK and h.format == "coordinate":
        i, j, v = result
        count = int(i.size)
        i, j, v = _expand(h, i, j, v)
        if p > 1:
            dest, scount = _owners(roff, i, p)
    else:
        count, scount = 0, np.zeros(p, np.int64)
    if p == 1:  # nothing to agree with
        if status == _ERROR:
            raise UsageError(msg)
        table = np.array([[status, need, have, count, *order]], dtype=np.int64)
    else:
        small = p <= _GATHER_COUNTS_MAX
        table = _gather_rows(comm, np.concatenate(
            ([status, need, have, count, *order], scount if small else [])))
    bytes_per_rank = _entry_bytes(h, p) if h is not None else 0.0
    _raise_agreed(comm, table, msg, h, bytes_per_rank)
    if h.format == "array":
        i, j, v = _expand(h, *_read_array(h, comm))
        return h, roff, _routing(comm, roff, i, j, v), None
    counts = table[:, 3]

    def line_numbers() -> int:  # collective: every rank calls it under the same condition
        if first_line is not None:
            return first_line
        return h.size_line + 1 + exscan(comm, _text(region).count(b"\n"))

    if (table[:, 0] == _EXACT).any():  # some range needs the exact parser to name a fault
        first_line = line_numbers()
        with collective(comm):
            if result is None:
                result = _parse_region(h, _text(region), first_line)[:3]
        if isinstance(result, _Packed):  # this rank's range was fine: already expanded
            count = int(result.lines)
        else:
            i, j, v = result
            count = int(i.size)
            i, j, v = _expand(h, i, j, v)
        counts = np.array(comm.allgather(count), dtype=np.int64) if p > 1 \
            else np.array([count])
        table = None  # the send counts are recounted by the routing
    start, total = int(counts[:rank].sum()), int(counts.sum())
    if total > h.entries:
        first_line = line_numbers()
        with collective(comm):
            if start + count > h.entries >= start:
                lines = _parse_region(h, _text(region), first_line)[3]
                extra = int(lines[h.entries - start])
                raise UsageError(f"{h.path}:{extra}: more entries than the {h.entries} "
                                 f"declared on line {h.size_line}")
    region = b""  # the text is parsed: free it before the exchange
    if total < h.entries:
        raise UsageError(f"{h.path}:{h.size_line}: declares {h.entries} entries but the file has "
                         f"{total} (truncated?)")
    if table is not None and table.shape[1] == _FIXED + p:
        rcount = np.ascontiguousarray(table[:, _FIXED + rank])
    else:
        rcount = None
    if isinstance(result, _Packed):
        nnz = None
        if _no_duplicates(h, table):  # then the global entry count is the routed total
            nnz = int(result.packed.shape[0]) if p == 1 else \
                (int(table[:, _FIXED:].sum()) if table.shape[1] == _FIXED + p else None)
        return h, roff, _exchange_packed(comm, result.packed, result.counts, rcount, bufs), nnz
    if p == 1:
        return h, roff, (i, j, v), None
    return h, roff, _routing(comm, roff, i, j, v, dest, scount, rcount), None


def _no_duplicates(h: Header, table: np.ndarray | None) -> bool:
    """Whether the gathered order columns (:func:`hpc._core.mmio.parse_route`'s ``order``)
    prove that no two entries of the file, mirrors included, share a (row, column): every
    non-empty range strictly increasing in one key order, each range's first key above the
    previous one's last, and symmetric storage all in one triangle (the mirrors then lie in
    the other, strictly). Every rank decides the same from the same table."""
    if table is None or (table[:, 0] != _OK).any() or not (table[:, 4] & _ROUTED).all():
        return False  # some range was not parsed by the router: nothing is proved
    flags, keys = table[:, 4], table[:, 5:9]
    full = (flags & 16) != 0
    flags, keys = flags[full], keys[full]
    if flags.size == 0:
        return True
    if h.symmetry != "general" and not ((flags & 4).all() or (flags & 8).all()):
        return False
    for bit, first, last in ((1, 0, 1), (2, 2, 3)):
        if (flags & bit).all() and (keys[1:, first] > keys[:-1, last]).all():
            return True
    return False


def _exchange_packed(comm, packed: np.ndarray, scount: np.ndarray,
                     rcount: np.ndarray | None, bufs: dict | None = None) -> np.ndarray:
    """The one Alltoallv of rows already grouped by owner (no sort, no copy to pack), into
    the reused ``recv`` buffer of ``bufs`` when given."""
    p = comm.Get_size()
    if p == 1:
        return packed
    if rcount is None:
        rcount = np.empty(p, dtype=np.int64)
        comm.Alltoall(scount, rcount)
    got = _buffer(bufs, "recv", (int(rcount.sum()), 3), np.int64)
    sdisp = np.zeros(p, np.int64)
    np.cumsum(scount[:-1], out=sdisp[1:])
    rdisp = np.zeros(p, np.int64)
    np.cumsum(rcount[:-1], out=rdisp[1:])
    comm.Alltoallv([packed, (3 * scount, 3 * sdisp), MPI.INT64_T],
                   [got, (3 * rcount, 3 * rdisp), MPI.INT64_T])
    return got


def _routing(comm, roff, i, j, v, dest=None, scount=None, rcount=None):
    """Send every entry to its row owner in one Alltoallv of (i, j, the bits of v) packed
    as rows of three int64; the receive counts come from the caller's Allgather, else one
    Alltoall."""
    p = comm.Get_size()
    if p == 1:
        return i, j, v
    if dest is None:
        dest, scount = _owners(roff, i, p)
    order = np.argsort(dest, kind="stable")
    packed = np.empty((i.size, 3), dtype=np.int64)
    packed[:, 0] = i[order]
    packed[:, 1] = j[order]
    packed[:, 2] = np.ascontiguousarray(v, dtype=np.float64)[order].view(np.int64)
    got = _exchange_packed(comm, packed, scount, rcount)
    return got[:, 0], got[:, 1], np.ascontiguousarray(got[:, 2]).view(np.float64)


def _read_array(h: Header, comm):
    """An ``array`` file: every rank parses the whole (dense) file and keeps the nonzeros of
    its share of the columns as triplets (the row owners are found later, as for coordinate).
    Symmetric storage is returned as stored (the lower triangle) for read_matrix to mirror."""
    import fast_matrix_market as fmm

    p, r = comm.Get_size(), comm.Get_rank()
    with collective(comm):
        require_memory(8.0 * h.rows * h.cols, f"reading the dense {h.rows} x {h.cols} "
                       f"array {h.path}", comm)
        try:
            with open_input(h.path, "rb") as f:
                dense = fmm.read_array(f, parallelism=_threads())
        except (ValueError, RuntimeError, OSError, EOFError) as exc:
            raise UsageError(f"{h.path}: {exc}") from None
        dense = np.asarray(dense, dtype=np.float64)
        if not np.isfinite(dense).all():
            c = np.argwhere(~np.isfinite(dense))[0]
            raise UsageError(f"{h.path}: value at ({c[0] + 1}, {c[1] + 1}) is not finite")
    if h.symmetry != "general":
        dense = np.tril(dense, 0 if h.symmetry == "symmetric" else -1)
    c0, c1 = h.cols * r // p, h.cols * (r + 1) // p
    i, j = np.nonzero(dense[:, c0:c1])
    v = dense[i, j + c0]
    return i.astype(np.int64), (j + c0).astype(np.int64), v


def read_matrix(path: str | os.PathLike, comm=None, backend: str | None = None,
                row_offsets=None) -> DistCSR:
    """Read a Matrix Market file in parallel into a row-block :class:`DistCSR`. Collective.

    Every rank reads and parses its own byte range of the file (no rank holds the whole file)
    and the entries are routed to their row owners (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.mtx`` file in ``coordinate`` format with ``real``, ``integer`` or ``pattern``
        values and ``general``, ``symmetric`` or ``skew-symmetric`` symmetry (the same path on
        every rank).
    comm : mpi4py.MPI.Intracomm, optional
        None: ``MPI.COMM_WORLD``.
    backend : str, optional
        The local SpMV kernel of the result (default: the fastest available).
    row_offsets : array_like of int, optional
        The row partition (default: equal blocks).

    Returns
    -------
    DistCSR
        Symmetric and skew-symmetric storage expanded (the mirror of every off-diagonal entry
        added), duplicate entries summed, values float64. ``.mm_header`` holds the header.

    Raises
    ------
    InputTypeError
        (TypeError) ``path`` is not a str or path, or ``comm`` not an intracommunicator.
    UsageError
        (ValueError) a missing or malformed file (naming the file and line), on every rank.

    Notes
    -----
    Cost: O(file size / p) reading and parsing per rank; one Allgather (statuses and
    counts), one Alltoallv of the entries, and DistCSR's count of nonzeros.
    """
    comm = as_comm(comm)
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    with _scratch_lease() as bufs:  # the buffers are free again once the CSR is built
        h, roff, got, nnz = _entries(path, comm, row_offsets=row_offsets, bufs=bufs)
        lo, hi = int(roff[comm.Get_rank()]), int(roff[comm.Get_rank() + 1])
        router = _native_router() if isinstance(got, np.ndarray) else None
        if router is not None:  # canonical CSR straight from the received rows (a copy)
            indptr, indices, data = router[1](got, lo, hi - lo, h.cols)
            local = sp.csr_matrix((data, indices, indptr), shape=(hi - lo, h.cols))
            local.has_canonical_format = True
        else:
            if isinstance(got, np.ndarray):
                i, j = got[:, 0], got[:, 1]
                v = np.ascontiguousarray(got[:, 2]).view(np.float64)
            else:
                i, j, v = got
            local = sp.csr_matrix((v, (i - lo if lo else i, j)), shape=(hi - lo, h.cols))
            local.sum_duplicates()
        del got
    A = DistCSR(comm, local, (h.rows, h.cols), row_offsets=roff, backend=backend,
                canonical=True, nnz=nnz if router is not None else None)
    A.mm_header = h
    return A


def _format_entries(i: np.ndarray, j: np.ndarray, v: np.ndarray | None) -> bytes:
    buf = io.BytesIO()
    if v is None:
        np.savetxt(buf, np.column_stack((i, j)), fmt="%d %d")
    else:
        # %.17g round-trips every float64 exactly
        cols = np.rec.fromarrays([i, j, v], names="i,j,v")
        np.savetxt(buf, cols, fmt=["%d", "%d", "%.17g"])
    return buf.getvalue()


def write_mm(path: str | os.PathLike, A, comm=None, symmetric: bool = False,
             comment: str | None = None) -> None:
    """Write A (a DistCSR, collectively; or a SciPy matrix, serially) as coordinate real.

    With symmetric=True only the lower triangle is written, under a 'symmetric' banner (the
    caller asserts A is symmetric). Every rank writes its own rows at its byte offset (MPI-IO)
    into a private temporary file (:func:`hpc.core.atomic.atomic_path`) that rank 0 renames
    when all are done.
    """
    if isinstance(A, DistCSR):
        comm, local, lo, shape = A.comm, A.local, A.row_range[0], A.shape
    else:
        comm = comm or MPI.COMM_SELF
        local = sp.csr_matrix(A) if comm.Get_rank() == 0 else sp.csr_matrix((0, A.shape[1]))
        lo, shape = 0, A.shape
    coo = local.tocoo()
    i = coo.row.astype(np.int64) + lo
    j = coo.col.astype(np.int64)
    v = coo.data.astype(np.float64)
    if symmetric:
        keep = i >= j
        i, j, v = i[keep], j[keep], v[keep]
    order = np.lexsort((j, i))
    body = _format_entries(i[order] + 1, j[order] + 1, v[order])
    count = comm.allreduce(int(i.size))
    head = f"%%MatrixMarket matrix coordinate real {'symmetric' if symmetric else 'general'}\n"
    if comment:
        head += "".join(f"%{line}\n" for line in comment.splitlines())
    head += f"{shape[0]} {shape[1]} {count}\n"
    head_b = head.encode()
    offset = exscan(comm, len(body))
    with ExitStack() as stack:
        # Rank 0 creates the private temporary (hpc.core.atomic: O_EXCL, a random name,
        # removed on failure or a kill, renamed only over a regular file); every rank learns
        # its name, or every rank raises the same UsageError.
        tmp = None
        with collective(comm):
            if comm.Get_rank() == 0:
                tmp = str(stack.enter_context(atomic_path(path)))
        tmp = comm.bcast(tmp, root=0)
        fh = MPI.File.Open(comm, tmp, MPI.MODE_WRONLY)
        try:
            if comm.Get_rank() == 0:
                fh.Write_at(0, head_b)
            fh.Write_at_all(len(head_b) + offset, np.frombuffer(body, dtype=np.uint8))
        finally:
            fh.Close()
        comm.Barrier()  # every rank has written before rank 0 renames
    comm.Barrier()  # the file exists under its name for every rank on return
