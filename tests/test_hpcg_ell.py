"""hpc._core.hpcg.Ell as a general sparse matrix: its storage (int16 column offsets, the side
table for ghost columns, far columns and rows with more than 12 entries on one side) against
SciPy's product and a plain Gauss-Seidel sweep, on random patterns HPCG's matrix never has."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

W = 27


def random_rows(nrow: int, ncol: int, seed: int, far: bool):
    """Up to 27 entries per row (one diagonal, dominant), columns near the row, some in the
    ghost range [nrow, ncol), some (``far``) more than 2**15 away; 27-slot ELL arrays."""
    rng = np.random.default_rng(seed)
    cols = np.zeros((nrow, W), dtype=np.int32)
    vals = np.zeros((nrow, W))
    nnz = np.zeros(nrow, dtype=np.int32)
    for i in range(nrow):
        k = int(rng.integers(1, W + 1))
        pool = set()
        while len(pool) < k - 1:
            kind = rng.random()
            if kind < 0.15 and ncol > nrow:
                c = int(rng.integers(nrow, ncol))                 # a ghost
            elif kind < 0.25 and far:
                c = int(rng.integers(0, nrow))                    # anywhere: far offsets
            else:
                c = i + int(rng.integers(-40, 41))                # near the row
            if 0 <= c < ncol and c != i:
                pool.add(c)
        row = [i] + sorted(pool)
        cols[i, :k] = row
        vals[i, 1:k] = rng.uniform(-1.0, 1.0, k - 1)
        vals[i, 0] = 30.0 + rng.random()
        cols[i, k:] = -1
        nnz[i] = k
    return cols, vals, nnz


def to_scipy(cols, vals, nnz, ncol):
    r, c, v = [], [], []
    for i, k in enumerate(nnz):
        r += [i] * int(k)
        c += cols[i, :k].tolist()
        v += vals[i, :k].tolist()
    return sp.csr_matrix((v, (r, c)), shape=(len(nnz), ncol))


def gauss_seidel(A, r, x, backward=False):
    """x_i = (r_i - sum_{j != i} a_ij x_j) / a_ii row by row (in place)."""
    A = A.tocsr()
    n = A.shape[0]
    order = range(n - 1, -1, -1) if backward else range(n)
    for i in order:
        lo, hi = A.indptr[i], A.indptr[i + 1]
        cj, aj = A.indices[lo:hi], A.data[lo:hi]
        d = aj[cj == i].sum()
        s = aj[cj != i] @ x[cj[cj != i]]
        x[i] = (r[i] - s) / d


@pytest.mark.parametrize("nrow,nghost,far", [(300, 40, False), (40000, 500, True)])
def test_ell_is_a_general_sparse_matrix(nrow, nghost, far):
    from hpc._core import hpcg

    ncol = nrow + nghost
    cols, vals, nnz = random_rows(nrow, ncol, seed=nrow, far=far)
    A = to_scipy(cols, vals, nnz, ncol)
    # the generator's padding is -1 / 0; the Ell takes padding as the diagonal's column with 0
    padded = np.where(cols < 0, np.arange(nrow)[:, None], cols).astype(np.int32)
    E = hpcg.Ell(padded.reshape(-1), vals.reshape(-1), nnz, ncol)
    assert E.nnz() == int(nnz.sum())
    if far:
        assert E.side_entries() > 0
    # every row as stored: the same entries
    for i in np.random.default_rng(1).choice(nrow, 50, replace=False):
        c, v = E.row(int(i))
        assert sorted(zip(c.tolist(), v.tolist())) == \
            sorted(zip(cols[i, :nnz[i]].tolist(), vals[i, :nnz[i]].tolist()))
    x = np.random.default_rng(2).random(ncol)
    y = np.zeros(nrow)
    E.spmv(x, y)
    np.testing.assert_allclose(y, A @ x, rtol=1e-13, atol=1e-13)
    # the rows with a ghost column are the ones the matrix says
    touching = np.flatnonzero((A[:, nrow:] != 0).sum(axis=1).A1 > 0)
    np.testing.assert_array_equal(E.rows_touching_ghosts(True), touching)
    # SYMGS: forward then backward sweep, the ghosts fixed
    r = np.random.default_rng(3).random(nrow)
    want = x.copy()
    gauss_seidel(A, r, want)
    gauss_seidel(A, r, want, backward=True)
    got = x.copy()
    E.symgs_ref(r, got)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # from zero (the pre-smoother's shortcut) = the reference sweep from zero, bit for bit
    a, b = np.zeros(ncol), np.zeros(ncol)
    E.symgs_ref(r, a)
    E.symgs(r, b, True)
    np.testing.assert_array_equal(a, b)
    a_zero = a.copy()
    # from any x (the post-smoother: the backward sweep takes each row's lower sum from the
    # forward sweep instead of reading the row again) = the reference sweep, bit for bit,
    # and both = the plain sweeps
    a, b = x.copy(), x.copy()
    E.symgs_ref(r, a)
    E.symgs(r, b, False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(b, want, rtol=1e-12, atol=1e-14)
    # the V-cycle's sweep from zero on one level, x full of stale values (it zeroes only what
    # the sweep reads before writing: the ghosts, or all of x with far upper side columns)
    v = hpcg.VCycle([E], [], [], [])
    c = np.random.default_rng(4).random(ncol)
    v.run(r, c, None)
    np.testing.assert_array_equal(c, a_zero)
