"""Compute kernels of hpc.kmedoids, one module per back end, all with the same functions.

Every back end provides (D is a tile: local rows x candidate columns, any row stride):
  dist(A, B, metric)                      -> (len(A), len(B)) float64 distances
  colsum(D)                               -> per column, sum over rows
  build_gain(D, near_d)                   -> per column c, sum_o min(D[o,c] - near_d[o], 0)
  fastpam_delta(D, near_i, near_d, seco_d, k) -> (nc, k+1): per candidate, the FastPAM1 loss
      change per removed medoid (without the removal loss) and, in column k, the shared term
  pam_delta(D, near_i, near_d, seco_d, k)  -> (nc, k): the original PAM's ΔTD, one pass per medoid
  msc_delta(D, near_i, seco_i, near_d, seco_d, third_d, k) -> (nc, k+1): FastMSC's gains
  msc2_loss(D, d0, d1)                     -> (nc, 2): the medoid silhouette loss at k = 2
  pammedsil_gain(D, near_i, seco_i, near_d, seco_d, third_d, k, skip) -> (nc, k)
Plus ``xp`` (the array module tiles live in) and ``to_host``. Tiles may be float32 (--dtype
float32); every sum is float64. A back end may add ``dist_as(A, B, metric, dtype)`` to produce
float32 distances without a float64 tile in between.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# back end name -> (module, hpc.core.backends entry it needs)
BACKENDS: dict[str, tuple[str, str]] = {
    "native": ("native", "native"),
    "numba": ("numba_", "numba"),
    "numpy": ("numpy_", "numpy"),
    "cupy": ("cupy_", "cupy"),
}

METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine")


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{BACKENDS[name][0]}")
