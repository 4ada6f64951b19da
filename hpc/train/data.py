"""Byte-level token streams and the global batch of each step, a function of (seed, step).

Every rank draws the same global batch and takes its data-parallel share, so the tokens a
step trains on do not depend on the layout.
"""
from __future__ import annotations

import os
from typing import Union

import numpy as np

from hpc.core.errors import InputTypeError, UsageError

from .validate import arg

SYNTHETIC_TOKENS = 1 << 17
TRAIN_SALT = 0xBA7C   # the random stream of the training batches
EVAL_SALT = 0xE7A1    # ... and of the evaluation batches: never the same windows by chance

#: What a Trainer trains on: None (a seeded synthetic corpus), a text file's path (its bytes),
#: bytes, or a 1-D integer array of token ids.
Data = Union[None, str, "os.PathLike[str]", bytes, np.ndarray]


def _byte_level(vocab: int) -> None:
    if vocab < 256:
        raise UsageError(f"{arg('data')} gives byte-level tokens: {arg('vocab')} must be at "
                         f"least 256 (got {vocab})")


def load_text(path: str | os.PathLike, vocab: int) -> np.ndarray:
    """The file's bytes as tokens (int64)."""
    _byte_level(vocab)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise UsageError(f"{arg('data')} {path}: {err.strerror or err}") from None
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)


def tokens_from(data: Data, vocab: int, seq_len: int, seed: int) -> np.ndarray:
    """The token stream (int64, 1-D) a run trains on, from any accepted form of ``data``.

    Raises
    ------
    TypeError
        ``data`` of another type, or an array that is not 1-D integer.
    ValueError
        Ids outside [0, vocab), bytes with vocab < 256, an unreadable file, or fewer than
        seq_len + 2 tokens.
    """
    if data is None:
        tokens = synthetic(seed, vocab)
    elif isinstance(data, (str, os.PathLike)):
        tokens = load_text(data, vocab)
    elif isinstance(data, (bytes, bytearray)):
        _byte_level(vocab)
        tokens = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64)
    elif isinstance(data, np.ndarray):
        if data.ndim != 1 or not np.issubdtype(data.dtype, np.integer):
            raise InputTypeError(f"{arg('data')} must be a 1-D integer array of token ids, got "
                                 f"{data.ndim}-D {data.dtype}")
        if data.size and (int(data.min()) < 0 or int(data.max()) >= vocab):
            raise UsageError(f"{arg('data')} has token ids in [{int(data.min())}, "
                             f"{int(data.max())}], outside [0, {arg('vocab')} {vocab})")
        tokens = data.astype(np.int64)
    else:
        raise InputTypeError(f"{arg('data')} must be None, a text file's path, bytes or a 1-D "
                             f"integer array, got {type(data).__name__}")
    if tokens.shape[0] < seq_len + 2:
        where = f" {data}" if isinstance(data, (str, os.PathLike)) else ""
        raise UsageError(f"{arg('data')}{where}: {tokens.shape[0]} tokens, fewer than "
                         f"{arg('seq_len')} + 2")
    return tokens


def synthetic(seed: int, vocab: int, n: int = SYNTHETIC_TOKENS) -> np.ndarray:
    """A seeded corpus with learnable structure: a sparse first-order Markov chain (each token
    has four likely successors), so training visibly lowers the loss."""
    rng = np.random.default_rng([seed, 0x5EED])
    succ = rng.integers(0, vocab, size=(vocab, 4))
    choice = rng.integers(0, 4, size=n)
    noise = rng.random(n) < 0.1
    rand = rng.integers(0, vocab, size=n)
    out = np.empty(n, dtype=np.int64)
    t = int(rng.integers(0, vocab))
    for i in range(n):  # sequential by nature; 128k steps take well under a second
        t = int(rand[i]) if noise[i] else int(succ[t, choice[i]])
        out[i] = t
    return out


def global_batch(tokens: np.ndarray, seed: int, step: int, batch: int, seq_len: int,
                 salt: int = TRAIN_SALT) -> np.ndarray:
    """(batch, seq_len + 1) token windows of the corpus for step `step` (inputs and targets),
    drawn from the random stream (seed, step, salt)."""
    n = tokens.shape[0] - seq_len - 1
    if n <= 0:
        raise UsageError(f"the corpus has {tokens.shape[0]} tokens, fewer than "
                         f"{arg('seq_len')} + 2")
    rng = np.random.default_rng([seed, step, salt])
    starts = rng.integers(0, n + 1, size=batch)
    return tokens[starts[:, None] + np.arange(seq_len + 1)]
