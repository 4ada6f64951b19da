"""Byte-level token streams and the global batch of each step, a function of (seed, step).

Every rank draws the same global batch and takes its data-parallel share, so the tokens a
step trains on do not depend on the layout.
"""
from __future__ import annotations

import numpy as np

from hpc.core import UsageError

SYNTHETIC_TOKENS = 1 << 17


def load_text(path: str, vocab: int) -> np.ndarray:
    """The file's bytes as tokens (int64)."""
    if vocab < 256:
        raise UsageError(f"--data gives byte-level tokens: --vocab must be at least 256 "
                         f"(got {vocab})")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise UsageError(f"--data {path}: {err.strerror or err}") from None
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)


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


def global_batch(tokens: np.ndarray, seed: int, step: int, batch: int, seq_len: int) -> np.ndarray:
    """(batch, seq_len + 1) token windows of the corpus for step `step` (inputs and targets)."""
    n = tokens.shape[0] - seq_len - 1
    if n <= 0:
        raise UsageError(f"the corpus has {tokens.shape[0]} tokens, fewer than --seq-len + 2")
    rng = np.random.default_rng([seed, step, 0xBA7C])
    starts = rng.integers(0, n + 1, size=batch)
    return tokens[starts[:, None] + np.arange(seq_len + 1)]
