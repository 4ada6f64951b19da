"""Random sparse graph generators, distributed: R-MAT / Graph500 Kronecker and Erdos-Renyi.

Both return this rank's share of a global edge list as ``(src, dst)`` int64 arrays. The edge
list is split into fixed chunks of :data:`CHUNK` edges; chunk ``j`` draws from its own
stream ``SeedSequence([seed, tag, j])``, and rank r generates the chunks of its block
(``hpc.core.partition.block_range``). So the global edge list (the concatenation over ranks in
rank order) depends only on the seed and the parameters, never on the number of ranks, and no
rank holds more than its share.

Edges are raw draws: duplicates and self-loops are kept (Graph500 semantics); the caller
decides whether to sum, binarise or symmetrise them (e.g. ``hpc.spgemm`` builds a 0/1
adjacency matrix, a PageRank app can keep multi-edges as weights).

Used by ``hpc.spgemm --generate rmat:SCALE:EF / er:N:DEG`` and ``hpc.pagerank --generate
kron:SCALE:EF``.
"""
from __future__ import annotations

import numpy as np

from hpc.core.partition import block_range

CHUNK = 1 << 16  # edges per independent random stream
_TAG_RMAT, _TAG_PERM, _TAG_ER = 0x524D4154, 0x5045524D, 0x4552  # stream tags ("RMAT", ...)


def _chunks(m: int, comm) -> range:
    """The chunk ids of this rank's block of an m-edge list."""
    nchunks = (m + CHUNK - 1) // CHUNK
    lo, hi = block_range(nchunks, comm.Get_size() if comm is not None else 1,
                         comm.Get_rank() if comm is not None else 0)
    return range(lo, hi)


def _rng(seed: int, tag: int, j: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & (2**63 - 1), tag, j])))


def rmat_vertex_permutation(scale: int, seed: int) -> np.ndarray:
    """The random relabelling of the 2**scale vertices (same on every rank; int64)."""
    return _rng(seed, _TAG_PERM, 0).permutation(1 << scale).astype(np.int64)


def rmat_edges(scale: int, edgefactor: int, seed: int, comm=None, a: float = 0.57,
               b: float = 0.19, c: float = 0.19, permute: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """This rank's share of an R-MAT graph with 2**scale vertices and edgefactor * 2**scale edges.

    Each edge picks one of the four quadrants of the adjacency matrix at each of `scale` levels,
    with probabilities a, b, c and d = 1 - a - b - c (Graph500 Kronecker: 0.57, 0.19, 0.19,
    0.05), one uniform draw per level. With ``permute`` (Graph500), vertex labels are relabelled
    by a random permutation drawn from the seed, so the high-degree vertices are not all near 0.

    Returns int64 arrays ``src, dst`` in [0, 2**scale); concatenating every rank's arrays in rank
    order gives the same global edge list for any number of ranks.
    """
    if not (1 <= scale <= 40):
        raise ValueError(f"rmat: scale must be in 1..40, got {scale}")
    if edgefactor < 1:
        raise ValueError(f"rmat: edgefactor must be >= 1, got {edgefactor}")
    d = 1.0 - a - b - c
    if min(a, b, c, d) < 0:
        raise ValueError(f"rmat: probabilities a={a}, b={b}, c={c} must be >= 0 and sum to <= 1")
    m = int(edgefactor) << int(scale)
    ab, abc = a + b, a + b + c
    srcs, dsts = [], []
    for j in _chunks(m, comm):
        k = min(CHUNK, m - j * CHUNK)
        u = _rng(seed, _TAG_RMAT, j).random((scale, k))
        src = np.zeros(k, dtype=np.int64)
        dst = np.zeros(k, dtype=np.int64)
        for lvl in range(scale):
            ul = u[lvl]
            # quadrant (row bit, col bit): a=(0,0), b=(0,1), c=(1,0), d=(1,1)
            src |= (ul >= ab).astype(np.int64) << lvl
            dst |= ((ul >= a) & (ul < ab) | (ul >= abc)).astype(np.int64) << lvl
        srcs.append(src)
        dsts.append(dst)
    src = np.concatenate(srcs) if srcs else np.zeros(0, np.int64)
    dst = np.concatenate(dsts) if dsts else np.zeros(0, np.int64)
    if permute:
        perm = rmat_vertex_permutation(scale, seed)
        src, dst = perm[src], perm[dst]
    return src, dst


def er_edges(n: int, deg: float, seed: int, comm=None) -> tuple[np.ndarray, np.ndarray]:
    """This rank's share of an Erdos-Renyi graph: round(n * deg) uniform random (src, dst) pairs.

    G(n, M) with replacement: every pair is drawn independently and uniformly from n x n, so
    each row has on average `deg` entries (slightly fewer distinct ones after removing
    duplicates). Same rank-count independence as :func:`rmat_edges`.
    """
    if n < 1:
        raise ValueError(f"er: n must be >= 1, got {n}")
    if deg < 0:
        raise ValueError(f"er: degree must be >= 0, got {deg}")
    m = int(round(n * deg))
    srcs, dsts = [], []
    for j in _chunks(m, comm):
        k = min(CHUNK, m - j * CHUNK)
        e = _rng(seed, _TAG_ER, j).integers(0, n, size=(2, k), dtype=np.int64)
        srcs.append(e[0])
        dsts.append(e[1])
    src = np.concatenate(srcs) if srcs else np.zeros(0, np.int64)
    dst = np.concatenate(dsts) if dsts else np.zeros(0, np.int64)
    return src, dst
