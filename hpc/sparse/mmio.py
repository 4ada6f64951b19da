"""Parallel Matrix Market I/O: every rank reads and parses its own byte range of the file.

Reader: the header (banner, comments, size line) is read by every rank (it is short); the
entry lines are split into p byte ranges, a line belonging to the rank whose range holds its
first byte, so no rank ever holds the whole file and nothing is gathered on rank 0. Each rank
learns the line number of its first line from an exclusive scan of newline counts, so every
error names the file and line. Entries are then routed to their row owners (Alltoallv).

Supported: ``coordinate`` with ``real``, ``integer`` or ``pattern`` fields and ``general``,
``symmetric`` or ``skew-symmetric`` symmetry. Checked: the banner, the size line, the number
of tokens per entry line, numeric fields, 1-based index ranges, the declared entry count
(too few = truncated file, too many). Errors are UsageError, agreed on all ranks.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import exscan
from hpc.core.runtime import as_comm
from hpc.core.partition import block_offsets, exchange_by_owner
from hpc.core.runtime import collective

from .dcsr import DistCSR

FIELDS = ("real", "integer", "pattern")
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
    data_start: int   # byte offset of the first line after the size line


def read_header(path: str | os.PathLike) -> Header:
    """Parse banner, comments and size line; UsageError names the file and line."""
    name = str(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"{name}: cannot open ({exc.strerror})") from None
    with f:
        first = f.readline()
        banner = first.decode("latin-1").split()
        if len(banner) < 5 or banner[0].lower() != "%%matrixmarket":
            raise UsageError(f"{name}:1: not a Matrix Market file (expected a '%%MatrixMarket' banner)")
        obj, fmt, field, sym = (t.lower() for t in banner[1:5])
        if obj != "matrix":
            raise UsageError(f"{name}:1: object '{obj}' not supported (only 'matrix')")
        if fmt != "coordinate":
            raise UsageError(f"{name}:1: format '{fmt}' not supported (only 'coordinate')")
        if field not in FIELDS:
            raise UsageError(f"{name}:1: field '{field}' not supported (supported: {', '.join(FIELDS)})")
        if sym not in SYMMETRIES:
            raise UsageError(f"{name}:1: symmetry '{sym}' not supported (supported: {', '.join(SYMMETRIES)})")
        lineno = 1
        while True:
            raw = f.readline()
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
            if len(parts) != 3 or len(vals) != 3:
                raise UsageError(f"{name}:{lineno}: bad size line {text[:60]!r} (expected 'rows cols entries')")
            m, n, nnz = vals
            if m < 0 or n < 0 or nnz < 0:
                raise UsageError(f"{name}:{lineno}: negative size in {text!r}")
            if sym != "general" and m != n:
                raise UsageError(f"{name}:{lineno}: a {sym} matrix must be square, got {m} x {n}")
            return Header(name, field, sym, m, n, nnz, lineno, f.tell())


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


def read_local_entries(path, comm):
    """Header plus this rank's parsed entries (0-based), with the declared count checked."""
    p, r = comm.Get_size(), comm.Get_rank()
    h = None
    with collective(comm):
        h = read_header(path)
    size = os.path.getsize(path)
    span = size - h.data_start
    lo = h.data_start + span * r // p
    hi = h.data_start + span * (r + 1) // p
    result = None
    with open(path, "rb") as f:
        s0 = _line_start_at_or_after(f, lo, h.data_start, size)
        e0 = _line_start_at_or_after(f, hi, h.data_start, size) if r < p - 1 else size
        f.seek(s0)
        region = f.read(max(0, e0 - s0))
    nl = region.count(b"\n")
    first_line = h.size_line + 1 + exscan(comm, nl)
    with collective(comm):
        result = _parse_region(h, region, first_line)
    del region
    i, j, v, lines = result
    count = i.size
    start = exscan(comm, count)
    total = comm.allreduce(count)
    with collective(comm):
        if total > h.entries and start + count > h.entries >= start:
            extra = int(lines[h.entries - start])
            raise UsageError(f"{h.path}:{extra}: more entries than the {h.entries} declared on "
                             f"line {h.size_line}")
    if total < h.entries:
        raise UsageError(f"{h.path}:{h.size_line}: declares {h.entries} entries but the file has "
                         f"{total} (truncated?)")
    return h, i, j, v


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
    Cost: O(file size / p) reading and parsing per rank, one Alltoallv of the entries.
    """
    comm = as_comm(comm)
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    h, i, j, v = read_local_entries(path, comm)
    if h.symmetry != "general":
        off = i != j
        sign = -1.0 if h.symmetry == "skew-symmetric" else 1.0
        i, j, v = (np.concatenate((i, j[off])), np.concatenate((j, i[off])),
                   np.concatenate((v, sign * v[off])))
    p, r = comm.Get_size(), comm.Get_rank()
    roff = block_offsets(h.rows, p) if row_offsets is None else np.asarray(row_offsets, np.int64)
    dest = np.searchsorted(roff, i, side="right") - 1
    ri, rj, rv = exchange_by_owner(comm, dest, [np.asarray(i, np.int64), np.asarray(j, np.int64),
                                                np.asarray(v, np.float64)])
    lo, hi = int(roff[r]), int(roff[r + 1])
    local = sp.csr_matrix((rv, (ri - lo, rj)), shape=(hi - lo, h.cols))
    local.sum_duplicates()
    A = DistCSR(comm, local, (h.rows, h.cols), row_offsets=roff, backend=backend)
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
    into a temporary file that rank 0 renames when all are done.
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
    target = Path(path)
    tmp = comm.bcast(str(target.with_name(f".{target.name}.tmp.{os.getpid()}"))
                     if comm.Get_rank() == 0 else None, root=0)
    fh = MPI.File.Open(comm, tmp, MPI.MODE_WRONLY | MPI.MODE_CREATE)
    try:
        fh.Set_size(0)
        if comm.Get_rank() == 0:
            fh.Write_at(0, head_b)
        fh.Write_at_all(len(head_b) + offset, np.frombuffer(body, dtype=np.uint8))
    finally:
        fh.Close()
    comm.Barrier()
    if comm.Get_rank() == 0:
        os.replace(tmp, target)
    comm.Barrier()
