"""Masked semiring products of hpc.spgemm.multiply at 1-4 ranks against a dense NumPy reference.

Every semiring, value type, mask kind (none, structural, complemented, valued) and accumulator,
on random small matrices drawn by hypothesis (derandomized, so every rank draws the same
examples), with SciPy operands (the product on every rank) and DistCSR operands (1D rows).
Values are small integers, so every type's arithmetic is exact and results compare equal.
Plan reuse: a product run from a plan with new values equals a fresh product.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpi4py import MPI

from hpc.sparse import DistCSR
from hpc.spgemm import Plan, multiply, symbolic

comm = MPI.COMM_WORLD
SEMIRINGS = ["plus_times", "plus_pair", "min_plus", "max_plus", "any_pair", "lor_land"]
TYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]
MASKS = [None, "structural", "complement", "valued"]
ACCUMS = [None, "plus", "times", "min", "max", "first", "second", "lor", "land"]
SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=25,
                    suppress_health_check=list(HealthCheck))


def _rand(rng, m, n, density, dt) -> sp.csr_matrix:
    """Random pattern with small integer values, explicit zeros included (they are stored)."""
    nnz = int(round(density * m * n))
    flat = rng.choice(m * n, size=min(nnz, m * n), replace=False)
    vals = rng.integers(-3, 4, size=flat.size).astype(dt)
    M = sp.csr_matrix((vals, (flat // n, flat % n)), shape=(m, n), dtype=dt)
    M.sort_indices()
    return M


def _pattern(M) -> np.ndarray:
    P = np.zeros(M.shape, bool)
    coo = sp.coo_matrix(M)
    P[coo.row, coo.col] = True
    return P


def _dense(M, dt) -> np.ndarray:
    D = np.zeros(M.shape, dt)
    coo = sp.coo_matrix(M)
    D[coo.row, coo.col] = coo.data.astype(dt)
    return D


def _product(A, B, semiring, dt):
    """(pattern, values) of A (+.x) B from dense arrays: the structural definition."""
    Ap, Bp, Ad, Bd = _pattern(A), _pattern(B), _dense(A, dt), _dense(B, dt)
    P = Ap[:, :, None] & Bp[None, :, :]
    present = P.any(axis=1)
    a, b = Ad[:, :, None], Bd[None, :, :]
    isbool = np.dtype(dt) == np.bool_
    if semiring == "plus_times":
        prod = a & b if isbool else a * b
        vals = (np.logical_or.reduce(np.where(P, prod, False), axis=1) if isbool
                else np.where(P, prod, 0).sum(axis=1, dtype=dt))
    elif semiring == "plus_pair":
        vals = P.any(axis=1) if isbool else P.sum(axis=1).astype(dt)
    elif semiring in ("min_plus", "max_plus"):
        prod = (a | b) if isbool else a + b
        if semiring == "min_plus":
            top = True if isbool else (np.inf if np.dtype(dt).kind == "f" else np.iinfo(dt).max)
            vals = np.where(P, prod, top).min(axis=1)
        else:
            low = False if isbool else (-np.inf if np.dtype(dt).kind == "f"
                                        else np.iinfo(dt).min)
            vals = np.where(P, prod, low).max(axis=1)
    elif semiring == "any_pair":
        vals = np.ones(present.shape, dt)
    else:  # lor_land
        vals = np.logical_or.reduce(P & (a != 0) & (b != 0), axis=1).astype(dt)
    return present, np.where(present, vals, 0).astype(dt)


def _accumulate(Cp, Cd, Tp, Td, inside, accum, dt):
    if accum is None:
        keep = Cp & ~inside
        return keep | Tp, np.where(Tp, Td, np.where(keep, Cd, 0)).astype(dt)
    ops = {"plus": np.add, "times": np.multiply, "min": np.minimum, "max": np.maximum,
           "first": lambda c, t: c, "second": lambda c, t: t, "lor": np.logical_or,
           "land": np.logical_and}
    both = Cp & Tp
    z = np.asarray(ops[accum](Cd, Td)).astype(dt)
    vals = np.where(both, z, np.where(Cp, Cd, np.where(Tp, Td, 0)))
    return Cp | Tp, vals.astype(dt)


def _reference(A, B, semiring, dt, mask, kind, C, accum):
    present, vals = _product(A, B, semiring, dt)
    if kind is None:
        inside = np.ones(present.shape, bool)
    else:
        Mp = _pattern(mask)
        if kind == "valued":
            Mp &= _dense(mask, np.float64) != 0
        inside = ~Mp if kind == "complement" else Mp
    Tp = present & inside
    Td = np.where(Tp, vals, 0).astype(dt)
    if C is None:
        return Tp, Td
    return _accumulate(_pattern(C), _dense(C, dt), Tp, Td, inside, accum, dt)


def _check(got, ref_p, ref_v, dt) -> None:
    got = sp.csr_matrix(got)
    assert got.dtype == np.dtype(dt)
    assert got.has_canonical_format
    np.testing.assert_array_equal(_pattern(got), ref_p)
    np.testing.assert_array_equal(_dense(got, dt), ref_v)
    for i in range(got.shape[0]):  # columns strictly ascending
        assert np.all(np.diff(got.indices[got.indptr[i]:got.indptr[i + 1]]) > 0)


def _gather(D: DistCSR) -> sp.csr_matrix:
    return sp.vstack(D.comm.allgather(D.local), format="csr")


def _dist(M, comm_, row_offsets=None):
    return None if M is None else DistCSR.from_scipy(M, comm_, row_offsets=row_offsets)


@pytest.mark.mpi
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 9), k=st.integers(1, 9),
       m=st.integers(1, 9), semiring=st.sampled_from(SEMIRINGS), dt=st.sampled_from(TYPES),
       kind=st.sampled_from(MASKS), accum=st.sampled_from(ACCUMS),
       with_c=st.booleans(), distributed=st.booleans())
def test_semiring_mask_accum_type_vs_dense(seed, n, k, m, semiring, dt, kind, accum, with_c,
                                           distributed):
    rng = np.random.default_rng(seed)
    A, B = _rand(rng, n, k, 0.4, dt), _rand(rng, k, m, 0.4, dt)
    mask = None if kind is None else _rand(rng, n, m, 0.5, np.int64)
    C = _rand(rng, n, m, 0.3, dt) if with_c else None
    ref_p, ref_v = _reference(A, B, semiring, dt, mask, kind, C, accum if with_c else None)
    kw = dict(semiring=semiring, mask=None, complement=kind == "complement",
              structural=kind != "valued", accum=accum if with_c else None, threads=2)
    if distributed:
        Ad, Bd = _dist(A, comm), _dist(B, comm)
        kw["mask"] = _dist(mask, comm, Ad.row_offsets)
        kw["C"] = _dist(C, comm, Ad.row_offsets)
        got = multiply(Ad, Bd, **kw)
        assert isinstance(got, DistCSR)
        got = _gather(got)
    else:
        kw["mask"], kw["C"] = mask, C
        got = multiply(A, B, **kw)
    _check(got, ref_p, ref_v, dt)


def _planned(rng, shape, distributed, masked):
    """(A, B, the operands as given to multiply, their mask, the plan) for A (m x k) B (k x n)."""
    m, k, n = shape
    A, B = _rand(rng, m, k, 0.1, np.float64), _rand(rng, k, n, 0.12, np.float64)
    mask = _rand(rng, m, n, 0.3, np.float64) if masked else None
    if distributed:
        Ad, Bd = _dist(A, comm), _dist(B, comm)
        M = _dist(mask, comm, Ad.row_offsets)
    else:
        Ad, Bd, M = A, B, mask
    return A, B, Ad, Bd, M, symbolic(Ad, Bd, mask=M)


@pytest.mark.mpi
@pytest.mark.parametrize("distributed", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_plan_reuse_equals_fresh_product(distributed, masked):
    rng = np.random.default_rng(7)
    A, B, Ad, Bd, M, plan = _planned(rng, (40, 30, 35), distributed, masked)
    assert isinstance(plan, Plan)
    for trial in range(3):
        A2, B2 = A.copy(), B.copy()
        A2.data = rng.standard_normal(A2.nnz)
        B2.data = rng.standard_normal(B2.nnz)
        X, Y = (_dist(A2, comm), _dist(B2, comm)) if distributed else (A2, B2)
        for semiring in ("plus_times", "min_plus"):
            fresh = multiply(X, Y, semiring=semiring, mask=M)
            reused = multiply(X, Y, semiring=semiring, plan=plan)
            if distributed:
                fresh, reused = _gather(fresh), _gather(reused)
            np.testing.assert_array_equal(reused.indptr, fresh.indptr)
            np.testing.assert_array_equal(reused.indices, fresh.indices)
            np.testing.assert_array_equal(reused.data, fresh.data)  # same kernel, same order
        if semiring == "plus_times" and not masked:
            R = (A2 @ B2).toarray()
            got = reused.toarray()
            np.testing.assert_allclose(got, R, rtol=1e-12, atol=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("distributed", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_reuse_into_out_writes_in_place(distributed, masked):
    """multiply(..., plan=plan, out=C): C's values overwritten (the object and its arrays
    kept, no new matrix), equal to a fresh product's, for each semiring and value type."""
    rng = np.random.default_rng(17)
    A, B, Ad, Bd, M, plan = _planned(rng, (37, 29, 33), distributed, masked)
    for dt in (np.float64, np.int32, np.bool_):
        for semiring in ("plus_times", "max_plus"):
            out = multiply(Ad, Bd, semiring=semiring, plan=plan, dtype=dt)
            blk = out.local if distributed else out
            data, indices = blk.data, blk.indices
            for trial in range(2):
                A2, B2 = A.copy(), B.copy()
                A2.data = rng.integers(-5, 6, A2.nnz).astype(np.float64)
                B2.data = rng.integers(-5, 6, B2.nnz).astype(np.float64)
                X, Y = (_dist(A2, comm), _dist(B2, comm)) if distributed else (A2, B2)
                got = multiply(X, Y, semiring=semiring, plan=plan, dtype=dt, out=out)
                assert got is out and blk.data is data and blk.indices is indices
                fresh = multiply(X, Y, semiring=semiring, mask=M, dtype=dt)
                g, f = (_gather(got), _gather(fresh)) if distributed else (got, fresh)
                np.testing.assert_array_equal(g.indices, f.indices)
                np.testing.assert_array_equal(g.data, f.data)
                if semiring == "plus_times" and not masked and dt != np.bool_:
                    np.testing.assert_array_equal(g.toarray(), (A2 @ B2).toarray().astype(dt))
                if distributed and dt == np.float64:
                    # its SpMV blocks (built by the first matvec) follow the new values
                    x = np.arange(1.0, 34.0)
                    y = got.gather_vector(got.matvec(got.local_slice(x, rows=False)), root=None)
                    np.testing.assert_allclose(y, g @ x, rtol=1e-12, atol=1e-12)


@pytest.mark.mpi
def test_reuse_into_out_rejects_what_it_cannot_write():
    rng = np.random.default_rng(5)
    A, B = _rand(rng, 20, 20, 0.2, np.float64), _rand(rng, 20, 20, 0.2, np.float64)
    plan = symbolic(A, B)
    out = multiply(A, B, plan=plan)
    other = multiply(B, A)
    cases = [
        (dict(out=other), ValueError, "pattern"),
        (dict(out=out, dtype=np.float32), ValueError, "float32"),
        (dict(out=out, accum="plus", C=out), ValueError, "accum"),
        (dict(out=out.toarray()), TypeError, "CSR"),
    ]
    for kw, exc, match in cases:
        with pytest.raises(exc, match=match):
            multiply(A, B, plan=plan, **kw)
    ro = out.copy()
    ro.data.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        multiply(A, B, plan=plan, out=ro)
    D = sp.diags(np.arange(1.0, 8.0), format="csr")   # D D has D's pattern
    dplan = symbolic(D, D)
    dd = multiply(D, D, plan=dplan)
    with pytest.raises(ValueError, match="share memory"):
        multiply(dd, D, plan=dplan, out=dd)
    # distributed: a block that is not the plan's on one rank raises on every rank, no hang
    Ad, Bd = _dist(A, comm), _dist(B, comm)
    dplan = symbolic(Ad, Bd)
    dout = multiply(Ad, Bd, plan=dplan)
    if comm.rank == comm.size - 1:
        dout.local = dout.local.copy()
        dout.local.data = dout.local.data[:-1] if dout.local.nnz else np.zeros(1)
    with pytest.raises(ValueError, match="out"):
        multiply(Ad, Bd, plan=dplan, out=dout)


@pytest.mark.mpi
def test_plan_rejects_a_different_pattern():
    rng = np.random.default_rng(3)
    A, B = _rand(rng, 20, 20, 0.2, np.float64), _rand(rng, 20, 20, 0.2, np.float64)
    plan = symbolic(A, B)
    other = _rand(np.random.default_rng(4), 20, 20, 0.2, np.float64)
    with pytest.raises(ValueError, match="pattern"):
        multiply(other, B, plan=plan)
    with pytest.raises(ValueError, match="mask"):
        multiply(A, B, plan=plan, mask=A)


@pytest.mark.mpi
@pytest.mark.parametrize("call,exc,match", [
    (lambda A: multiply(A, A, semiring="plus_max"), ValueError, "semiring"),
    (lambda A: multiply(A, A, accum="minus", C=A), ValueError, "accum"),
    (lambda A: multiply(A, A, dtype=np.int8), ValueError, "dtype"),
    (lambda A: multiply(A, A, mask=sp.csr_matrix((3, 3))), ValueError, "mask"),
    (lambda A: multiply(A, A, mask=np.ones((6, 6))), TypeError, "mask"),
    (lambda A: multiply(A, A, semiring="min_plus", layout="2d"), ValueError, "layout"),
    (lambda A: multiply(A, A, plan="plan"), TypeError, "plan"),
])
def test_masked_wrong_inputs_raise(call, exc, match):
    A = sp.random(6, 6, 0.4, format="csr", random_state=1)
    with pytest.raises(exc, match=match):
        call(A)


def _run_case(seed, semiring, dt, kind, accum, distributed, shape=(11, 8, 10)):
    rng = np.random.default_rng(seed)
    n, k, m = shape
    A, B = _rand(rng, n, k, 0.35, dt), _rand(rng, k, m, 0.35, dt)
    mask = None if kind is None else _rand(rng, n, m, 0.5, np.int64)
    C = _rand(rng, n, m, 0.4, dt)
    ref_p, ref_v = _reference(A, B, semiring, dt, mask, kind, C, accum)
    kw = dict(semiring=semiring, complement=kind == "complement", structural=kind != "valued",
              accum=accum, threads=2)
    if distributed:
        Ad, Bd = _dist(A, comm), _dist(B, comm)
        got = _gather(multiply(Ad, Bd, mask=_dist(mask, comm, Ad.row_offsets),
                               C=_dist(C, comm, Ad.row_offsets), **kw))
    else:
        got = multiply(A, B, mask=mask, C=C, **kw)
    _check(got, ref_p, ref_v, dt)


@pytest.mark.mpi
@pytest.mark.parametrize("dt", TYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_every_semiring_and_type(semiring, dt):
    """Each of the 30 (semiring, type) pairs, masked and complemented, SciPy and DistCSR."""
    for seed, kind, distributed in ((1, "structural", False), (2, "complement", True),
                                    (3, None, True)):
        _run_case(seed, semiring, dt, kind, "plus", distributed)


@pytest.mark.mpi
@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("accum", ACCUMS)
def test_every_accumulator_and_mask(accum, kind):
    for seed, dt, distributed in ((4, np.float64, False), (5, np.int32, True)):
        _run_case(seed, "plus_times", dt, kind, accum, distributed)
