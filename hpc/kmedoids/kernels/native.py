"""Native kernels: C++17/OpenMP in hpc._core.kmedoids (native/src/kmedoids.cpp)."""
from __future__ import annotations

import numpy as np

from hpc import _core

from . import numpy_

xp = np
_k = _core.kmedoids


def to_host(a):
    return np.asarray(a)


def dist(A, B, metric):
    return _k.dist(np.ascontiguousarray(A, dtype=np.float64),
                   np.ascontiguousarray(B, dtype=np.float64), metric)


def colsum(D):
    return _k.colsum(D)


def build_gain(D, near_d):
    return _k.build_gain(D, near_d)


def fastpam_delta(D, near_i, near_d, seco_d, k):
    return _k.fastpam_delta(D, near_i, near_d, seco_d, int(k))


def pam_delta(D, near_i, near_d, seco_d, k):
    return _k.pam_delta(D, near_i, near_d, seco_d, int(k))


# PAMMEDSIL (the slow baseline) stays vectorised NumPy on every host back end
pammedsil_gain = numpy_.pammedsil_gain


def msc_delta(D, near_i, seco_i, near_d, seco_d, third_d, k):
    return _core.kmedoids_msc.msc_delta(D, near_i, seco_i, near_d, seco_d, third_d, int(k))


def msc2_loss(D, d0, d1):
    return _core.kmedoids_msc.msc2_loss(D, np.ascontiguousarray(d0), np.ascontiguousarray(d1))


def dist_as(A, B, metric, dtype):
    """Distances stored as dtype ('float32': each float64 distance rounded once, no float64
    tile in between)."""
    return _k.dist(np.ascontiguousarray(A, dtype=np.float64),
                   np.ascontiguousarray(B, dtype=np.float64), metric, dtype)
