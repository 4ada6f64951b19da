"""hpc.halo.datatype.fast against the MPI library (one process): byte-identical to MPI_Pack.

Random nested datatypes (structs of several members, irregular indexed and hindexed types,
vectors, subarrays, resized, in any nesting) are canonicalised into lists of strided blocks;
``fast(dt).pack`` must write exactly MPI_Pack's bytes and ``unpack`` put them where
MPI_Unpack does. Types that cannot be canonicalised go to the library, and say so.
"""
from __future__ import annotations

import mmap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpi4py import MPI

from hpc.core.errors import InputTypeError, UsageError
from hpc.halo import packers
from hpc.halo.canonical import NotCanonical, StridedBlock, canonicalize, canonicalize_blocks
from hpc.halo.datatype import FallbackWarning, fast

COMM = MPI.COMM_SELF
BASES = [MPI.BYTE, MPI.INT, MPI.DOUBLE, MPI.FLOAT, MPI.INT16_T]


def _available(name: str) -> bool:
    try:
        packers.get(name)
        return True
    except Exception:  # noqa: BLE001
        return False


PACKERS = [p for p in packers.PACKERS if _available(p)]
#: the random types run with the native packer and the NumPy reference (Numba's packer walks
#: the same blocks; tests/test_halo_canonical.py runs it on random types)
FAST_PACKERS = [p for p in ("native", "numpy") if p in PACKERS]


@st.composite
def gaps(draw, n: int, ext: int, lens: list[int]) -> list[int]:
    """n increasing displacements (bytes) leaving each block of lens[i] * ext room."""
    out, at = [], draw(st.integers(0, 16))
    for ln in lens:
        out.append(at)
        at += ln * ext + draw(st.integers(0, 24))
    return out


@st.composite
def datatypes(draw, depth: int = 0):
    """A random nested datatype with non-negative displacements and no overlapping bytes."""
    if depth >= 3 or (depth > 0 and draw(st.booleans()) and draw(st.booleans())):
        return draw(st.sampled_from(BASES)).Dup()
    kind = draw(st.sampled_from(["contiguous", "vector", "hvector", "subarray", "indexed",
                                 "hindexed", "hindexed_block", "struct", "struct", "resized"]))
    if kind == "struct":  # several members, each its own nested type
        m = draw(st.integers(2, 3))
        members = [draw(datatypes(depth=depth + 1)) for _ in range(m)]
        lens = [draw(st.integers(0, 3)) for _ in range(m)]
        at, displs = draw(st.integers(0, 8)), []
        for t, n in zip(members, lens):
            lb, ext = t.Get_extent()
            displs.append(at)
            at += max(n, 1) * ext + draw(st.integers(0, 16))
        out = MPI.Datatype.Create_struct(lens, displs, members)
        for t in members:
            t.Free()
        return out
    old = draw(datatypes(depth=depth + 1))
    lb, ext = old.Get_extent()
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
    elif kind == "indexed":  # irregular lengths and displacements (in extents)
        lens = [draw(st.integers(0, 3)) for _ in range(c)]
        displs, at = [], draw(st.integers(0, 3))
        for ln in lens:
            displs.append(at)
            at += ln + draw(st.integers(0, 3))
        t = old.Create_indexed(lens, displs)
    elif kind == "hindexed":
        lens = [draw(st.integers(1, 3)) for _ in range(c)]
        t = old.Create_hindexed(lens, draw(gaps(c, ext, lens)))
    elif kind == "hindexed_block":
        t = old.Create_hindexed_block(bl, draw(gaps(c, ext, [bl] * c)))
    else:
        t = old.Create_resized(0, ext + draw(st.integers(0, 24)))
    old.Free()
    return t


def _mpi_pack(t, count: int, src: np.ndarray) -> np.ndarray:
    rep = t.Create_contiguous(count).Commit()
    w = rep.Create_resized(0, src.size).Commit()  # one element over the whole buffer
    out = np.zeros(max(1, w.Pack_size(1, COMM)), np.uint8)
    n = w.Pack(src, out, 0, COMM)
    w.Free()
    rep.Free()
    return out[:n]


def _mpi_unpack(t, count: int, packed: np.ndarray, nbytes: int) -> np.ndarray:
    rep = t.Create_contiguous(count).Commit()
    w = rep.Create_resized(0, nbytes).Commit()
    dst = np.zeros(nbytes, np.uint8)
    w.Unpack(packed, 0, dst, COMM)
    w.Free()
    rep.Free()
    return dst


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datatypes(), st.integers(1, 3), st.integers(0, 2**31), st.integers(0, 5))
def test_fast_pack_is_byte_identical_to_mpi_pack(t, count, seed, position):
    t = t.Commit()
    try:
        _, ext = t.Get_extent()
        tlb, text = t.Get_true_extent()
        nbytes = max(1, (count - 1) * ext + tlb + text)
        src = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
        want = _mpi_pack(t, count, src)
        back = _mpi_unpack(t, count, want, nbytes)
        for name in FAST_PACKERS:
            ft = fast(t, packer=name)
            assert ft.canonical, ft.reason
            assert ft.pack_size(count) == want.size
            got = np.full(position + want.size + 4, 7, np.uint8)
            assert ft.pack(src, got, position, count=count) == position + want.size
            assert np.array_equal(got[position:position + want.size], want), (name, ft.blocks)
            assert (got[:position] == 7).all() and (got[position + want.size:] == 7).all()
            dst = np.zeros(nbytes, np.uint8)
            assert ft.unpack(got, position, dst, count=count) == position + want.size
            assert np.array_equal(dst, back), name
    finally:
        t.Free()


def test_mpi4py_count_convention_and_buffer_kinds():
    t = MPI.DOUBLE.Create_vector(3, 1, 2).Commit()  # extent 5 doubles
    a = np.arange(12.0)  # 2 whole elements (extent 40 B): mpi4py packs len // extent of them
    ft = fast(t)
    out = bytearray(ft.pack_size(2))
    assert ft.pack(a, out, 0) == 48
    assert np.array_equal(np.frombuffer(bytes(out)), [0, 2, 4, 5, 7, 9])
    mpi = bytearray(t.Pack_size(2, COMM))
    assert t.Pack(a, mpi, 0, COMM) == 48 and bytes(mpi[:48]) == bytes(out)
    with pytest.raises(UsageError, match="packed buffer holds 10 bytes"):
        ft.pack(a, bytearray(10), 0)
    with pytest.raises(UsageError, match="position 60 outside"):
        ft.pack(a, out, 60)
    with pytest.raises(UsageError, match="writable"):
        ft.pack(a, bytes(48), 0)
    with pytest.raises(UsageError, match="strided buffer has 96 bytes"):
        ft.pack(a, out, 0, count=3)
    with pytest.raises(UsageError, match="too small for 3"):
        ft.irecv(COMM, [a, 3], 0, 0)
    with pytest.raises(InputTypeError):
        ft.pack(object(), out, 0)
    with pytest.raises(InputTypeError):
        fast("MPI_DOUBLE")
    t.Free()


def test_native_one_call_path_serves_repeat_calls_like_the_python_path():
    """The native packer binds one CPython function as the instance's pack/unpack: the first
    call of a count goes through the Python path (it builds the plan), later calls of numpy
    arrays are served natively -- the same bytes, positions and one-line errors, in every
    mpi4py argument form; other buffers go back to the Python path; the function keeps its
    FastType alive (`fast(t).pack(...)`) and the cycle is collected."""
    import gc
    import types
    import weakref

    if "native" not in PACKERS:
        pytest.skip("native packer not built")
    t = MPI.DOUBLE.Create_vector(4, 3, 7).Commit()  # extent 24 doubles, 12 moved
    try:
        a = np.random.default_rng(5).random(2 * 24)
        want = _mpi_pack(t, 2, a.view(np.uint8))
        ft = fast(t)
        assert isinstance(ft.pack, types.BuiltinFunctionType)  # native, not the method
        assert isinstance(ft.unpack, types.BuiltinFunctionType)
        for _ in range(2):  # first: the Python path builds the plan; then: native
            out = np.full(3 + want.size, 9, np.uint8)
            assert ft.pack(a, out, 3) == 3 + want.size
            assert np.array_equal(out[3:], want) and (out[:3] == 9).all()
        pk = ft.pack
        for call in (lambda o: pk(a, o), lambda o: pk(a, o, 0, None, 2),
                     lambda o: pk(a, o, count=2), lambda o: pk(inbuf=a, outbuf=o),
                     lambda o: pk(a, o, position=0, comm=COMM, count=2),
                     lambda o: pk(bytearray(a.tobytes()), o)):
            out = np.zeros(want.size, np.uint8)
            assert call(out) == want.size and np.array_equal(out, want)
        back = np.zeros_like(a)
        assert ft.unpack(want, 0, back) == want.size
        assert ft.unpack(want, 0, back, count=2) == want.size
        assert ft.unpack(inbuf=want, position=0, outbuf=back, count=2) == want.size
        assert np.array_equal(back.view(np.uint8), _mpi_unpack(t, 2, want, a.nbytes))
        with pytest.raises(UsageError, match="packed buffer holds 10 bytes"):
            ft.pack(a, np.zeros(10, np.uint8))
        with pytest.raises(UsageError, match="position 400 outside"):
            ft.pack(a, np.zeros(want.size, np.uint8), 400)
        with pytest.raises(UsageError, match="position -1 outside"):
            ft.pack(a, np.zeros(want.size, np.uint8), -1)
        ro = np.zeros(want.size, np.uint8)
        ro.flags.writeable = False
        with pytest.raises(UsageError, match="read-only|writable"):
            ft.pack(a, ro)
        with pytest.raises(UsageError, match="count must be >= 0"):
            ft.pack(a, np.zeros(want.size, np.uint8), count=-1)
        with pytest.raises(TypeError):
            ft.pack(a, np.zeros(want.size, np.uint8), 0, None, 2, 5)  # too many, as a method
        ref = weakref.ref(ft)
        del ft
        gc.collect()
        assert ref() is not None  # pk keeps its FastType, as a bound method does
        out = np.zeros(want.size, np.uint8)
        assert pk(a, out) == want.size and np.array_equal(out, want)  # its plans live on
        out = np.zeros(want.size, np.uint8)
        assert fast(t).pack(a, out) == want.size and np.array_equal(out, want)  # a temporary
        del pk
        gc.collect()
        assert ref() is None  # the instance <-> function cycle is collected: no leak
    finally:
        t.Free()


def test_application_patterns_canonicalise_to_few_blocks():
    D = MPI.DOUBLE
    # WRF: a struct of subarrays of several 3-D fields
    a = D.Create_subarray([10, 12, 14], [10, 2, 14], [0, 3, 0])
    b = D.Create_subarray([10, 12, 14], [10, 3, 14], [0, 7, 0])
    s = MPI.Datatype.Create_struct([1, 1], [0, 10 * 12 * 14 * 8], [a, b]).Commit()
    assert canonicalize_blocks(s) == [StridedBlock(3 * 112, (224, 10), (1, 1344)),
                                      StridedBlock(13440 + 7 * 112, (336, 10), (1, 1344))]
    # the same shape twice at a constant step is one block with an outer dimension
    s2 = MPI.Datatype.Create_struct([1, 1], [0, 2 * 13440], [a, a]).Commit()
    assert canonicalize_blocks(s2) == [StridedBlock(336, (224, 10, 2), (1, 1344, 26880))]
    with pytest.raises(NotCanonical, match="general struct"):
        canonicalize(s)  # the strict single-block form still refuses it
    # LAMMPS: irregular indexed atoms; runs that touch fold into one
    idx = D.Create_indexed([2, 3, 1], [0, 2, 9]).Commit()
    assert canonicalize_blocks(idx) == [StridedBlock(0, (40,), (1,)),
                                         StridedBlock(72, (8,), (1,))]
    # an evenly spaced repeat of a two-block struct stays a short list
    rep = MPI.Datatype.Create_struct([1, 1], [0, 16], [D, MPI.INT]).Create_resized(0, 32)
    many = rep.Create_contiguous(100).Commit()
    blocks = canonicalize_blocks(many)  # type-map order interleaves them: 200 blocks
    assert len(blocks) == 200 and blocks[:2] == [StridedBlock(0, (8,), (1,)),
                                                 StridedBlock(16, (4,), (1,))]
    for t in (a, b, s, s2, idx, rep, many):
        t.Free()


@pytest.mark.parametrize("make, why", [
    (lambda: MPI.SHORT_INT.Dup(), "holes"),
    (lambda: MPI.DOUBLE.Create_darray(2, 0, [8], [MPI.DISTRIBUTE_BLOCK],
                                      [MPI.DISTRIBUTE_DFLT_DARG], [2]), "DARRAY"),
])
def test_fallback_to_the_library_says_so_and_still_packs(make, why):
    t = make().Commit()
    with pytest.warns(FallbackWarning, match=why):
        ft = fast(t)
    assert not ft.canonical and ft.reason.startswith("library fallback") and why in ft.reason
    _, ext = t.Get_extent()
    src = np.random.default_rng(1).integers(0, 256, max(ext, 1) * 2, dtype=np.uint8)
    out = np.zeros(ft.pack_size(2), np.uint8)
    ref = np.zeros(t.Pack_size(2, COMM), np.uint8)
    n = ft.pack(src, out, 0)
    assert n == t.Pack(src, ref, 0, COMM) and np.array_equal(out[:n], ref[:n])
    t.Free()


def test_send_and_recv_to_self_round_trip():
    t = MPI.Datatype.Create_struct([2, 1], [0, 24], [MPI.DOUBLE, MPI.INT]).Commit()
    ft = fast(t)
    src = np.random.default_rng(2).integers(0, 256, 32 * 4, dtype=np.uint8)
    dst = np.zeros_like(src)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a canonical type never warns
        rq = ft.irecv(COMM, [dst, 4], 0, 5)
        ft.isend(COMM, [src, 4], 0, 5).Wait()
        rq.Wait()
    mask = np.zeros(32, bool)
    mask[:16] = mask[24:28] = True
    mask = np.tile(mask, 4)
    assert np.array_equal(dst[mask], src[mask]) and not dst[~mask].any()
    t.Free()


def _native_plan_of(ft, count):
    total, plan = ft._plan(count)
    return plan


@pytest.mark.skipif("native" not in PACKERS, reason="native packer not built")
@pytest.mark.parametrize("kind", ["fixed", "variable", "long"])
@pytest.mark.parametrize("threads", [1, 3])
def test_run_list_packs_block_lists_like_mpi_pack(kind, threads):
    """Block lists of short runs go through the flat run list: a compile-time gather when
    every run has one length, else over-copying chunks (runs near either buffer's end copy
    exactly). Byte-identical to MPI_Pack, unpack to MPI_Unpack, at odd thread counts."""
    rng = np.random.default_rng({"fixed": 1, "variable": 2, "long": 3}[kind])
    n = 3000
    pick = np.sort(rng.choice(4 * n, n, replace=False))
    if kind == "fixed":  # atoms of 3 doubles: one length (adjacent atoms merged are rare)
        t = MPI.DOUBLE.Create_indexed_block(3, (3 * pick[::2]).tolist())
    else:  # mesh points: runs of 1..9 floats (or up to 150), the last one at the buffer end
        top = 150 if kind == "long" else 9
        lens = rng.integers(1, top + 1, n).tolist()
        displs = np.cumsum([0] + [ln + int(g) for ln, g in zip(lens, rng.integers(1, 40, n))])
        t = MPI.FLOAT.Create_indexed(lens, displs[:-1].tolist())
    t = t.Commit()
    try:
        tlb, text = t.Get_true_extent()
        src = rng.integers(0, 256, tlb + text, dtype=np.uint8)
        want = _mpi_pack(t, 1, src)
        back = _mpi_unpack(t, 1, want, src.size)
        ft = fast(t, threads=threads)
        plan = _native_plan_of(ft, 1)
        assert plan.runs > 0, ft.reason  # the run list, not the pieces
        if kind == "fixed":
            assert plan.run_copy == 24
        else:
            assert plan.run_copy < 0  # chunks of the median run length
        for position in (0, 3):
            got = np.full(position + want.size, 7, np.uint8)  # exactly sized: no slack
            assert ft.pack(src, got, position) == position + want.size
            assert np.array_equal(got[position:], want) and (got[:position] == 7).all()
            dst = np.zeros(src.size, np.uint8)
            assert ft.unpack(got, position, dst) == position + want.size
            assert np.array_equal(dst, back)
    finally:
        t.Free()


def _check_transpose(elem, rows: int, n: int, counts, threads: int) -> None:
    """``count`` columns of a rows x n row-major matrix of ``elem`` (a column resized to one
    element) pack as MPI_Pack packs them, and unpack as MPI_Unpack does."""
    size = elem.Get_size()
    col = elem.Create_vector(rows, 1, n)
    t = col.Create_resized(0, size).Commit()
    try:
        for count in counts:
            src = np.random.default_rng(count).integers(0, 256, rows * n * size, dtype=np.uint8)
            want = _mpi_pack(t, count, src)
            ft = fast(t, threads=threads)
            got = np.empty(want.size, np.uint8)
            assert ft.pack(src, got, 0, count=count) == want.size
            assert np.array_equal(got, want)
            dst = np.zeros(src.size, np.uint8)
            ft.unpack(got, 0, dst, count=count)
            assert np.array_equal(dst, _mpi_unpack(t, count, want, src.size))
    finally:
        col.Free()
        t.Free()


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("elem,rows,n", [(MPI.INT, 37, 70), (MPI.DOUBLE, 300, 130),
                                         (MPI.C_DOUBLE_COMPLEX, 19, 512),
                                         (MPI.C_FLOAT_COMPLEX, 64, 1000)])
def test_transpose_blocks_any_shape_like_mpi_pack(threads, elem, rows, n):
    """Transposes of 4/8/16-byte elements go through the blocked buffer kernel (blocks of
    512 bytes of a row by 8 KiB / 512 B rows): rows and columns that are not whole blocks,
    a row stride not a power of two; unpack writes the columns' bytes and no others."""
    _check_transpose(elem, rows, n, (n // 2, 33, 2), threads)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("n", [40, 256])
def test_transpose_columns_pack_like_mpi_pack(threads, n):
    """FFT transposes (columns of a row-major matrix as resized vectors) pack in blocks of
    columns and rows through a buffer (n = 256: the packed columns a multiple of 4 KiB
    apart): the same bytes as MPI_Pack, and unpack likewise."""
    _check_transpose(MPI.C_DOUBLE_COMPLEX, n, n, (16, n // 2, 7), threads)  # whole tiles and not


@pytest.mark.skipif("native" not in PACKERS, reason="native packer not built")
@pytest.mark.parametrize("span,length", [("cache", 4), ("cache", 8), ("cache", 24),
                                         ("far", 24), ("over4g", 8)])
def test_run_list_gathers_of_shuffled_runs_every_loop_and_offset_width(span, length):
    """ddtbench's LAMMPS/SPECFEM3D lists: runs of one length in shuffled order. 1007 runs
    exercise the gather's eight-run step (32-bit offsets read in pairs), its four-run step
    and its tail. Offsets past 4 GiB are read as 64 bits; runs spanning more than the
    last-level cache prefetch. Pack equals MPI_Pack (or, on the huge sparse buffers, a
    numpy gather), unpack writes exactly those bytes back."""
    rng = np.random.default_rng(length)
    n = 1007
    nbytes = {"cache": 8 * n * length, "far": 1 << 30, "over4g": 5 << 30}[span]
    # shuffled, as ddtbench draws them; never adjacent (neighbours would merge into one run)
    offs = 2 * length * rng.choice(nbytes // (2 * length), n, replace=False)
    try:  # anonymous maps: only the runs' pages are ever touched (numpy would ask for 2 MiB
        # huge pages on large arrays, and zero one per run)
        src, dst = (np.frombuffer(mmap.mmap(-1, nbytes), np.uint8) for _ in range(2))
    except (OSError, MemoryError):
        pytest.skip(f"no {nbytes >> 20} MiB of address space")
    idx = (offs[:, None] + np.arange(length)).reshape(-1)
    src[idx] = rng.integers(1, 256, idx.size, dtype=np.uint8)
    t = MPI.BYTE.Create_indexed_block(length, offs.tolist()).Commit()
    try:
        ft = fast(t)
        plan = _native_plan_of(ft, 1)
        assert plan.runs == n and plan.run_copy == length
        assert plan.run_offset_bits == (64 if span == "over4g" else 32)
        if span != "cache" and not plan.run_prefetch:
            pytest.skip("this host reports a last-level cache of a GiB or more")
        assert plan.run_prefetch == (span != "cache")
        want = _mpi_pack(t, 1, src) if span == "cache" else src[idx]
        got = np.zeros(n * length, np.uint8)
        assert ft.pack(src, got, 0, count=1) == got.size
        assert np.array_equal(got, want)
        assert ft.unpack(got, 0, dst, count=1) == got.size
        if span == "cache":
            assert np.array_equal(dst, _mpi_unpack(t, 1, want, nbytes))
        else:  # the runs, and none of the bytes just before or after them (no over-copy)
            assert np.array_equal(dst[idx], src[idx])
            gap = (offs[:, None] + np.r_[np.arange(-length, 0), np.arange(length, 2 * length)])
            assert not dst[gap[(gap >= 0) & (gap < nbytes)]].any()
    finally:
        t.Free()
