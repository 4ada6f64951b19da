"""The one-pass SpGEMM kernel (native/src/spgemm_onepass.cpp) and its dispatch in
hpc.spgemm.local: every structure family against SciPy at 1-3 threads, bit-identical across
thread counts and to the two-phase kernel (both sum in the order of A's entries), every
emission method (rank, 32-bit rank, bitmap, sort), empty rows and columns, int64 indices, and
bounds-checked entry points."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hpc.core import backends
from hpc.sparse.randgen import rmat_edges
from hpc.spgemm import local as L

pytestmark = pytest.mark.skipif(not backends.is_available("native"), reason="native build missing")


def _core():
    from hpc import _core

    return _core.spgemm_onepass


def _uniform(rng, m, n, per_row):
    rows = np.repeat(np.arange(m), per_row)
    return L.canonical(sp.csr_matrix((rng.standard_normal(rows.size),
                                      (rows, rng.integers(0, n, rows.size))), shape=(m, n)))


def family(name: str, n: int = 400, seed: int = 0):
    """Small members of the structure families of scaling/compare/spgemm_families.py."""
    rng = np.random.default_rng([seed, n])
    if name == "banded":
        a = L.canonical(sp.diags([rng.standard_normal(n - abs(k)) for k in range(-3, 4)],
                                 list(range(-3, 4))))
        return a, a
    if name == "uniform":
        a = _uniform(rng, n, n, 8)
        return a, a
    if name == "powerlaw":
        lens = np.minimum(rng.zipf(2.0, n) * 2, n // 4)
        rows = np.repeat(np.arange(n), lens)
        a = L.canonical(sp.csr_matrix((rng.standard_normal(rows.size),
                                       (rows, rng.integers(0, n, rows.size))), shape=(n, n)))
        return a, a
    if name == "block":
        a = L.canonical(sp.block_diag([rng.standard_normal((8, 8)) for _ in range(n // 8)]))
        return a, a
    if name == "denserows":
        a = _uniform(rng, n, n, 3).tolil()
        for i in rng.choice(n, size=3, replace=False):
            a[i, rng.choice(n, size=n // 4, replace=False)] = 1.5
        a = L.canonical(a)
        return a, a
    if name == "unsymmetric":
        return _uniform(rng, n, n, 7), _uniform(rng, n, n, 7)
    if name == "rectangular":
        return _uniform(rng, n, n // 2, 6), _uniform(rng, n // 2, 2 * n, 6)
    if name == "rmat":
        s, d = rmat_edges(9, 8, seed, None)
        a = sp.csr_matrix((rng.standard_normal(s.size), (s, d)), shape=(512, 512))
        a = L.canonical(a)
        return a, a
    raise ValueError(name)


FAMILIES = ["banded", "uniform", "powerlaw", "block", "denserows", "unsymmetric",
            "rectangular", "rmat"]


def onepass(a, b, threads, rank_max=-1, fixed=True, index=np.int32, stream=-1):
    """The kernel called directly (fixed thread count, chosen index type)."""
    op = _core()
    fn = op.multiply_i32 if index == np.int32 else op.multiply_i64
    ip, ix, d, st = fn(a.indptr.astype(index), a.indices.astype(index), a.data, a.shape[0],
                       a.shape[1], b.indptr.astype(index), b.indices.astype(index), b.data,
                       b.shape[1], threads, fixed, rank_max, stream)
    return sp.csr_matrix((d, ix, ip), shape=(a.shape[0], b.shape[1])), st


def assert_canonical_equal(c, a, b):
    """c is canonical CSR (ascending unique columns) with SciPy's pattern and values."""
    ref = (a @ b).tocsr()
    ref.sum_duplicates()
    ref.sort_indices()
    assert c.shape == ref.shape
    for i in range(c.shape[0]):
        row = c.indices[c.indptr[i]:c.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} not ascending"
    assert np.array_equal(c.indptr, ref.indptr) and np.array_equal(c.indices, ref.indices)
    scale = max(1.0, float(np.abs(ref.data).max(initial=0.0)))
    np.testing.assert_allclose(c.data, ref.data, rtol=1e-12, atol=1e-13 * scale)


def identical(x, y) -> bool:
    return (np.array_equal(x.indptr, y.indptr) and np.array_equal(x.indices, y.indices)
            and np.array_equal(x.data, y.data))


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_matches_scipy_at_1_to_3_threads(name):
    a, b = family(name)
    c1, st = onepass(a, b, 1)
    assert st["onepass"] and st["threads"] == 1 and st["products"] == L.products(a, b)
    assert_canonical_equal(c1, a, b)
    # the two-phase kernel sums in the same order (A's entries): the same bits
    two, _ = L.multiply_native(a, b, 1, onepass=0)
    assert identical(c1, two)
    for threads in (2, 3):
        ct, st = onepass(a, b, threads)
        assert st["threads"] == threads and identical(c1, ct)


@pytest.mark.parametrize("threads", [1, 3])
def test_every_emission_method(threads):
    """Short rows by rank (16-bit keys), short rows over a span >= 2^15 by 32-bit rank, long
    clustered rows from a bitmap of their columns, long scattered rows by std::sort."""
    rng = np.random.default_rng(5)
    wide = _uniform(rng, 300, 300, 4), _uniform(rng, 300, 70_000, 5)  # spans > 32767
    c, st = onepass(*wide, threads)
    assert_canonical_equal(c, *wide)
    assert st["rows_rank"] > 0
    a, b = family("banded")  # 49 products per row over 13 columns: bitmap when rank_max < 13
    c, st = onepass(a, b, threads, rank_max=10)
    assert_canonical_equal(c, a, b) and st["rows_scan"] > 0
    a, b = family("uniform")  # 64 products over ~400 columns: std::sort
    c, st = onepass(a, b, threads, rank_max=10)
    assert_canonical_equal(c, a, b) and st["rows_sort"] > 0
    ref, _ = onepass(a, b, 1)  # every method, the same bits
    assert identical(c, ref)
    c, st = onepass(*wide, threads, rank_max=0)
    assert_canonical_equal(c, *wide)


@pytest.mark.parametrize("threads,index", [(1, np.int32), (3, np.int32), (2, np.int64)])
def test_long_rows_leave_the_bitmap_clear(threads, index):
    """Long rows (more products than rank_max) mark their columns in a bitmap kept between
    rows. Rows emitted from it, by std::sort and by rank after compression, interleaved at
    random: each must leave the bitmap clear (a bit left over adds a column to a later row).
    int64 indices take emit_word's portable path (VPCOMPRESSB serves 32-bit columns only)."""
    rng = np.random.default_rng(11)
    m, ncols = 3000, 70_000
    # B: rows 0-999 40 columns two apart at 100 (k % 50) (rows of one residue overlap);
    # rows 1000-1999 the same 10 columns; rows 2000-2999 12 random columns
    cols = [100 * (k % 50) + np.arange(0, 80, 2) for k in range(1000)]
    cols += [5000 + 3 * np.arange(10)] * 1000
    cols += [rng.choice(ncols, 12, replace=False) for _ in range(1000)]
    rows = np.repeat(np.arange(3000), [c.size for c in cols])
    b = L.canonical(sp.csr_matrix((rng.standard_normal(rows.size), (rows, np.concatenate(cols))),
                                  shape=(3000, ncols)))
    kind = rng.integers(0, 3, m)  # 0: bitmap (120 products, 40-80 clustered columns),
    ks = np.empty((m, 3), dtype=np.int64)  # 1: rank (30 products, 10 columns), 2: sort
    g = rng.integers(0, 50, m)
    ks[kind == 0] = (g[kind == 0, None] + 50 * rng.integers(0, 20, ((kind == 0).sum(), 3)))
    ks[kind == 1] = rng.integers(1000, 2000, ((kind == 1).sum(), 3))
    ks[kind == 2] = rng.integers(2000, 3000, ((kind == 2).sum(), 3))
    a = sp.csr_matrix((rng.standard_normal(3 * m), ks.ravel(), np.arange(0, 3 * m + 1, 3)),
                      shape=(m, 3000))
    a.sum_duplicates()
    a = L.canonical(a)
    c, st = onepass(a, b, threads, rank_max=20, index=index)
    assert_canonical_equal(c, a, b)
    assert st["rows_scan"] > 0 and st["rows_sort"] > 0 and st["rows_rank"] > 0
    ref, _ = onepass(a, b, 1)
    assert identical(c, ref)


@pytest.mark.parametrize("index", [np.int32, np.int64])
def test_streamed_rows_equal_plain_stores(index):
    """C written through the L1 staging buffer and non-temporal stores (stream=1) has the bits
    of plain stores (stream=0) at 1-4 threads: rows of 0-30 entries (flushed in 16-entry
    blocks, so rows straddle blocks and thread 0's backward run meets thread 1's inside one),
    interleaved with rows longer than the staging buffer (written directly, after what is
    staged) and empty rows."""
    rng = np.random.default_rng(5)
    m, k, n = 1500, 900, 5000
    lens = rng.integers(0, 6, m)
    lens[rng.choice(m, 12, replace=False)] = 500  # rows of over 1,024 (the buffer) columns
    rows = np.repeat(np.arange(m), lens)
    a = sp.csr_matrix((rng.standard_normal(rows.size), (rows, rng.integers(0, k, rows.size))),
                      shape=(m, k))
    a.sum_duplicates()
    a = L.canonical(a)
    blens = rng.integers(1, 7, k)
    brows = np.repeat(np.arange(k), blens)
    b = sp.csr_matrix((rng.standard_normal(brows.size),
                       (brows, rng.integers(0, n, brows.size))), shape=(k, n))
    b.sum_duplicates()
    b = L.canonical(b)
    ref, st0 = onepass(a, b, 1, index=index, stream=0)
    assert_canonical_equal(ref, a, b)
    assert not st0["streamed"] and np.diff(ref.indptr).max() > 1024
    for threads in (1, 2, 3, 4):
        c, st = onepass(a, b, threads, index=index, stream=1)
        assert st["streamed"] and st["threads"] == threads
        assert identical(c, ref), threads
    # the automatic choice: this product and its working set fit in L2, so plain stores
    assert not onepass(a, b, 2, index=index)[1]["streamed"]


@pytest.mark.parametrize("name", ["uniform", "block", "banded", "denserows"])
def test_threads_0_and_1_meet_in_c(name):
    """At 2+ threads thread 0 writes its rows backwards to where thread 1's start, and C is
    handed to NumPy at an offset inside the product-sized arrays (uniform: C nearly fills
    them), or each thread copies its rows into arrays of nnz(C) where C fills under half
    (block, banded: many products per entry). Same bits at every thread count; C's arrays
    stay valid while later products reuse the kernel's buffers and the heap."""
    a, b = family(name, n=600, seed=7)
    ref, _ = onepass(a, b, 1)
    assert_canonical_equal(ref, a, b)
    kept = []
    for threads in (2, 3, 4, 2):
        c, st = onepass(a, b, threads)
        assert st["threads"] == threads and identical(c, ref)
        if threads == 2:
            assert c.indptr[0] == 0 and c.indptr[-1] == c.nnz == ref.nnz
        kept.append(c)
    for _ in range(3):  # later products (other operands) must not touch the arrays above
        onepass(*family("unsymmetric", n=700, seed=8), 2)
    for c in kept:
        assert identical(c, ref)


def test_products_with_outputs_of_many_pages():
    """Outputs of tens of MB (mapped afresh by malloc above glibc's mmap threshold, where the
    small tests' come from the heap): SciPy's product, the same bits from both kernels and
    every thread count, and valid while later products come and go."""
    rng = np.random.default_rng(9)
    a = _uniform(rng, 40_000, 40_000, 8)   # ~2.5M entries of C: 10 MB of columns, 20 of values
    ref, _ = onepass(a, a, 1)
    assert ref.nnz * 8 >= 8 << 20
    assert_canonical_equal(ref, a, a)
    kept = [ref]
    for threads in (2, 3):
        c, _ = onepass(a, a, threads)
        assert identical(c, ref)
        kept.append(c)
        two, _ = L.multiply_native(a, a, threads, onepass=0)
        assert identical(two, ref)
    onepass(*family("uniform", n=700, seed=3), 2)
    for c in kept:
        assert identical(c, ref)


def test_rank_sorted_after_compression():
    """A row of more products than rank_max whose distinct columns are at most rank_max is
    rank-sorted from its 32-bit list (converted to 16-bit keys after the products)."""
    a, b = family("banded")  # 49 products per row over 13 columns
    ref, _ = onepass(a, b, 1)
    for threads in (1, 2):
        c, st = onepass(a, b, threads, rank_max=20)
        assert st["rows_rank"] > 0 and st["rows_scan"] == 0 and identical(c, ref)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_empty_rows_columns_and_shapes(threads):
    rng = np.random.default_rng(2)
    a = _uniform(rng, 50, 30, 3).tolil()
    a[5:20, :] = 0  # empty rows of A, at thread boundaries for some thread counts
    a[:, 7] = 0  # B's row 7 is never read
    a = L.canonical(a)
    a.eliminate_zeros()
    b = _uniform(rng, 30, 40, 2).tolil()
    b[3:9, :] = 0  # empty rows of B
    b[:, 10:] = 0  # empty columns of C
    b = L.canonical(b)
    b.eliminate_zeros()
    c, st = onepass(a, b, threads)
    assert_canonical_equal(c, a, b)
    assert st["rows_empty"] >= 15
    single = L.canonical(sp.eye(30, format="csr") * 2.0)  # one entry per row: copied rows
    c, st = onepass(single, b, threads)
    assert_canonical_equal(c, single, b) and st["rows_copy"] > 0
    for m, k, n in [(0, 5, 4), (4, 0, 3), (3, 4, 0), (0, 0, 0)]:
        z = L.canonical(sp.csr_matrix((m, k)))
        y = L.canonical(sp.csr_matrix((k, n)))
        c, st = onepass(z, y, threads)
        assert c.shape == (m, n) and c.nnz == 0 and st["products"] == 0


def test_int64_indices_and_the_thread_model():
    a, b = family("rectangular", n=300, seed=3)
    c32, _ = onepass(a, b, 2)
    c64, _ = onepass(a, b, 3, index=np.int64)
    assert identical(c32, c64)
    i64 = [x.astype(np.int64) for x in (a.indptr, a.indices, b.indptr, b.indices)]
    ip, ix, _, _ = _core().multiply_i64(i64[0], i64[1], a.data, 300, 150, i64[2], i64[3], b.data,
                                        600, 2)
    assert ip.dtype == np.int64 and ix.dtype == np.int64
    for _ in range(4):  # the measured thread choice (1 or 2 here): the same bits
        c, st = onepass(a, b, 2, fixed=False)
        assert st["threads"] in (1, 2) and identical(c, c32)


class _Replay:
    """Drives a fresh thread model (native/include/hpc/thread_model.hpp) through
    spgemm_onepass.thread_model_replay: each call is a choose() at the given wall time and the
    record() of the time the chosen thread count takes then (no timing: the times are given)."""

    def __init__(self, units=1e6, key=7):
        self.units, self.key, self.ops, self.now = units, key, [], 0.0

    def call(self, cost, threads=2, gap=0.0):
        """One call requesting `threads`; cost(t) is the seconds t threads take now; `gap`
        seconds of other work before it. Returns the thread count chosen."""
        self.now += gap
        choice = _core().thread_model_replay(
            self.ops + [("choose", self.units, threads, self.key, self.now)])[-1] \
            if threads > 1 else 1
        if threads > 1:
            self.ops.append(("choose", self.units, threads, self.key, self.now))
        self.now += cost(choice)
        self.ops.append(("record", cost(choice), choice, self.units, self.key, self.now))
        return choice


def test_thread_model_forgets_contention():
    """A second thread slowed by contention (5x the quiet 1-thread time) makes the model choose
    one thread; once the contention is gone, the model revisits two threads within a bounded
    time and keeps them: the revisit's quiet sample replaces the contended one, it is not
    averaged with it."""
    r = _Replay()
    quiet = {1: 1e-3, 2: 0.55e-3}
    busy = {1: 1e-3, 2: 5e-3}
    r.call(busy.get, threads=1)  # a 1-thread request: measures one thread
    first = [r.call(busy.get) for _ in range(3)]
    assert first.count(2) == 2  # tried twice (a preempted first call must not decide alone)
    assert [r.call(busy.get) for _ in range(10)] == [1] * 10  # learnt: one thread is faster
    # the contention ends; calls come back to back: two threads are revisited within
    # kExplore x 5 calls (16 x 5 = 80) and, once measured quiet, kept
    seq = [r.call(quiet.get) for _ in range(160)]
    assert 2 in seq and seq.index(2) <= 85
    tail = seq[seq.index(2):]  # one thread, now the loser, is revisited now and then only
    assert tail.count(1) <= len(tail) // 16 + 1


def test_thread_model_revisits_by_wall_time_when_calls_are_rare():
    """Calls of one product separated by other work (a benchmark's rounds: 20 ms between
    calls) revisit the losing thread count after kExplore x its expected call time of wall
    time (16 x 5 ms = 80 ms here), not after 80 calls."""
    r = _Replay()
    busy = {1: 1e-3, 2: 5e-3}
    quiet = {1: 1e-3, 2: 0.55e-3}
    r.call(busy.get, threads=1)
    for _ in range(4):
        r.call(busy.get, gap=0.02)
    seq = [r.call(quiet.get, gap=0.02) for _ in range(12)]
    assert seq[0] == 1 and 2 in seq[:4]
    tail = seq[seq.index(2):]  # the loser's revisits: at most one call in 4 (kMinGap)
    assert tail.count(1) <= len(tail) // 4 + 1


def test_thread_model_keeps_one_thread_under_lasting_contention():
    """Under contention that lasts, the retries of two threads stay rare (about one per
    kExplore x their time ratio calls) and the model keeps one thread; quiet again, it
    returns to two."""
    r = _Replay()
    busy = {1: 1e-3, 2: 5e-3}
    r.call(busy.get, threads=1)
    seq = [r.call(busy.get) for _ in range(400)]
    assert seq[:3].count(2) == 2
    retries = seq[3:].count(2)
    assert 1 <= retries <= 400 // (16 * 4) + 1
    # and two threads that turn slow (contention starts) are dropped within two calls
    q = _Replay()
    quiet = {1: 1e-3, 2: 0.55e-3}
    q.call(quiet.get, threads=1)
    assert [q.call(quiet.get) for _ in range(8)][3:] == [2] * 5
    assert [q.call(busy.get) for _ in range(4)][2:] == [1, 1]


def test_fixed_threads_through_multiply_native():
    """multiply_native(..., onepass=1, fixed_threads=True) runs on exactly the threads asked
    (the benchmark's forced column), with the same bits as the model's choice."""
    a, b = family("unsymmetric", n=300, seed=5)
    ref = (a @ b).toarray()
    for t in (1, 2, 3):
        c, st = L.multiply_native(a, b, t, onepass=1, fixed_threads=True)
        assert st["onepass"] and st["threads"] == t
        np.testing.assert_allclose(c.toarray(), ref, rtol=1e-12, atol=1e-12)
        c2, _ = L.multiply_native(a, b, t, onepass=1)
        assert identical(c, c2)


def test_thread_model_classes_operands_apart():
    """Two products of the same size class but unlike cost keep their own choice (keyed by
    their shapes and entry counts)."""
    a, b = _Replay(key=11), _Replay(key=12)
    b.ops = a.ops  # one model, two operand keys
    fast2 = {1: 1e-3, 2: 0.5e-3}
    slow2 = {1: 1e-3, 2: 1.5e-3}
    for _ in range(6):
        a.call(fast2.get, threads=1)
        b.now = a.now
        b.call(slow2.get, threads=1)
        a.now = b.now
    for _ in range(6):
        ca = a.call(fast2.get)
        b.now = a.now
        cb = b.call(slow2.get)
        a.now = b.now
    assert (ca, cb) == (2, 1)
    with pytest.raises(ValueError):
        _core().thread_model_replay([("wait", 1.0)])


def test_dispatch_follows_row_lengths():
    """multiply(..., "native") takes the one-pass kernel where most products are in rows of
    short output, the two-phase kernel where long rows or runs of columns (axpy rows) hold
    them, and whenever a knob is set."""
    a, b = family("unsymmetric")
    c, st = L.multiply(a, b, "native", 2)
    assert st["onepass"] is True
    assert_canonical_equal(c, a, b)
    wide = L.canonical(sp.diags([np.ones(400 - abs(k)) for k in range(-8, 9)],
                                list(range(-8, 9))))  # 289 products per row
    c, st = L.multiply(wide, wide, "native", 2)
    assert st["onepass"] is False
    assert_canonical_equal(c, wide, wide)
    gaps = L.canonical(sp.diags([np.ones(400 - abs(k)) for k in range(-10, 11, 2)],
                                list(range(-10, 11, 2))))  # 121 products over <= 41 columns
    c, st = L.multiply(gaps, gaps, "native", 2)  # B's rows not runs: short output, one pass
    assert st["onepass"] is True
    assert_canonical_equal(c, gaps, gaps)
    _, st = L.multiply(a, b, "native", 2, fused_max=0)
    assert st["onepass"] is False
    _, st = L.multiply_native(a, b, 1)  # direct calls keep the two-phase kernel by default
    assert st["onepass"] is False
    c, st = L.multiply_native(wide, wide, 1, onepass=1)
    assert st["onepass"] is True
    assert_canonical_equal(c, wide, wide)
    op = _core()
    fits, est, share = op.suits_i32(a.indptr, a.indices, b.indptr, b.indices, a.shape[0],
                                    a.shape[1])
    assert fits and share == 1.0 and est == pytest.approx(L.products(a, b))


def _suits_share(a, b, rank_max=96):
    """The share of products in rows that suit the one-pass kernel, over every row (the rule
    of spgemm_onepass.cpp's suits, in NumPy: the oracle for its sample)."""
    blen = np.diff(b.indptr)
    first = np.where(blen > 0, b.indices[np.minimum(b.indptr[:-1], b.nnz - 1)], 0)
    last = np.where(blen > 0, b.indices[np.maximum(b.indptr[1:] - 1, 0)], -1)
    run = (blen > 0) & (last - first == blen - 1)
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    k = a.indices
    p = np.bincount(rows, blen[k], a.shape[0])
    runs = np.bincount(rows, np.where(run[k], blen[k], 0), a.shape[0])
    big = np.iinfo(np.int64).max
    lo = np.full(a.shape[0], big)
    hi = np.full(a.shape[0], -1)
    nz = blen[k] > 0
    np.minimum.at(lo, rows[nz], first[k][nz])
    np.maximum.at(hi, rows[nz], last[k][nz])
    fit = (p <= rank_max) | ((hi - lo < rank_max) & (2 * runs < p))
    return p[fit].sum() / p.sum()


def test_suits_reads_a_sample_of_long_operands():
    """Over 512 rows, suits reads an evenly spaced sample (about 4096 of A's entries, not every
    row): the choice is the whole matrix's wherever its share is not at the threshold, and on
    rows without a heavy tail the share and the products estimate stay close to the whole's."""
    op = _core()
    wide = L.canonical(sp.diags([np.ones(40000 - abs(k)) for k in range(-8, 9)],
                                list(range(-8, 9))))  # 289 products per row: two-phase
    cases = {name: family(name, n=40000) for name in FAMILIES if name != "rmat"}
    cases["wide"] = (wide, wide)
    chosen = []
    for name, (a, b) in cases.items():
        fits, est, share = op.suits_i32(a.indptr, a.indices, b.indptr, b.indices, a.shape[0],
                                        a.shape[1])
        whole = _suits_share(a, b)
        if abs(whole - 0.5) > 0.1:
            assert fits == (whole >= 0.5), name
        if name not in ("powerlaw", "denserows"):  # a sample misses a heavy tail's rows
            assert share == pytest.approx(whole, abs=0.05), name
            assert est == pytest.approx(L.products(a, b), rel=0.05), name
        chosen.append(fits)
    assert any(chosen) and not all(chosen)
    a, b = family("uniform", n=40000)
    bad = a.indptr.copy()
    bad[-1] = 2**31 - 1  # a garbage row count sizes the sample only: no wild read
    op.suits_i32(bad, a.indices, b.indptr, b.indices, a.shape[0], a.shape[1])
    with pytest.raises(ValueError, match="indptr"):  # the product's own checks catch it
        op.multiply_i32(bad, a.indices, a.data, a.shape[0], a.shape[1], b.indptr, b.indices,
                        b.data, b.shape[1], 1)


def test_entry_points_check_their_operands():
    op = _core()
    a, b = family("uniform", n=50)
    args = [a.indptr, a.indices, a.data, 50, 50, b.indptr, b.indices, b.data, 50, 1]

    def call(i, value, fn=op.multiply_i32):
        bad = list(args)
        bad[i] = value
        return fn(*bad)

    with pytest.raises(ValueError, match="out of range"):
        call(6, np.where(b.indices == b.indices[0], 50, b.indices).astype(np.int32))
    with pytest.raises(ValueError, match="indptr"):
        call(0, a.indptr[::-1].copy())
    with pytest.raises(ValueError, match="dtype"):
        call(1, a.indices.astype(np.int64))
    with pytest.raises(ValueError, match="dtype"):
        call(2, a.data.astype(np.float32))  # float64 values only
    with pytest.raises(ValueError, match="shorter"):
        call(7, b.data[:-1].copy())
    with pytest.raises(ValueError, match="spgemm_onepass"):
        call(4, 49)  # A's columns beyond k, B's indptr not k + 1 entries
    with pytest.raises(ValueError, match="B indptr"):
        call(4, 51)
    with pytest.raises(ValueError, match="threads"):
        call(9, 0)
    bad = a.indptr.copy()
    bad[3] = 10**6
    with pytest.raises(ValueError, match="indptr"):
        op.suits_i32(bad, a.indices, b.indptr, b.indices, 50, 50)
    with pytest.raises(ValueError, match="out of range"):
        op.suits_i32(a.indptr, np.full_like(a.indices, 60), b.indptr, b.indices, 50, 50)
