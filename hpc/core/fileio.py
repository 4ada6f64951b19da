"""Opening input files as people have them: plain, gzip, bzip2 or xz.

SNAP graphs and Matrix Market collections are distributed compressed (``.txt.gz``,
``.mtx.gz``, ``.tar.xz`` members...). :func:`open_input` recognises the compression from the
file's first bytes (not its name, so a renamed file still opens) and returns a stream of the
decompressed content.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from typing import IO

#: magic bytes at the start of each compressed format
_MAGIC = {
    "gzip": b"\x1f\x8b",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
}


def compression(path: str | os.PathLike) -> str | None:
    """``"gzip"``, ``"bz2"`` or ``"xz"`` when the file starts with that format's magic bytes,
    else None (a plain file)."""
    with open(path, "rb") as f:
        head = f.read(6)
    for name, magic in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def open_input(path: str | os.PathLike, mode: str = "rb", encoding: str | None = None) -> IO:
    """Open ``path`` for reading, decompressing gzip, bzip2 and xz transparently.

    Parameters
    ----------
    path : str or path-like
        The file. Its compression is read from its first bytes.
    mode : {"rb", "r", "rt"}
        Binary (default) or text.
    encoding : str, optional
        For text mode (default UTF-8).

    Returns
    -------
    file object
        A readable stream of the decompressed bytes (or text). Close it (use ``with``).

    Raises
    ------
    ValueError
        For a mode other than reading.
    OSError
        When the file cannot be opened, or is corrupt when read.
    """
    if mode not in ("rb", "r", "rt"):
        raise ValueError(f"open_input: mode must be 'rb', 'r' or 'rt', got {mode!r}")
    kind = compression(path)
    raw: IO[bytes]
    if kind == "gzip":
        raw = gzip.open(path, "rb")
    elif kind == "bz2":
        raw = bz2.open(path, "rb")
    elif kind == "xz":
        raw = lzma.open(path, "rb")
    else:
        raw = open(path, "rb")
    if mode == "rb":
        return raw
    return io.TextIOWrapper(raw, encoding=encoding or "utf-8")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole decompressed content of ``path``."""
    with open_input(path, "rb") as f:
        return f.read()


def take_lines(f: IO[bytes], first: int, stop: int | None, chunk: int = 1 << 22) -> bytes:
    """Lines ``first`` .. ``stop - 1`` (0-based, counted from the stream's position; ``stop``
    None: to the end) of a binary stream read in 4 MiB chunks, keeping only those bytes: how
    a rank takes its share of a compressed file, which has no byte offsets to seek to."""
    import numpy as np

    out = []
    line = 0
    while True:
        buf = f.read(chunk)
        if not buf:
            break
        n = buf.count(b"\n")
        if line + n < first:
            line += n
            continue
        nl = None
        if line < first or (stop is not None and line + n >= stop):
            nl = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
        s0 = 0 if line >= first else int(nl[first - line - 1]) + 1
        if stop is not None and line + n >= stop:
            e0 = int(nl[stop - line - 1]) + 1 if stop > line else 0
            out.append(buf[s0:e0])
            break
        out.append(buf[s0:])
        line += n
    return b"".join(out)


def count_lines(path: str | os.PathLike) -> int:
    """Lines in the decompressed content (a last line without a newline counts)."""
    n, last = 0, b"\n"
    with open_input(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def line_share(path: str | os.PathLike, p: int, r: int) -> bytes:
    """Rank ``r`` of ``p``'s block of the lines of a (compressed) text file: every rank
    decompresses the stream twice (count, then take), holding only its own lines."""
    total = count_lines(path)
    with open_input(path, "rb") as f:
        return take_lines(f, total * r // p, total * (r + 1) // p if r < p - 1 else None)
