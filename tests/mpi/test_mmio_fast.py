"""The Matrix Market reader's fast path, compressed inputs and the array format (1-4 ranks).

The reference is ``scipy.io.mmread`` on the same (uncompressed) file, gathered and compared
exactly; malformed ranges that the fast parser would accept (a numeral's prefix, extra tokens,
non-finite values) must still be errors naming the line.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core.errors import UsageError
from hpc.sparse.mmio import read_header, read_matrix

pytestmark = pytest.mark.mpi
comm = MPI.COMM_WORLD
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "matrices"
# fastest presets: the test is about reading, not compressing
COMPRESS = {".gz": lambda b: gzip.compress(b, compresslevel=1),
            ".bz2": lambda b: bz2.compress(b, compresslevel=1),
            ".xz": lambda b: lzma.compress(b, preset=0)}


def shared_tmpdir() -> str:
    d = tempfile.mkdtemp(prefix="hpc_mmio_") if comm.rank == 0 else None
    return comm.bcast(d, root=0)


def _write(d: str, name: str, data: bytes | str | None) -> str:
    path = os.path.join(d, name)
    if comm.rank == 0:
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    comm.Barrier()
    return path


@pytest.fixture
def native():
    """The native Matrix Market parser; the test skips where hpc._core.mmio is not built."""
    import hpc.sparse.mmio as mmio

    parse = mmio._native_parser()
    if parse is None:
        pytest.skip("hpc._core.mmio not built")
    return parse


@pytest.fixture(params=["native", "fmm"])
def parser(request, monkeypatch):
    """Both fast parsers: the native strict one (hpc._core.mmio) and fast_matrix_market
    behind the byte checks (what runs where the extension is not built)."""
    import hpc.sparse.mmio as mmio

    if request.param == "native":
        request.getfixturevalue("native")  # skips where hpc._core.mmio is not built
    else:
        monkeypatch.setattr(mmio, "_native_parser", lambda: None)
    return request.param


def gathered(A) -> sp.csr_matrix:
    return comm.bcast(A.gather(root=0), root=0)


def reference(path: str) -> sp.csr_matrix:
    return sp.csr_matrix(scipy.io.mmread(path))


@pytest.mark.parametrize("name", ["bcsstk13", "jagmesh7"])
@pytest.mark.parametrize("ext", sorted(COMPRESS))
def test_compressed_real_matrix_identical(name, ext):
    src = DATA / f"{name}.mtx"
    if not src.exists():
        pytest.skip(f"real data not present: {src}")
    d = shared_tmpdir()
    raw = src.read_bytes()
    # a misleading name: the compression is read from the first bytes, not the suffix
    packed = COMPRESS[ext](raw) if comm.rank == 0 else None
    path = _write(d, f"{name}{ext}", packed)
    odd = _write(d, f"{name}.mtx", packed)
    R = reference(str(src))
    plain = gathered(read_matrix(src, comm))
    for p in (path, odd):
        A = read_matrix(p, comm)
        assert A.mm_header.compression == {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}[ext]
        G = gathered(A)
        assert G.shape == R.shape and abs(G - R).max() == 0
        assert (G != plain).nnz == 0
        assert A.local.shape[0] == A.local_rows


def test_compressed_error_names_line():
    d = shared_tmpdir()
    text = ("%%MatrixMarket matrix coordinate real general\n5 5 5\n"
            + "".join(f"{i} {i} {i}.5\n" for i in range(1, 6)).replace("4 4 4.5", "4 4 4x5"))
    path = _write(d, "bad.mtx.gz", gzip.compress(text.encode()))  # (small: any rank may)
    with pytest.raises(UsageError, match=r"bad\.mtx\.gz:6: value '4x5' is not a valid number"):
        read_matrix(path, comm)
    path = _write(d, "trunc.mtx.gz", gzip.compress(text.encode())[:-12])
    with pytest.raises(UsageError, match="trunc.mtx.gz"):
        read_matrix(path, comm)


HEAD = "%%MatrixMarket matrix coordinate real general\n"
ROWS = "".join(f"{i} {(i * 7) % 30 + 1} {i}.25\n" for i in range(1, 31))


@pytest.mark.parametrize("bad,fragment", [
    (ROWS.replace("12 25 12.25", "12 25 1x2"), ":14: value '1x2' is not a valid number"),
    (ROWS.replace("9 4 9.25", "9 4 9,25"), ":11: value '9,25' is not a valid number"),
    (ROWS.replace("5 6 5.25", "5 6 5.25 7"), ":7: expected 3 fields"),
    (ROWS.replace("20 21 20.25", "20 21 nan"), ":22: value 'nan' is not finite"),
    (ROWS.replace("20 21 20.25", "20 21 1e999"), ":22: value '1e999' is not finite"),
    (ROWS.replace("3 22 3.25", "3 22 -inf"), ":5: value '-inf' is not finite"),
    (ROWS.replace("7 20 7.25", "7 2O 7.25"), ":9: column index '2O' is not"),
])
def test_fast_path_faults_name_the_line(bad, fragment, parser):
    d = shared_tmpdir()
    path = _write(d, "bad.mtx", HEAD + "30 30 30\n" + bad)
    with pytest.raises(UsageError) as ei:
        read_matrix(path, comm)
    assert fragment in str(ei.value), str(ei.value)


def test_integer_field_fraction_rejected(parser):
    d = shared_tmpdir()
    rows = "".join(f"{i} {i} {i}\n" for i in range(1, 11)).replace("6 6 6", "6 6 6.5")
    path = _write(d, "i.mtx", "%%MatrixMarket matrix coordinate integer general\n10 10 10\n" + rows)
    with pytest.raises(UsageError, match=r":8: integer value '6.5'"):
        read_matrix(path, comm)


@pytest.mark.parametrize("layout", ["aligned", "crlf", "tabs", "blank-lines"])
def test_irregular_layouts_match_scipy(layout, parser):
    rng = np.random.default_rng(3)
    n, nnz = 40, 150
    i = rng.integers(1, n + 1, nnz)
    j = rng.integers(1, n + 1, nnz)
    v = rng.standard_normal(nnz)
    sep = {"aligned": "   ", "crlf": " ", "tabs": "\t", "blank-lines": " "}[layout]
    end = "\r\n" if layout == "crlf" else "\n"
    lines = [f"{a:>4}{sep}{b}{sep}{float(c)!r}{end}" if layout == "aligned"
             else f"{a}{sep}{b}{sep}{float(c)!r}{end}" for a, b, c in zip(i, j, v)]
    if layout == "blank-lines":
        lines = [ln + ("\n" if k % 17 == 0 else "") for k, ln in enumerate(lines)]
    d = shared_tmpdir()
    path = _write(d, f"{layout}.mtx", HEAD + f"{n} {n} {nnz}{end}" + "".join(lines) + "\n\n")
    R = sp.csr_matrix((v, (i - 1, j - 1)), shape=(n, n))
    G = gathered(read_matrix(path, comm))
    assert abs(G - R).max() == 0


@pytest.mark.parametrize("sym", ["general", "symmetric", "skew-symmetric"])
def test_array_format_matches_scipy(sym):
    rng = np.random.default_rng(5)
    n = 7
    M = rng.standard_normal((n, n))
    M[rng.random((n, n)) < 0.4] = 0.0
    if sym == "symmetric":
        M = np.tril(M) + np.tril(M, -1).T
    elif sym == "skew-symmetric":
        M = np.tril(M, -1) - np.tril(M, -1).T
    d = shared_tmpdir()
    path = os.path.join(d, f"a_{sym}.mtx")
    if comm.rank == 0:
        scipy.io.mmwrite(path, M, symmetry=sym)
    comm.Barrier()
    assert read_header(path).format == "array"
    G = gathered(read_matrix(path, comm))
    np.testing.assert_array_equal(G.toarray(), M)
    np.testing.assert_array_equal(G.toarray(), scipy.io.mmread(path))
    # compressed array input too
    gz = _write(d, f"a_{sym}.mtx.xz", COMPRESS[".xz"](Path(path).read_bytes())
                if comm.rank == 0 else None)
    np.testing.assert_array_equal(gathered(read_matrix(gz, comm)).toarray(), M)


def test_array_nonfinite_rejected():
    d = shared_tmpdir()
    path = _write(d, "an.mtx", "%%MatrixMarket matrix array real general\n2 2\n1\n2\ninf\n4\n")
    with pytest.raises(UsageError, match=r"an\.mtx: value at \(1, 2\) is not finite"):
        read_matrix(path, comm)


def test_memory_estimate_from_header():
    d = shared_tmpdir()
    # declares 10**14 entries: refused from the header, before reading or allocating
    path = _write(d, "huge.mtx", HEAD + "1000000000 1000000000 100000000000000\n1 1 1\n")
    with pytest.raises(UsageError, match="needs .* GiB per rank"):
        read_matrix(path, comm)


# Every collective (and communicator constructor) an mpi4py Intracomm offers that the reader
# or DistCSR could reach: a counting subclass records each call by name.
_COLLECTIVES = ("Barrier", "barrier", "Bcast", "bcast", "Allgather", "allgather", "Allgatherv",
                "Alltoall", "alltoall", "Alltoallv", "Alltoallw", "Allreduce", "allreduce",
                "Reduce", "reduce", "Reduce_scatter", "Gather", "gather", "Gatherv", "Scatter",
                "scatter", "Scatterv", "Scan", "scan", "Exscan", "exscan", "Split",
                "Split_type", "Dup", "Create_cart", "Create_dist_graph_adjacent")


class CountingComm(MPI.Intracomm):
    """The same communicator (a copy of the handle), counting the collectives called on it."""

    calls: list[str]


def _counting(name):
    def call(self, *args, **kw):
        self.calls.append(name)
        return getattr(MPI.Intracomm, name)(self, *args, **kw)
    return call


for _name in _COLLECTIVES:
    setattr(CountingComm, _name, _counting(_name))


@pytest.mark.parametrize("name", ["bcsstk13", "jagmesh7"])
def test_usual_path_collectives(name, parser):
    """The usual read (fast parse on every rank) costs one Allgather and one Alltoallv, and
    read_matrix adds only DistCSR's nnz count (none with the native router, on these files);
    on one rank the reader calls no MPI at all."""
    from hpc.sparse.mmio import read_local_entries

    src = DATA / f"{name}.mtx"
    if not src.exists():
        pytest.skip(f"real data not present: {src}")
    c = CountingComm(comm)
    c.calls = []
    read_matrix(src, c)  # warm: the node communicator is made once and cached on comm
    c.calls = []
    h, roff, i, j, v = read_local_entries(src, c)
    assert c.calls == ([] if comm.size == 1 else ["Allgather", "Alltoallv"])
    # what arrived is exactly this rank's rows of the reference
    lo, hi = int(roff[comm.rank]), int(roff[comm.rank + 1])
    R = reference(str(src))[lo:hi]
    G = sp.csr_matrix((v, (np.asarray(i) - lo, j)), shape=(hi - lo, h.cols))
    assert abs(G - R).max() == 0 and G.nnz == R.nnz
    c.calls = []
    A = read_matrix(src, c)
    # the native router proves from the entries' order (column-major, strictly increasing,
    # one triangle) that nothing is summed: DistCSR gets the count without an allreduce
    count = [] if parser == "native" else ["allreduce"]
    assert c.calls == (count if comm.size == 1 else ["Allgather", "Alltoallv", *count])
    assert (gathered(A) != reference(str(src))).nnz == 0
    assert A.nnz == reference(str(src)).nnz


def test_row_offsets_and_faults_agree_with_few_collectives(parser):
    """User row offsets route the entries; a fault on one rank's range still names its line
    on every rank (the slower path: the exact parser and a scan of line counts)."""
    src = DATA / "jagmesh7.mtx"
    if not src.exists():
        pytest.skip(f"real data not present: {src}")
    n = read_header(src).rows
    roff = np.array([0] + [n // 7 + r for r in range(comm.size - 1)] + [n])
    roff[1:-1] = np.sort(roff[1:-1])
    A = read_matrix(src, comm, row_offsets=roff)
    assert np.array_equal(A.row_offsets, roff)
    assert (gathered(A) != reference(str(src))).nnz == 0
    with pytest.raises(UsageError, match="bad offsets"):
        read_matrix(src, comm, row_offsets=[0, n + 1] if comm.size == 1 else [0, n])
    d = shared_tmpdir()
    # the fault on the last line: the last rank's range at every rank count
    path = _write(d, "late.mtx", HEAD + "30 30 30\n" + ROWS.replace("30 1 30.25", "30 1 3O"))
    with pytest.raises(UsageError, match=r"late\.mtx:32: value '3O' is not a valid number"):
        read_matrix(path, comm)


@pytest.mark.parametrize("text,field,ok", [
    (b"1 2 3.5\n", "real", True),
    (b" 1\t2  +3e2 \r\n\n", "real", True),
    (b"1 2 .5", "real", True),
    (b"", "real", True),
    (b"1 2 1x2\n", "real", False),
    (b"1 2 9.2.5\n", "real", False),
    (b"1 2 3 4\n", "real", False),
    (b"1 2\n", "real", False),
    (b"1 2 -+3\n", "real", False),
    (b"1 2 nan\n", "real", False),
    (b"1 2 -inf\n", "real", False),
    (b"1 2 1e999\n", "real", False),
    (b"0 1 1\n", "real", False),
    (b"1 6 1\n", "real", False),
    (b"2O 2 1\n", "real", False),
    (b"%c\n1 2 3\n", "real", False),
    (b"1 2 -3\n", "integer", True),
    (b"1 2 3.5\n", "integer", False),
    (b"1 2 3e1\n", "integer", False),
    (b"2 3\n", "pattern", True),
    (b"2 3 1\n", "pattern", False),
])
def test_native_parser_accepts_only_exact_lines(native, text, field, ok):
    """The native parser accepts exactly what the exact NumPy parser reads, with the same
    numbers; anything else is None (the exact parser then names the line)."""
    import hpc.sparse.mmio as mmio

    k = 2 if field == "pattern" else 3
    got = native(text, k, field, 5, 5, False, 1)
    h = mmio.Header("t.mtx", field, "general", 5, 5, 0, 2, 0)
    if ok:
        i, j, v, _ = mmio._parse_region(h, text, 3)
        assert got is not None
        for a, b in zip(got, (i, j, v)):
            assert np.array_equal(a, b)
    else:
        assert got is None
        with pytest.raises(UsageError):
            mmio._parse_region(h, text, 3)
    if field == "real" and ok and text:  # skew-symmetric: a diagonal entry is a fault
        assert native(text, k, field, 5, 5, True, 1) is not None
        assert native(b"3 3 1\n" + text, k, field, 5, 5, True, 1) is None


def test_native_parser_threads_agree(native):
    """Split into per-thread chunks at newlines, the result is the one-thread result."""
    rng = np.random.default_rng(7)
    n = 60000
    i, j = rng.integers(1, 1001, n), rng.integers(1, 1001, n)
    v = rng.standard_normal(n)
    text = "".join(f"{a} {b} {float(c)!r}\n" for a, b, c in zip(i, j, v)).encode()
    one = native(text, 3, "real", 1000, 1000, False, 1)
    four = native(memoryview(text), 3, "real", 1000, 1000, False, 4)
    for a, b, c in zip(one, four, (i - 1, j - 1, v)):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def _numerals(rng: np.random.Generator, n: int) -> list[str]:
    """Decimal numerals of every shape a file may hold: signs, leading and trailing zeros,
    no integer or no fraction part, 1-25 digits, exponents from -330 to 330, and the edges
    of the exact fast path (2^53, 10^22, 19 and 20 digits)."""
    out = ["0", "-0", "0.0", "-0.0", ".5", "5.", "+7.25", "9007199254740992",
           "9007199254740993", "90071992547409921", "1e22", "1e23", "1e-22", "1e-23",
           "1234567890123456789", "12345678901234567890", "0000000000000000000001.5",
           "0e-400", "2.2250738585072014e-308", "1.7976931348623157e308", "1E5", "1e+05",
           "123456789012345.6e-7", "0.1", "0.3", "2.5e0001"]
    for _ in range(n):
        digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 26))))
        cut = int(rng.integers(0, len(digits) + 1))
        body = digits[:cut] + ("." + digits[cut:] if cut < len(digits) or rng.random() < .2
                               else "")
        if body.startswith("."):
            body = body if len(body) > 1 else "0"
        exp = "" if rng.random() < 0.5 else f"{rng.choice(['e', 'E'])}" \
            f"{rng.choice(['', '+', '-'])}{int(rng.integers(0, 331))}"
        out.append(f"{rng.choice(['', '-', '+'])}{body}{exp}")
    return out


def test_native_real_values_are_correctly_rounded(native):
    """Every value the native parser reads is Python's correctly rounded ``float`` of the
    numeral (its fast path for short numerals and std::from_chars for the rest)."""
    def normal(t: str) -> bool:  # from_chars refuses underflow (the exact parser reads it)
        x = float(t)
        nonzero = any(c in "123456789" for c in t.lower().split("e")[0])
        return np.isfinite(x) and (abs(x) >= np.finfo(float).tiny or not nonzero)

    nums = [t for t in _numerals(np.random.default_rng(11), 20000) if normal(t)]
    for sep in (" ", "\t", "  "):  # what ends a numeral: a blank or the newline
        text = "".join(f"1 1{sep}{t}{sep if k % 2 else ''}\n" for k, t in enumerate(nums))
        got = native(text.encode(), 3, "real", 1, 1, False, 1)
        assert got is not None
        want = np.array([float(t) for t in nums])
        bad = np.flatnonzero(got[2].view(np.int64) != want.view(np.int64))
        assert bad.size == 0, [(nums[b], got[2][b], want[b]) for b in bad[:5]]
    # the last line without its newline; junk right after a numeral is not a number
    assert native(b"1 1 2.5", 3, "real", 1, 1, False, 1)[2][0] == 2.5
    for junk in (b"1 1 2.5x\n", b"1 1 2.5.1\n", b"1 1 1e5e5\n", b"1 1 1e\n", b"1 1 -\n",
                 b"1 1 1e99999\n", b"1 1 inf\n", b"1 1 nan\n", b"1 1 0x10\n"):
        assert native(junk, 3, "real", 1, 1, False, 1) is None, junk


def test_reused_buffers_never_alias_a_result():
    """read_matrix reuses its text, routed and received buffers from read to read: a matrix
    read earlier, and read_local_entries' arrays, are unchanged by later reads of other
    (larger, smaller, general, pattern) matrices, and every read is mmread's matrix."""
    from hpc.sparse.mmio import read_local_entries

    names = ["bcsstk13", "jagmesh7", "pushpull", "bcsstk13", "1138_bus"]
    paths = [DATA / f"{n}.mtx" for n in names]
    if not all(p.exists() for p in paths):
        pytest.skip("real data not present")
    h, roff, i, j, v = read_local_entries(paths[1], comm)
    kept = [a.copy() for a in (i, j, v)]
    mats, copies = [], []
    for p in paths:
        A = read_matrix(p, comm)
        mats.append(A)
        copies.append(A.local.copy())
        for B, C in zip(mats, copies):  # nothing read so far has changed
            assert (B.local != C).nnz == 0
    for a, b in zip((i, j, v), kept):
        assert np.array_equal(a, b)
    for A, p in zip(mats, paths):
        assert (gathered(A) != reference(str(p))).nnz == 0


def test_native_indices_of_every_length(native):
    """Indices of 1-18 digits (leading zeros, a '+' sign) read exactly; 19 digits refused."""
    rng = np.random.default_rng(5)
    n = 4000
    big = 10**18 - 1
    lens = rng.integers(1, 19, size=(n, 2))
    idx = [[int(rng.integers(10 ** (k - 1), 10**k)) for k in row] for row in lens]
    pad = ["", "0", "+", "00"]
    lines = [f"{pad[r % 4] if len(str(a)) < 17 else ''}{a}\t{b} 1\n"
             for r, (a, b) in enumerate(idx)]
    got = native("".join(lines).encode(), 3, "integer", big, big, False, 1)
    assert got is not None
    assert np.array_equal(got[0], np.array([a for a, _ in idx]) - 1)
    assert np.array_equal(got[1], np.array([b for _, b in idx]) - 1)
    assert native(b"1234567890123456789 1 1\n", 3, "integer", big, big, False, 1) is None
    assert native(b"12a 1 1\n", 3, "integer", big, big, False, 1) is None


def _canonical_rows(L: sp.csr_matrix) -> bool:
    """Columns strictly increasing within every row (sorted, no duplicates)."""
    d = np.diff(L.indices.astype(np.int64))
    starts = L.indptr[1:-1]
    inner = np.ones(d.size, dtype=bool)
    inner[starts[(starts > 0) & (starts <= d.size)] - 1] = False  # a row boundary
    return bool((d[inner] > 0).all())


@pytest.mark.parametrize("order", ["random", "sorted", "unique", "both-triangles"])
@pytest.mark.parametrize("sym", ["general", "symmetric", "skew-symmetric"])
def test_routed_entries_match_scipy_with_duplicates_and_zeros(sym, order, parser):
    """Entries with duplicates (summed; in random order, or sorted so that a duplicate may
    straddle two ranks' ranges), or unique and sorted (the count then proved without an
    allreduce), explicit zeros (kept) and mirrors of symmetric storage (stored in both
    triangles: a mirror may meet a stored entry), on uneven row blocks: each rank's CSR is
    canonical and the matrix and its count are scipy.io.mmread's."""
    rng = np.random.default_rng(11)
    n, m = 37, 400
    i, j = rng.integers(1, n + 1, m), rng.integers(1, n + 1, m)
    if sym != "general" and order != "both-triangles":
        i, j = np.maximum(i, j), np.minimum(i, j)
    if sym == "skew-symmetric":
        i, j = i[i != j], j[i != j]
    if order != "random":  # column-major, as the files in ../shared/data are
        k = np.unique(j * (n + 1) + i, return_index=True)[1] if order == "unique" \
            else np.lexsort((i, j))
        i, j = i[k], j[k]
    v = rng.integers(-2, 3, i.size).astype(float)  # small integers: exact sums, some zeros
    text = (f"%%MatrixMarket matrix coordinate real {sym}\n{n} {n} {i.size}\n"
            + "".join(f"{a} {b} {float(c)!r}\n" for a, b, c in zip(i, j, v)))
    path = _write(shared_tmpdir(), f"dup-{sym}.mtx", text)
    roff = np.array([0] + [min(n, 3 + 11 * r) for r in range(1, comm.size)] + [n])
    A = read_matrix(path, comm, row_offsets=roff)
    assert _canonical_rows(A.local) and A.local.shape == (roff[comm.rank + 1] - roff[comm.rank], n)
    R = sp.csr_matrix(scipy.io.mmread(path))
    R.sum_duplicates()
    G = gathered(A)
    assert (G != R).nnz == 0
    assert A.nnz == R.nnz  # explicit zeros kept, as SciPy keeps them
    if parser == "native":  # the count is proved only where nothing can be summed
        from hpc.sparse.mmio import _entries

        assert _entries(path, comm, row_offsets=roff)[3] == (R.nnz if order == "unique" else None)


def test_csr_from_packed_checks_its_rows():
    from hpc.sparse.mmio import _native_router

    router = _native_router()
    if router is None:
        pytest.skip("hpc._core.mmio not built")
    packed = np.array([[4, 0, 0], [5, 2, 0]], dtype=np.int64)
    packed[:, 2] = np.array([1.5, -2.0]).view(np.int64)
    indptr, indices, data = router[1](packed, 4, 2, 3)
    assert indptr.tolist() == [0, 1, 2] and indices.tolist() == [0, 2]
    assert data.tolist() == [1.5, -2.0]
    for lo, nrows, ncols in ((5, 2, 3), (4, 1, 3), (4, 2, 2)):
        with pytest.raises(ValueError, match="out of range"):
            router[1](packed, lo, nrows, ncols)


def test_write_mm_uses_a_private_temporary():
    """write_mm goes through hpc.core.atomic: a symlink planted at the old predictable
    temporary name (``.NAME.tmp.<pid>``) is never followed, and nothing is left beside the
    target."""
    from hpc.sparse import DistCSR
    from hpc.sparse.mmio import write_mm

    d = shared_tmpdir()
    victim, target = os.path.join(d, "victim"), os.path.join(d, "out.mtx")
    pid = comm.bcast(os.getpid(), root=0)
    if comm.rank == 0:
        with open(victim, "w") as f:
            f.write("keep")
        os.symlink(victim, os.path.join(d, f".out.mtx.tmp.{pid}"))
    comm.Barrier()
    R = sp.random(23, 23, density=0.2, random_state=5, format="csr")
    write_mm(target, DistCSR.from_scipy(R, comm), comm)
    with open(victim) as f:
        assert f.read() == "keep"
    assert sorted(os.listdir(d)) == sorted([".out.mtx.tmp." + str(pid), "out.mtx", "victim"])
    assert abs(sp.csr_matrix(scipy.io.mmread(target)) - R).max() == 0
