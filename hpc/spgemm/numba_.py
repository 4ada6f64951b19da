"""The SMASH-style two-phase hash SpGEMM in Numba: the same algorithm as native/src/spgemm.cpp.

Rows binned by product count (empty / copy / hash / dense / shared), threads given contiguous
row ranges of equal products (prefix sum), a per-thread power-of-two linear-probing table sized
to the row, a dense accumulator for heavy rows, and for the heaviest rows one table shared by
all threads, filled with atomic compare-and-swap (LLVM cmpxchg / atomicrmw fadd via an
intrinsic, since Numba has no CPU atomics of its own). :func:`multiply_numba` is the
``numba`` back end of hpc.spgemm.local (the same operands and result as ``multiply_native``).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .local import _index_dtype, _operands, _wrap, check

EMPTY, COPY, HASH, DENSE, SHARED = 0, 1, 2, 3, 4
_opts = dict(cache=True, nogil=True, boundscheck=False)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_ONE, _ZERO = np.uint64(1), np.uint64(0)
# count trailing zeros of a power of two: de Bruijn multiply and a 64-entry table
_DB_MUL = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN = np.zeros(64, dtype=np.int64)
for _i in range(64):
    _DEBRUIJN[int(((1 << _i) * 0x03F79D71B4CB0A89 % 2**64) >> 58)] = _i


@intrinsic
def _cas(typingctx, arr, idx, expected, desired):
    """arr[idx] = desired if arr[idx] == expected (atomically); returns the old value."""
    sig = arr.dtype(arr, idx, arr.dtype, arr.dtype)

    def codegen(context, builder, signature, args):
        a, i, e, d = args
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, a)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [i])
        res = builder.cmpxchg(ptr, e, d, "monotonic", "monotonic")
        return builder.extract_value(res, 0)

    return sig, codegen


@intrinsic
def _atomic_fadd(typingctx, arr, idx, val):
    """arr[idx] += val atomically (float64)."""
    sig = types.float64(arr, idx, types.float64)

    def codegen(context, builder, signature, args):
        a, i, v = args
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, a)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [i])
        return builder.atomic_rmw("fadd", ptr, v, "monotonic")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):
    sig = arr.dtype(arr, idx)

    def codegen(context, builder, signature, args):
        a, i = args
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, a)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [i])
        ld = builder.load_atomic(ptr, "monotonic", 8)
        return ld

    return sig, codegen


@njit(inline="always")
def _slot(c, shift):
    return np.int64((np.uint64(c) * _GOLD) >> np.uint64(shift))


@njit(inline="always")
def _pow2(x):
    p = 8
    while p < x:
        p <<= 1
    return p


@njit(inline="always")
def _log2(p):
    s = 0
    while (1 << s) < p:
        s += 1
    return s


@njit(parallel=True, **_opts)
def _products(ap, ai, bp):
    n = ap.size - 1
    prod = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        s = 0
        for p in range(ap[i], ap[i + 1]):
            k = ai[p]
            s += bp[k + 1] - bp[k]
        prod[i] = s
    return prod


@njit(**_opts)
def _plan(ap, prod, ncols, threads, shared_at, dense_at, itemsize):
    n = prod.size
    total = prod.sum()
    shared_min = max(1 << 15, total // (2 * threads)) if threads > 1 else np.int64(2**62)
    dense_fits = ncols * 8 <= (1 << 21)
    dense_min = max(32, ncols // 256) if dense_fits else max(ncols // 4, 1)
    if shared_at > 0:
        shared_min = shared_at
    if dense_at > 0:
        dense_min = dense_at
    bins = np.zeros(n, dtype=np.int8)
    pre = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        s = prod[i]
        if s == 0:
            b = EMPTY
        elif ap[i + 1] - ap[i] == 1:
            b = COPY
        elif s >= shared_min:
            b = SHARED
        elif s >= dense_min:
            b = DENSE
        else:
            b = HASH
        bins[i] = b
        pre[i + 1] = pre[i] + (1 if b == SHARED else s + 1)
    split = np.empty(threads + 1, dtype=np.int64)
    split[0] = 0
    split[threads] = n
    for t in range(1, threads):
        split[t] = min(max(np.searchsorted(pre, pre[n] * t // threads), split[t - 1]), n)
    return bins, split, total


@njit(**_opts)
def _sort_row(cols):
    n = cols.size
    if n < 32:
        for a in range(1, n):
            x = cols[a]
            b = a - 1
            while b >= 0 and cols[b] > x:
                cols[b + 1] = cols[b]
                b -= 1
            cols[b + 1] = x
    else:
        cols.sort()


@njit(parallel=True, **_opts)
def _symbolic(ap, ai, bp, bi, ncols, prod, bins, split, rnnz):
    threads = split.size - 1
    for t in prange(threads):
        lo, hi = split[t], split[t + 1]
        tmax = 8
        need_dense = False
        for i in range(lo, hi):
            if bins[i] == HASH:
                tmax = max(tmax, _pow2(2 * min(prod[i], ncols)))
            elif bins[i] == DENSE:
                need_dense = True
        keys = np.empty(tmax, dtype=bi.dtype)
        words = (ncols + 63) // 64 if need_dense else 0
        bits = np.zeros(words, dtype=np.uint64)
        for i in range(lo, hi):
            b = bins[i]
            if b == COPY:
                rnnz[i] = prod[i]
            elif b == HASH:
                size = _pow2(2 * min(prod[i], ncols))
                mask = size - 1
                shift = 64 - _log2(size)
                keys[:size] = -1
                nnz = 0
                for p in range(ap[i], ap[i + 1]):
                    k = ai[p]
                    for q in range(bp[k], bp[k + 1]):
                        c = bi[q]
                        h = _slot(c, shift)
                        while True:
                            if keys[h] == c:
                                break
                            if keys[h] < 0:
                                keys[h] = c
                                nnz += 1
                                break
                            h = (h + 1) & mask
                rnnz[i] = nnz
            elif b == DENSE:
                nnz = 0
                for p in range(ap[i], ap[i + 1]):
                    k = ai[p]
                    for q in range(bp[k], bp[k + 1]):
                        c = np.int64(bi[q])
                        m = _ONE << np.uint64(c & 63)
                        w = bits[c >> 6]
                        if (w & m) == _ZERO:
                            bits[c >> 6] = w | m
                            nnz += 1
                bits[:] = 0
                rnnz[i] = nnz


@njit(parallel=True, **_opts)
def _numeric(ap, ai, ad, bp, bi, bd, ncols, bins, split, indptr, oc, ov):
    threads = split.size - 1
    for t in prange(threads):
        lo, hi = split[t], split[t + 1]
        tmax = 8
        need_dense = False
        for i in range(lo, hi):
            if bins[i] == HASH:
                tmax = max(tmax, _pow2(2 * (indptr[i + 1] - indptr[i])))
            elif bins[i] == DENSE:
                need_dense = True
        keys = np.empty(tmax, dtype=bi.dtype)
        vals = np.empty(tmax, dtype=np.float64)
        words = (ncols + 63) // 64 if need_dense else 0
        bits = np.zeros(words, dtype=np.uint64)
        acc = np.empty(ncols if need_dense else 0, dtype=np.float64)
        for i in range(lo, hi):
            b = bins[i]
            s = indptr[i]
            nnz = indptr[i + 1] - s
            if b == COPY:
                p = ap[i]
                k = ai[p]
                a = ad[p]
                j = s
                for q in range(bp[k], bp[k + 1]):
                    oc[j] = bi[q]
                    ov[j] = a * bd[q]
                    j += 1
            elif b == HASH:
                size = _pow2(2 * nnz)
                mask = size - 1
                shift = 64 - _log2(size)
                keys[:size] = -1
                for p in range(ap[i], ap[i + 1]):
                    k = ai[p]
                    a = ad[p]
                    for q in range(bp[k], bp[k + 1]):
                        c = bi[q]
                        x = a * bd[q]
                        h = _slot(c, shift)
                        while True:
                            if keys[h] == c:
                                vals[h] += x
                                break
                            if keys[h] < 0:
                                keys[h] = c
                                vals[h] = x
                                break
                            h = (h + 1) & mask
                n = 0
                for h in range(size):
                    if keys[h] >= 0:
                        oc[s + n] = keys[h]
                        n += 1
                _sort_row(oc[s:s + nnz])
                for j in range(s, s + nnz):
                    c = oc[j]
                    h = _slot(c, shift)
                    while keys[h] != c:
                        h = (h + 1) & mask
                    ov[j] = vals[h]
            elif b == DENSE:
                for p in range(ap[i], ap[i + 1]):
                    k = ai[p]
                    a = ad[p]
                    for q in range(bp[k], bp[k + 1]):
                        c = np.int64(bi[q])
                        x = a * bd[q]
                        m = _ONE << np.uint64(c & 63)
                        w = bits[c >> 6]
                        if (w & m) != _ZERO:
                            acc[c] += x
                        else:
                            bits[c >> 6] = w | m
                            acc[c] = x
                # set bits in ascending order: sorted columns without a sort
                j = s
                for wi in range(words):
                    w = bits[wi]
                    if w == _ZERO:
                        continue
                    bits[wi] = _ZERO
                    while w != _ZERO:
                        low = w & (~w + _ONE)
                        c = (wi << 6) + np.int64(_DEBRUIJN[np.int64((low * _DB_MUL) >> np.uint64(58))])
                        w = w ^ low
                        oc[j] = c
                        ov[j] = acc[c]
                        j += 1


@njit(parallel=True, **_opts)
def _shared_count(ap, ai, bp, bi, i, keys, shift):
    mask = keys.size - 1
    keys[:] = -1
    nnz = 0
    for p in prange(ap[i], ap[i + 1]):
        k = ai[p]
        for q in range(bp[k], bp[k + 1]):
            c = np.int64(bi[q])
            h = _slot(c, shift)
            while True:
                cur = _atomic_load(keys, h)
                if cur == c:
                    break
                if cur < 0:
                    old = _cas(keys, h, np.int64(-1), c)
                    if old == -1:
                        nnz += 1
                        break
                    if old == c:
                        break
                h = (h + 1) & mask
    return nnz


@njit(parallel=True, **_opts)
def _shared_fill(ap, ai, ad, bp, bi, bd, i, keys, vals, shift):
    mask = keys.size - 1
    keys[:] = -1
    vals[:] = 0.0
    for p in prange(ap[i], ap[i + 1]):
        k = ai[p]
        a = ad[p]
        for q in range(bp[k], bp[k + 1]):
            c = np.int64(bi[q])
            h = _slot(c, shift)
            while True:
                cur = _atomic_load(keys, h)
                if cur == c:
                    break
                if cur < 0:
                    old = _cas(keys, h, np.int64(-1), c)
                    if old == -1 or old == c:
                        break
                h = (h + 1) & mask
            _atomic_fadd(vals, h, a * bd[q])


@njit(**_opts)
def _shared_emit(keys, vals, shift, oc, ov):
    mask = keys.size - 1
    n = 0
    for h in range(keys.size):
        if keys[h] >= 0:
            oc[n] = keys[h]
            n += 1
    oc.sort()
    for j in range(oc.size):
        c = oc[j]
        h = _slot(c, shift)
        while keys[h] != c:
            h = (h + 1) & mask
        ov[j] = vals[h]


def multiply(ap, ai, ad, bp, bi, bd, ncols: int, threads: int = 1, shared_at: int = 0,
             dense_at: int = 0):
    """(indptr int64, indices, data, stats) of A @ B; CSR arrays as in the native kernel."""
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    if ad is None:
        ad = np.ones(ai.size)
    if bd is None:
        bd = np.ones(bi.size)
    n = ap.size - 1
    prod = _products(ap, ai, bp)
    bins, split, total = _plan(ap, prod, np.int64(ncols), threads, shared_at, dense_at,
                               ai.dtype.itemsize)
    rnnz = np.zeros(n, dtype=np.int64)
    _symbolic(ap, ai, bp, bi, np.int64(ncols), prod, bins, split, rnnz)
    shared = np.flatnonzero(bins == SHARED)
    tables = {}
    for i in shared:
        size = 8
        while size < 2 * min(int(prod[i]), ncols):
            size <<= 1
        shift = 64 - (size.bit_length() - 1)
        keys = np.empty(size, dtype=np.int64)
        rnnz[i] = _shared_count(ap, ai, bp, bi, np.int64(i), keys, shift)
        tables[int(i)] = (size, shift)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(rnnz, out=indptr[1:])
    nnz = int(indptr[-1])
    oc = np.empty(nnz, dtype=bi.dtype)
    ov = np.empty(nnz, dtype=np.float64)
    _numeric(ap, ai, ad, bp, bi, bd, np.int64(ncols), bins, split, indptr, oc, ov)
    for i, (size, shift) in tables.items():
        keys = np.empty(size, dtype=np.int64)
        vals = np.empty(size, dtype=np.float64)
        _shared_fill(ap, ai, ad, bp, bi, bd, np.int64(i), keys, vals, shift)
        s, e = indptr[i], indptr[i + 1]
        _shared_emit(keys, vals, shift, oc[s:e], ov[s:e])
    counts = np.bincount(bins, minlength=5) if n else np.zeros(5, np.int64)
    stats = {"products": int(total), "rows_empty": int(counts[EMPTY]),
             "rows_copy": int(counts[COPY]), "rows_hash": int(counts[HASH]),
             "rows_dense": int(counts[DENSE]), "rows_shared": int(counts[SHARED]),
             "threads": threads}
    return indptr, oc, ov, stats


def multiply_numba(a, b, threads: int = 1, shared_at: int = 0, dense_at: int = 0):
    """Numba two-phase hash SpGEMM of canonical CSR operands: (canonical CSR, stats).

    shared_at / dense_at > 0 force the product count from which a row uses the shared table or
    the dense accumulator (tests use them to exercise every bin); 0 is automatic.
    """
    check(a, b)
    dt = _index_dtype(a, b, b.shape[1])
    ap, ai, ad, bp, bi, bd = _operands(a, b, dt)
    indptr, indices, data, stats = multiply(ap, ai, ad, bp, bi, bd, b.shape[1], int(threads),
                                            int(shared_at), int(dense_at))
    return _wrap(indptr, indices, data, (a.shape[0], b.shape[1])), stats
