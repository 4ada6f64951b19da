"""Column renumbering of a rank's block for the distributed SpGEMM and ``ptap``.

A rank multiplies its rows of A by the rows of B its columns name, so its columns are renumbered
to positions in the sorted list of the columns it uses. ``np.unique`` + ``np.searchsorted`` sort
the nnz indices (on hpcg:64, 0.8 s of the AMG setup's 1.2 s in ``ptap``); the native marker
array (native/src/spgemm_renumber.cpp) does it in O(nnz + ncols). A block whose columns all lie
in one range (one rank, or a rank whose rows name no ghost column) needs no renumbering at all:
see :func:`within`.
"""
from __future__ import annotations

import numpy as np

_CORE: list = []


def _core():
    if not _CORE:
        from hpc import _core

        _CORE.append(_core.spgemm_renumber)
    return _CORE[0]


def renumber(indices: np.ndarray, ncols: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct columns of ``indices`` and each index's position among them.

    Parameters
    ----------
    indices : numpy.ndarray of int
        Column indices, each in ``[0, ncols)``.
    ncols : int
        The number of columns (the marker array's length).

    Returns
    -------
    used : numpy.ndarray of int64
        ``np.unique(indices)``.
    positions : numpy.ndarray
        ``np.searchsorted(used, indices)``, int32 for int32 indices, else int64.

    Raises
    ------
    ValueError
        An index outside ``[0, ncols)`` or a negative ``ncols``.
    """
    idx = np.ascontiguousarray(indices)
    if idx.dtype != np.int32:
        idx = np.ascontiguousarray(idx, dtype=np.int64)
    core = _core()
    fn = core.renumber_i32 if idx.dtype == np.int32 else core.renumber_i64
    return fn(idx, int(ncols))


def within(indices: np.ndarray, lo: int, hi: int) -> bool:
    """Whether every index lies in ``[lo, hi)`` (True for none): then the block's columns are
    the range's, shifted by ``lo``, and need no renumbering."""
    if indices.size == 0:
        return True
    return int(indices.min()) >= lo and int(indices.max()) < hi
