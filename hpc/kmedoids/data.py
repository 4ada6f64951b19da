"""Input: .npy / .csv / .h5 (dataset /X) read in row blocks by every rank, or a generator.

Every check that can fail on only some ranks (a ragged or non-numeric CSV line, a NaN row in
one rank's block) is agreed collectively, so bad input is one ``error:`` line and exit 2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from hpc.core import UsageError, agree
from hpc.core.memory import require_memory
from hpc.core.partition import block_range

GEN_CHUNK = 1 << 16  # generated rows come in fixed chunks: the data do not depend on the ranks


@dataclass
class Local:
    X: np.ndarray   # this rank's rows, float64 (a row block of the distance matrix if precomputed)
    n: int
    d: int
    row0: int
    source: str


def parse_generator(spec: str) -> tuple[str, list[int]] | None:
    kind, _, rest = spec.partition(":")
    if kind not in ("blobs", "uniform") or not rest:
        return None
    parts = rest.split(":")
    want = 3 if kind == "blobs" else 2
    if len(parts) != want:
        raise UsageError(f"--data {spec}: expected {kind}:N:D" + (":K" if kind == "blobs" else ""))
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--data {spec}: N, D{', K' if kind == 'blobs' else ''} must be integers") from None
    if any(v <= 0 for v in vals):
        raise UsageError(f"--data {spec}: N, D{', K' if kind == 'blobs' else ''} must be positive")
    return kind, vals


def _generate(kind: str, vals: list[int], seed: int, lo: int, hi: int) -> np.ndarray:
    n, d = vals[0], vals[1]
    out = np.empty((hi - lo, d))
    centers = None
    if kind == "blobs":
        centers = np.random.default_rng([seed, 1 << 30]).uniform(-10.0, 10.0, size=(vals[2], d))
    for c in range(lo // GEN_CHUNK, (hi + GEN_CHUNK - 1) // GEN_CHUNK if hi > lo else 0):
        c0, c1 = c * GEN_CHUNK, min(n, (c + 1) * GEN_CHUNK)
        rng = np.random.default_rng([seed, c])
        if kind == "blobs":
            lab = rng.integers(0, vals[2], size=c1 - c0)
            blk = centers[lab] + rng.standard_normal((c1 - c0, d))
        else:
            blk = rng.random((c1 - c0, d))
        a, b = max(lo, c0), min(hi, c1)
        out[a - lo:b - lo] = blk[a - c0:b - c0]
    return out


def _csv_lines(path: str) -> tuple[list[tuple[int, bytes]], int]:
    """Data lines (number, text) of a CSV (plain, .gz, .bz2 or .xz), without comments,
    blanks and a header line."""
    from hpc.core.fileio import open_input

    try:
        with open_input(path, "rb") as f:
            raw = f.read().splitlines()
    except (OSError, EOFError) as e:
        raise UsageError(f"--data {path}: cannot read ({e.__class__.__name__})") from None
    lines = [(i + 1, t) for i, t in enumerate(raw) if t.strip() and not t.lstrip().startswith(b"#")]
    if lines:
        try:
            [float(x) for x in lines[0][1].replace(b",", b" ").split()]
        except ValueError:
            lines = lines[1:]  # a header
    return lines, len(raw)


def _csv_rows(spec: str, lines: list[tuple[int, bytes]], d: int) -> tuple[np.ndarray, str | None]:
    """This rank's CSV lines as a float array, parsed by NumPy (C) in one call; on a fault,
    line by line to name the line. Returns (rows, error or None)."""
    import io

    if not lines:
        return np.empty((0, d)), None
    block = b"\n".join(t for _, t in lines).replace(b",", b" ")
    try:
        X = np.loadtxt(io.BytesIO(block), dtype=np.float64, ndmin=2, comments=None)
        if X.shape != (len(lines), d):
            raise ValueError("ragged")
    except ValueError:
        X = np.empty((len(lines), d))
        for r, (num, text) in enumerate(lines):
            fields = text.replace(b",", b" ").split()
            if len(fields) != d:
                return X, f"--data {spec}: line {num}: expected {d} fields, got {len(fields)} (ragged CSV)"
            try:
                X[r] = [float(x) for x in fields]
            except ValueError:
                return X, f"--data {spec}: line {num}: not a number"
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        return X, f"--data {spec}: line {lines[int(bad[0])][0]}: NaN or infinite value"
    return X, None


def read(spec: str, comm, seed: int, precomputed: bool = False) -> Local:
    """This rank's block of rows (collective: errors on any rank become exit 2 everywhere)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    gen = parse_generator(spec)
    if gen is not None:
        if precomputed:
            raise UsageError("--metric precomputed needs --data PATH (a distance matrix file)")
        kind, vals = gen
        n, d = vals[0], vals[1]
        # before generating: the points are replicated on every rank for the distance tiles
        require_memory(8.0 * n * d * 2, f"--data {spec}: the {n} x {d} points on every rank",
                       comm)
        lo, hi = block_range(n, size, rank)
        return Local(_generate(kind, vals, seed, lo, hi), n, d, lo, spec)
    if not os.path.exists(spec):
        raise UsageError(f"--data {spec}: no such file")
    if os.path.getsize(spec) == 0:
        raise UsageError(f"--data {spec}: empty file")
    ext = os.path.splitext(spec)[1].lower()
    if ext in (".gz", ".bz2", ".xz"):  # a compressed CSV (read through hpc.core.fileio)
        ext = os.path.splitext(spec[:-len(ext)])[1].lower()
        if ext != ".csv":
            raise UsageError(f"--data {spec}: only a .csv may be compressed (.csv.gz, .csv.bz2, .csv.xz)")
    err = None
    X = np.empty((0, 0))
    if ext == ".csv":
        lines, _ = _csv_lines(spec)
        if not lines:
            raise UsageError(f"--data {spec}: no data rows")
        n = len(lines)
        d = len(lines[0][1].replace(b",", b" ").split())
        lo, hi = block_range(n, size, rank)
        X, err = _csv_rows(spec, lines[lo:hi], d)  # each rank parses only its own rows
    elif ext in (".npy", ".h5", ".hdf5"):
        try:
            if ext == ".npy":
                A = np.load(spec, mmap_mode="r", allow_pickle=False)
                shape = A.shape
            else:
                import h5py

                f = h5py.File(spec, "r")
                if "X" not in f:
                    f.close()
                    raise UsageError(f"--data {spec}: no dataset /X")
                A = f["X"]
                shape = A.shape
        except UsageError:
            raise
        except Exception as e:  # noqa: BLE001 - unreadable or corrupt file
            raise UsageError(f"--data {spec}: cannot read ({str(e).splitlines()[0][:120]})") from None
        if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
            raise UsageError(f"--data {spec}: expected a non-empty 2-D array, got shape {tuple(shape)}")
        n, d = int(shape[0]), int(shape[1])
        lo, hi = block_range(n, size, rank)
        try:
            X = np.asarray(A[lo:hi], dtype=np.float64)
        except (TypeError, ValueError):
            err = f"--data {spec}: not numeric"
        if ext != ".npy":
            f.close()
        if err is None:
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            if bad.size:
                err = f"--data {spec}: row {lo + int(bad[0])}: NaN or infinite value"
    else:
        raise UsageError(f"--data {spec}: unknown format (use .npy, .csv, .h5 or a generator)")
    agree(comm, err)
    lo, _ = block_range(n, size, rank)
    if precomputed:
        err = None
        if d != n:
            err = f"--data {spec}: a precomputed distance matrix must be square, got {n} x {d}"
        elif (X < 0).any():
            err = f"--data {spec}: negative distance"
        elif X.shape[0] and not (X[np.arange(X.shape[0]), lo + np.arange(X.shape[0])] == 0).all():
            err = f"--data {spec}: the diagonal of a distance matrix must be 0"
        agree(comm, err)
    return Local(np.ascontiguousarray(X), n, d, lo, spec)


def allgather_rows(X_local: np.ndarray, n: int, comm) -> np.ndarray:
    """Every rank's rows, concatenated in rank order, on every rank."""
    if comm.Get_size() == 1:
        return X_local
    d = X_local.shape[1]
    counts = np.array(comm.allgather(X_local.shape[0]), dtype=np.int64) * d
    out = np.empty((n, d))
    displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
    comm.Allgatherv(np.ascontiguousarray(X_local), [out, counts, displs, MPI.DOUBLE])
    return out
