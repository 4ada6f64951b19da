"""hpc.spgemm.renumber (native marker-array renumbering) against np.unique + np.searchsorted."""
from __future__ import annotations

import numpy as np
import pytest

from hpc.spgemm.renumber import renumber, within


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("nnz,ncols", [(0, 0), (0, 7), (1, 1), (50, 10), (200, 1000),
                                       (5000, 300)])
def test_renumber_matches_unique_searchsorted(dtype, nnz, ncols):
    rng = np.random.default_rng(nnz + ncols)
    idx = rng.integers(0, max(ncols, 1), size=nnz).astype(dtype)
    used, pos = renumber(idx, ncols)
    ref = np.unique(idx)
    assert used.dtype == np.int64 and pos.dtype == dtype
    np.testing.assert_array_equal(used, ref)
    np.testing.assert_array_equal(pos, np.searchsorted(ref, idx))
    np.testing.assert_array_equal(used[pos], idx)


def test_renumber_other_dtypes_and_views():
    idx = np.array([9, 3, 3, 0, 9, 4], dtype=np.uint16)[::2]  # strided, unsigned: copied to int64
    used, pos = renumber(idx, 10)
    np.testing.assert_array_equal(used, [3, 9])  # idx is [9, 3, 9]
    np.testing.assert_array_equal(pos, [1, 0, 1])
    assert pos.dtype == np.int64


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_renumber_checks_bounds(dtype):
    with pytest.raises(ValueError, match="out of range"):
        renumber(np.array([0, 5], dtype=dtype), 5)
    with pytest.raises(ValueError, match="out of range"):
        renumber(np.array([-1, 2], dtype=dtype), 5)
    with pytest.raises(ValueError, match="out of range"):
        renumber(np.array([0], dtype=dtype), 0)
    with pytest.raises(ValueError, match="negative"):
        renumber(np.array([], dtype=dtype), -1)


def test_within():
    idx = np.array([4, 7, 5], dtype=np.int32)
    assert within(idx, 4, 8)
    assert not within(idx, 5, 8)
    assert not within(idx, 4, 7)
    assert within(np.array([], dtype=np.int64), 3, 3)
