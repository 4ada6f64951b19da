"""Canonical datatypes and packers of hpc.halo against the MPI library (one process).

Equivalent types must get the same canonical form; for random nested datatypes every packer
must produce MPI_Pack's bytes exactly, and unpack must put them where MPI_Unpack does.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpi4py import MPI

from hpc.halo import packers
from hpc.halo.canonical import NotCanonical, StridedBlock, canonicalize, simplify

COMM = MPI.COMM_SELF


def _available(name: str) -> bool:
    try:
        packers.get(name)
        return True
    except Exception:  # noqa: BLE001
        return False


PACKERS = [p for p in packers.PACKERS if _available(p)]


def commit(t):
    return t.Commit()


# -- equivalent types agree ----------------------------------------------------------------
def test_subarray_equals_nested_hvector_and_vector():
    D = MPI.DOUBLE
    sizes, sub, starts = [6, 7, 9], [2, 3, 4], [1, 2, 3]
    a = commit(D.Create_subarray(sizes, sub, starts))
    # the same bytes: rows of 4 doubles, 3 rows 9 doubles apart, 2 planes 63 doubles apart,
    # starting at element (1, 2, 3)
    row = D.Create_contiguous(4)
    plane = row.Create_hvector(3, 1, 9 * 8)
    vol = plane.Create_hvector(2, 1, 63 * 8)
    off = (1 * 63 + 2 * 9 + 3) * 8
    b = commit(MPI.Datatype.Create_struct([1], [off], [vol]))
    c = commit(MPI.Datatype.Create_struct(
        [1], [off], [D.Create_vector(3, 4, 9).Create_hvector(2, 1, 63 * 8)]))
    ca, cb, cc = canonicalize(a), canonicalize(b), canonicalize(c)
    assert ca == cb == cc
    assert ca.counts == (32, 3, 2) and ca.strides == (1, 72, 504) and ca.start == off
    assert ca.extent != cb.extent  # extents differ; the bytes (and the form) do not


def test_fortran_order_subarray_matches_c_order_transposed():
    D = MPI.DOUBLE
    c = commit(D.Create_subarray([5, 8], [2, 3], [1, 4], order=MPI.ORDER_C))
    f = commit(D.Create_subarray([8, 5], [3, 2], [4, 1], order=MPI.ORDER_FORTRAN))
    assert canonicalize(c) == canonicalize(f)


def test_dense_forms_collapse_to_one_run():
    D = MPI.DOUBLE
    forms = [
        commit(D.Create_contiguous(12)),
        commit(D.Create_vector(3, 4, 4)),
        commit(D.Create_contiguous(4).Create_contiguous(3)),
        commit(D.Create_indexed_block(4, [0, 4, 8])),
        commit(D.Create_hvector(6, 2, 16)),
        commit(D.Create_subarray([3, 4], [3, 4], [0, 0])),
        commit(D.Create_contiguous(12).Create_resized(0, 200)),
        commit(D.Create_contiguous(12).Dup()),
    ]
    for t in forms:
        assert canonicalize(t) == StridedBlock(0, (96,), (1,)), t.decode()[1]


def test_indexed_block_regular_equals_vector():
    D = MPI.INT
    a = commit(D.Create_indexed_block(2, [1, 6, 11, 16]))
    b = commit(MPI.Datatype.Create_struct([1], [4], [D.Create_vector(4, 2, 5)]))
    assert canonicalize(a) == canonicalize(b)


def test_simplify_reaches_a_fixed_point():
    b = StridedBlock(8, (8, 1, 4, 1, 3, 2), (1, 999, 8, 5, 32, 96))
    s = simplify(b)
    assert s == StridedBlock(8, (192,), (1,))
    assert simplify(s) == s


@pytest.mark.parametrize("make, why", [
    (lambda: MPI.Datatype.Create_struct([1, 1], [0, 8], [MPI.DOUBLE, MPI.INT]), "struct"),
    (lambda: MPI.DOUBLE.Create_indexed_block(1, [0, 1, 5]), "irregular"),
    (lambda: MPI.DOUBLE.Create_indexed([1, 2], [0, 4]), "different lengths"),
    (lambda: MPI.SHORT_INT.Dup(), "holes"),
])
def test_uncanonicalisable_types_say_why(make, why):
    t = commit(make())
    with pytest.raises(NotCanonical, match=why):
        canonicalize(t)


def test_named_types_and_struct_of_one():
    assert canonicalize(MPI.DOUBLE) == StridedBlock(0, (8,), (1,))
    t = commit(MPI.Datatype.Create_struct([3], [16], [MPI.INT]))
    assert canonicalize(t) == StridedBlock(16, (12,), (1,))


# -- random nested datatypes against MPI_Pack ----------------------------------------------
BASES = [MPI.BYTE, MPI.INT, MPI.DOUBLE, MPI.FLOAT, MPI.INT16_T]


@st.composite
def datatypes(draw, depth: int = 0):
    """A random, non-overlapping, non-negative nested datatype (created, not committed)."""
    if depth >= 3 or (depth > 0 and draw(st.booleans()) and draw(st.booleans())):
        return draw(st.sampled_from(BASES)).Dup()
    old = draw(datatypes(depth=depth + 1))
    lb, ext = old.Get_extent()
    kind = draw(st.sampled_from(["contiguous", "vector", "hvector", "subarray",
                                 "indexed_block", "hindexed_block", "resized"]))
    c = draw(st.integers(1, 4))
    bl = draw(st.integers(1, 3))
    if kind == "contiguous":
        t = old.Create_contiguous(c)
    elif kind == "vector":
        t = old.Create_vector(c, bl, bl + draw(st.integers(0, 3)))
    elif kind == "hvector":
        t = old.Create_hvector(c, bl, bl * ext + draw(st.integers(0, 24)))
    elif kind == "subarray":
        nd = draw(st.integers(1, 3))
        sizes = [draw(st.integers(1, 5)) for _ in range(nd)]
        sub = [draw(st.integers(1, s)) for s in sizes]
        starts = [draw(st.integers(0, s - u)) for s, u in zip(sizes, sub)]
        order = draw(st.sampled_from([MPI.ORDER_C, MPI.ORDER_FORTRAN]))
        t = old.Create_subarray(sizes, sub, starts, order=order)
    elif kind == "indexed_block":
        first, step = draw(st.integers(0, 3)), bl + draw(st.integers(0, 3))
        t = old.Create_indexed_block(bl, [first + i * step for i in range(c)])
    elif kind == "hindexed_block":
        first, step = draw(st.integers(0, 16)), bl * ext + draw(st.integers(0, 16))
        t = old.Create_hindexed_block(bl, [first + i * step for i in range(c)])
    else:
        t = old.Create_resized(0, ext + draw(st.integers(0, 24)))
    old.Free()
    return t


def _pack_with_mpi(t, src: np.ndarray) -> np.ndarray:
    """MPI_Pack of one element of t from src (count 1 via a resized wrapper)."""
    w = t.Create_resized(0, src.size).Commit()
    out = np.zeros(max(1, w.Pack_size(1, COMM)), np.uint8)
    n = w.Pack(src, out, 0, COMM)
    w.Free()
    return out[:n]


def _unpack_with_mpi(t, packed: np.ndarray, nbytes: int) -> np.ndarray:
    w = t.Create_resized(0, nbytes).Commit()
    dst = np.zeros(nbytes, np.uint8)
    w.Unpack(packed, 0, dst, COMM)
    w.Free()
    return dst


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datatypes(), st.integers(1, 3), st.integers(0, 2**31))
def test_packers_match_mpi_pack_and_unpack_inverts(t, count, seed):
    t = t.Commit()
    try:
        block = canonicalize(t).repeat(count) if count > 1 else canonicalize(t)
        _, ext = t.Get_extent()
        tlb, text = t.Get_true_extent()
        nbytes = max(1, (count - 1) * ext + tlb + text, block.span()[1])
        rep = t.Create_contiguous(count).Commit()
        src = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
        want = _pack_with_mpi(rep, src)
        assert block.size == want.size
        back = _unpack_with_mpi(rep, want, nbytes)
        for name in PACKERS:
            pack, unpack = packers.get(name)
            got = np.zeros(block.size + 3, np.uint8)
            assert pack(src, block, got) == block.size
            assert np.array_equal(got[:block.size], want), name
            dst = np.zeros(nbytes, np.uint8)
            unpack(got, block, dst)
            assert np.array_equal(dst, back), name
        rep.Free()
    finally:
        t.Free()


# -- packer bounds and N-D shapes ------------------------------------------------------------
@pytest.mark.parametrize("name", PACKERS)
def test_packers_refuse_out_of_range_blocks(name):
    pack, unpack = packers.get(name)
    src = np.zeros(100, np.uint8)
    with pytest.raises(ValueError):
        pack(src, StridedBlock(0, (8, 13), (1, 8)), np.zeros(200, np.uint8))  # 104 > 100
    with pytest.raises(ValueError):
        pack(src, StridedBlock(0, (8, 4), (1, 16)), np.zeros(31, np.uint8))   # packed too small
    with pytest.raises(ValueError):
        unpack(np.zeros(32, np.uint8), StridedBlock(96, (8, 2), (1, 8)), src)


@pytest.mark.parametrize("name", PACKERS)
@pytest.mark.parametrize("nd", [1, 2, 3, 4, 5])
def test_nd_blocks_match_numpy_slicing(name, nd):
    rng = np.random.default_rng(nd)
    shape = tuple(int(x) for x in rng.integers(2, 6, nd)) + (3,)
    a = rng.random(shape)
    sl = tuple(slice(1, s) if i % 2 else slice(0, s - 1) for i, s in enumerate(shape[:-1])) + \
        (slice(None),)
    t = MPI.DOUBLE.Create_subarray(list(shape), [len(range(*x.indices(s))) for x, s in
                                                zip(sl, shape)],
                                   [x.indices(s)[0] for x, s in zip(sl, shape)]).Commit()
    block = canonicalize(t)
    t.Free()
    pack, unpack = packers.get(name)
    out = np.empty(block.size, np.uint8)
    pack(a, block, out)
    assert np.array_equal(out.view(np.float64), a[sl].reshape(-1))
    b = np.zeros_like(a)
    unpack(out, block, b)
    assert np.array_equal(b[sl], a[sl])
    b[sl] = 0
    assert not b.any()  # nothing outside the block was written


def test_native_plan_packs_all_faces_at_offsets():
    pytest.importorskip("hpc._core")
    a = np.arange(4 * 5 * 6, dtype=np.float64).reshape(4, 5, 6)
    blocks = [StridedBlock(8, (8, 5, 4), (1, 48, 240)), StridedBlock(0, (48,), (1,)),
              StridedBlock(48, (16, 3, 2), (1, 96, 480))]
    for name in PACKERS:
        plan = packers.Plan(name, blocks, a.nbytes)
        buf = np.empty(plan.total, np.uint8)
        assert plan.pack_all(a, buf) == plan.total == sum(b.size for b in blocks)
        pack, _ = packers.get("numpy")
        for b, o in zip(blocks, plan.offsets):
            ref = np.empty(b.size, np.uint8)
            pack(a, b, ref)
            assert np.array_equal(buf[o:o + b.size], ref)
        z = np.zeros_like(a)
        plan.unpack_all(buf, z)
        one = np.empty(blocks[0].size, np.uint8)
        plan.pack_one(0, z, one)
        assert np.array_equal(one, buf[:blocks[0].size])
    with pytest.raises(ValueError):
        packers.Plan("native", blocks, 100)  # blocks reach beyond 100 bytes


# -- multi-block plans (one sweep over the source) against MPI_Pack --------------------------
def _native_plan(blocks, nbytes, sweep):
    pytest.importorskip("hpc._core")
    return packers.Plan("native", blocks, nbytes, sweep=sweep)._native


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(datatypes(), min_size=1, max_size=6), st.integers(0, 2**31))
def test_plan_sweep_matches_mpi_pack_of_every_type_in_turn(types, seed):
    """Several types over ONE source buffer (they may overlap each other): the plan's single
    sweep (any thread count) gives the bytes of MPI_Pack called on each type in turn, and
    unpack_all gives MPI_Unpack in turn (where two types write the same byte, the later wins)."""
    types = [t.Commit() for t in types]
    try:
        blocks = [canonicalize(t) for t in types]
        nbytes = max([1] + [b.span()[1] for b in blocks]
                     + [sum(t.Get_true_extent()) for t in types])
        src = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
        wraps = [t.Create_resized(0, nbytes).Commit() for t in types]
        want = np.zeros(sum(w.Pack_size(1, COMM) for w in wraps) + 1, np.uint8)
        pos = 0
        for w in wraps:
            pos = w.Pack(src, want, pos, COMM)
        want = want[:pos]
        back = np.zeros(nbytes, np.uint8)
        upos = 0
        for w in wraps:
            upos = w.Unpack(want, upos, back, COMM)
        for w in wraps:
            w.Free()
        assert sum(b.size for b in blocks) == pos
        for sweep in (True, False):
            plan = _native_plan(blocks, nbytes, sweep)
            for threads in (1, 2):
                got = np.full(pos + 5, 7, np.uint8)
                assert plan.pack_all(src, got, threads) == pos
                assert np.array_equal(got[:pos], want), (sweep, threads)
                assert (got[pos:] == 7).all()  # nothing past the packed bytes
                dst = np.zeros(nbytes, np.uint8)
                assert plan.unpack_all(got, dst, threads) == pos
                assert np.array_equal(dst, back), (sweep, threads)
    finally:
        for t in types:
            t.Free()


def _halo_faces(shape, r, q):
    from hpc.core.decomp import decompose
    from hpc.halo.engine import HaloExchange

    dec = decompose(COMM, shape)
    h = HaloExchange(dec.cart, dec.local_shape, r, quantities=q, method="datatype")
    return dec, h


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(st.integers(3, 9), st.integers(3, 9), st.integers(3, 9)),
       st.integers(1, 3), st.sampled_from([None, 1, 2, 3, 5]), st.integers(0, 2**31))
def test_halo_faces_one_sweep_match_mpi_pack(shape, r, q, seed):
    """The 26 send faces of a halo (non-cubic, radius 1-3, Q quantities or none), packed in
    one sweep, equal MPI_Pack of the face types in turn; the 26 ghost regions unpack like
    MPI_Unpack (they are disjoint, so the sweep order is used for unpacking too)."""
    r = min(r, *shape)
    dec, h = _halo_faces(shape, r, q)
    try:
        field = h.allocate()
        field[...] = np.random.default_rng(seed).random(field.shape)
        fb = field.reshape(-1).view(np.uint8)
        total = sum(f.nbytes for f in h.faces)
        want = np.zeros(total + 64, np.uint8)
        pos = 0
        for f in h.faces:
            pos = f.send_type.Pack(fb, want, pos, h.comm)
        assert pos == total
        back = np.zeros_like(field)
        bb = back.reshape(-1).view(np.uint8)
        upos = 0
        for f in h.faces:
            upos = f.recv_type.Unpack(want, upos, bb, h.comm)
        for sweep in (True, False):
            send = _native_plan([f.send_block for f in h.faces], field.nbytes, sweep)
            recv = _native_plan([f.recv_block for f in h.faces], field.nbytes, sweep)
            for threads in (1, 2):
                got = np.zeros(total, np.uint8)
                send.pack_all(field, got, threads)
                assert np.array_equal(got, want[:total]), (sweep, threads)
                z = np.zeros_like(field)
                recv.unpack_all(got, z, threads)
                assert np.array_equal(z, back), (sweep, threads)
    finally:
        h.free()
        dec.cart.Free()


def test_plan_sweep_cuts_3d_faces_into_planes():
    """The sweep runs per-plane pieces of 3-D blocks (what lets faces share hot planes)."""
    pytest.importorskip("hpc._core")
    blocks = [StridedBlock(8, (8, 5, 4), (1, 48, 240)), StridedBlock(0, (48,), (1,))]
    assert _native_plan(blocks, 4 * 240, True).pieces == 4 + 1
    assert _native_plan(blocks, 4 * 240, False).pieces == 2


@pytest.mark.parametrize("run", [1, 8, 24, 72, 192, 256, 320, 1000, 8192, 8256])
def test_native_run_lengths_match_numpy(run):
    """Each kernel family (fixed lengths, inline 64-byte pieces, memcpy) packs and unpacks
    exactly the numpy packer's bytes, in a plan (sweep) and block by block."""
    pytest.importorskip("hpc._core")
    rng = np.random.default_rng(run)
    stride = run + 40
    blocks = [StridedBlock(8, (run, 3, 2), (1, stride, 4 * stride)),
              StridedBlock(3 * stride, (run, 4), (1, -stride))]
    nbytes = 8 * stride + run
    src = rng.integers(0, 256, nbytes, dtype=np.uint8)
    np_pack, np_unpack = packers.get("numpy")
    nat_pack, nat_unpack = packers.get("native")
    for b in blocks:
        want, got = np.empty(b.size, np.uint8), np.empty(b.size, np.uint8)
        np_pack(src, b, want)
        nat_pack(src, b, got)
        assert np.array_equal(got, want)
        d1, d2 = np.zeros(nbytes, np.uint8), np.zeros(nbytes, np.uint8)
        np_unpack(want, b, d1)
        nat_unpack(got, b, d2)
        assert np.array_equal(d1, d2)
    plan = packers.Plan("native", blocks, nbytes)
    buf = np.empty(plan.total, np.uint8)
    plan.pack_all(src, buf)
    ref = np.concatenate([np.empty(b.size, np.uint8) for b in blocks])
    for b, o in zip(blocks, plan.offsets):
        np_pack(src, b, ref[o:o + b.size])
    assert np.array_equal(buf, ref)
