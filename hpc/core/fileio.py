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
