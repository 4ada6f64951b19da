"""The silhouette (Rousseeuw 1987) and the medoid silhouette (Van der Laan et al. 2003;
Lenssen & Schubert 2022) of a clustering, over block-distributed points.

Both are means over points of a per-point value, so each rank sums over its own rows and the
sums are reduced. The silhouette needs, for every point, its mean distance to every cluster:
a pass over column tiles of the distance matrix (stored or recomputed), O(n^2 / p) distance
reads and O(n k / p) memory per rank. The medoid silhouette needs only the distances to the
k medoids: O(n k / p).
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .loops import progress
from .msc import ratio
from .oracle import Oracle, chunk_width


def medoid_silhouette_points(DM: np.ndarray) -> np.ndarray:
    """Per point, 1 - a/b from its distances to the k medoids (rows of DM): a, b the nearest
    and second nearest; a/b taken as 0 when a or b is 0 (the `kmedoids` package's rule).
    k = 1: 1 for every point (no second medoid: a/b counts as 0, as in the package)."""
    DM = np.asarray(DM, dtype=np.float64)
    if DM.shape[1] < 2:
        return np.ones(DM.shape[0])
    two = np.partition(DM, 1, axis=1)[:, :2]
    return 1.0 - ratio(two[:, 0], two[:, 1])


def medoid_silhouette(oracle: Oracle, medoids, comm) -> tuple[float, np.ndarray]:
    """(average over all points, this rank's per-point values); collective."""
    s = medoid_silhouette_points(oracle.cols(np.asarray(medoids, dtype=np.int64)))
    total = comm.allreduce(float(s.sum()), op=MPI.SUM)
    return total / oracle.n, s


def silhouette(oracle: Oracle, labels: np.ndarray, comm) -> tuple[float, np.ndarray]:
    """The silhouette of the clustering ``labels`` (all n labels, on every rank): per point
    (b - a) / max(a, b), a the mean distance to the other members of its cluster, b the least
    mean distance to another cluster; 0 for a point alone in its cluster (Rousseeuw 1987).
    Returns (average over all points, this rank's per-point values); collective."""
    labels = np.asarray(labels, dtype=np.int64)
    _, lab = np.unique(labels, return_inverse=True)  # clusters numbered 0..c-1
    c = int(lab.max()) + 1 if lab.size else 0
    size = np.bincount(lab, minlength=c).astype(np.float64)
    nl, n = oracle.n_local, oracle.n
    sums = np.zeros((nl, c))
    w = chunk_width(n, nl, c)
    prog = progress(n, "silhouette", comm, unit="pts")
    for c0 in range(0, n, w):
        c1 = min(n, c0 + w)
        prog.set(c0)
        T = np.asarray(oracle.K.to_host(oracle.tile(c0, c1)), dtype=np.float64)
        onehot = np.zeros((c1 - c0, c))
        onehot[np.arange(c1 - c0), lab[c0:c1]] = 1.0
        sums += T @ onehot
    prog.close()
    mine = lab[oracle.row0:oracle.row0 + nl]
    r = np.arange(nl)
    own = size[mine]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(own > 1, sums[r, mine] / np.maximum(own - 1, 1), 0.0)
        other = sums / size[None, :]
        other[r, mine] = np.inf
        b = other.min(axis=1) if c > 1 else np.zeros(nl)
        den = np.maximum(a, b)
        s = np.where((own > 1) & (den > 0), (b - a) / np.where(den > 0, den, 1.0), 0.0)
    if c < 2:
        s = np.zeros(nl)
    total = comm.allreduce(float(s.sum()), op=MPI.SUM)
    return total / n, s
