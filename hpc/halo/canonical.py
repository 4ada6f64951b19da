"""TEMPI-style canonical form of MPI derived datatypes: one strided block.

A committed datatype is read through mpi4py's envelope/contents (``Datatype.decode()``) and
turned into a :class:`StridedBlock`: a start byte offset, ``counts`` and ``strides``, where
dimension 0 is a run of ``counts[0]`` contiguous bytes (stride 1) and every further dimension
``i`` repeats everything below it ``counts[i]`` times, ``strides[i]`` bytes apart. Packing
walks the dimensions outermost-slowest, which is exactly the order of the type map that
``MPI_Pack`` follows, so a packer driven by the block is byte-identical to the library.

The raw translation is then simplified in passes until nothing changes (TEMPI's idea):

- a dimension of count 1 is dropped (it moves nothing);
- two adjacent dimensions are fused when the outer stride equals the inner one's span
  (``strides[i+1] == counts[i] * strides[i]``): they are one denser dimension;
- a type that moves no bytes becomes the empty block.

After that two types that describe the same bytes in the same order have the same canonical
form, e.g. a 3-D subarray and the equivalent nested hvectors; the extent (which can differ
between such types, and only matters when the type is repeated) is kept but not compared.

Handled combiners: NAMED (size == extent), DUP, CONTIGUOUS, VECTOR, HVECTOR, SUBARRAY,
INDEXED_BLOCK / HINDEXED_BLOCK / INDEXED / HINDEXED when their blocks are regular (equal
lengths, evenly spaced displacements), a STRUCT of a single member, and RESIZED of any of
these. Everything else (a general struct, irregular indexed types, darray, pair types with
holes) raises :class:`NotCanonical` with the reason; callers then leave the type to the MPI
library and say so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import mul

from mpi4py import MPI


class NotCanonical(Exception):
    """The datatype has no single-strided-block form; use the MPI library's own handling."""


@dataclass(frozen=True)
class StridedBlock:
    """start + sum(i_k * strides[k]) for i_k < counts[k]; counts[0] bytes contiguous."""

    start: int
    counts: tuple[int, ...]
    strides: tuple[int, ...]
    extent: int = field(default=0, compare=False)  # the MPI extent, for repetition
    lb: int = field(default=0, compare=False)

    @property
    def ndim(self) -> int:
        return len(self.counts)

    @property
    def size(self) -> int:
        """Bytes moved (the packed size)."""
        return reduce(mul, self.counts, 1)

    @property
    def block_bytes(self) -> int:
        """Length of each contiguous run."""
        return self.counts[0]

    def span(self) -> tuple[int, int]:
        """Half-open byte range [lo, hi) touched, relative to the buffer start."""
        if self.size == 0:
            return self.start, self.start
        lo = hi = self.start
        for c, s in zip(self.counts[1:], self.strides[1:]):
            d = (c - 1) * s
            lo, hi = (lo + d, hi) if d < 0 else (lo, hi + d)
        return lo, hi + self.counts[0]

    def repeat(self, count: int) -> "StridedBlock":
        """The block of ``count`` consecutive elements (each ``extent`` bytes after the last)."""
        b = StridedBlock(self.start, self.counts + (count,), self.strides + (self.extent,),
                         self.extent * count, self.lb)
        return simplify(b)

    def __str__(self) -> str:
        dims = " x ".join(f"{c}@{s}" for c, s in zip(self.counts, self.strides))
        return f"start {self.start}: {dims}"


EMPTY = StridedBlock(0, (0,), (1,))


def simplify(b: StridedBlock) -> StridedBlock:
    """Drop count-1 dimensions and fuse dense neighbours, repeatedly, until a fixed point."""
    counts, strides = list(b.counts), list(b.strides)
    if any(c == 0 for c in counts):
        return StridedBlock(0, (0,), (1,), b.extent, b.lb)
    changed = True
    while changed:
        changed = False
        # pass 1: a dimension of count 1 contributes no offsets
        for i in range(len(counts) - 1, 0, -1):
            if counts[i] == 1:
                del counts[i], strides[i]
                changed = True
        # pass 2: fuse i+1 into i when i+1 just continues i densely
        i = 0
        while i + 1 < len(counts):
            if strides[i + 1] == counts[i] * strides[i]:
                counts[i] *= counts[i + 1]
                del counts[i + 1], strides[i + 1]
                changed = True
            else:
                i += 1
    return StridedBlock(b.start, tuple(counts), tuple(strides), b.extent, b.lb)


def _regular(displs: list[int]) -> int | None:
    """The common step of evenly spaced displacements (0 for one), else None."""
    if len(displs) < 2:
        return 0
    step = displs[1] - displs[0]
    return step if all(b - a == step for a, b in zip(displs, displs[1:])) else None


def _raw(dt) -> StridedBlock:
    """The unsimplified strided block of one datatype (recursive over the type tree)."""
    lb, extent = dt.Get_extent()
    base, combiner, p = dt.decode()
    owned = [base] + list(p.get("datatypes", []))  # handles decode() created for us
    try:
        if combiner == "NAMED":
            size = dt.Get_size()
            if size != extent or lb != 0:
                raise NotCanonical(f"named type {dt.Get_name() or '?'} has holes "
                                   f"(size {size}, extent {extent})")
            return StridedBlock(0, (size,), (1,), extent, lb)
        if combiner == "STRUCT":
            types = p["datatypes"]
            if len(types) != 1:
                raise NotCanonical(f"general struct of {len(types)} member types")
            return _indexed(types[0], p["blocklengths"], p["displacements"], 1, extent, lb)
        old = _raw(base)
        _, oext = base.Get_extent()
        if combiner == "DUP":
            return old
        if combiner == "RESIZED":  # same bytes, new extent
            return StridedBlock(old.start, old.counts, old.strides, extent, lb)
        if combiner == "CONTIGUOUS":
            return _add(old, [(p["count"], oext)], 0, extent, lb)
        if combiner == "VECTOR":
            return _add(old, [(p["blocklength"], oext), (p["count"], p["stride"] * oext)], 0,
                        extent, lb)
        if combiner == "HVECTOR":
            return _add(old, [(p["blocklength"], oext), (p["count"], p["stride"])], 0, extent, lb)
        if combiner == "SUBARRAY":
            sizes, sub, starts = p["sizes"], p["subsizes"], p["starts"]
            n = len(sizes)
            order = range(n - 1, -1, -1) if p["order"] == MPI.ORDER_C else range(n)
            dims, shift, el = [], 0, oext
            for i in order:  # innermost first
                dims.append((sub[i], el))
                shift += starts[i] * el
                el *= sizes[i]
            return _add(old, dims, shift, extent, lb)
        if combiner in ("INDEXED_BLOCK", "HINDEXED_BLOCK"):
            n = len(p["displacements"])
            unit = oext if combiner == "INDEXED_BLOCK" else 1
            return _indexed(base, [p["blocklength"]] * n, p["displacements"], unit, extent, lb)
        if combiner in ("INDEXED", "HINDEXED"):
            unit = oext if combiner == "INDEXED" else 1
            return _indexed(base, p["blocklengths"], p["displacements"], unit, extent, lb)
        raise NotCanonical(f"combiner {combiner} is not a strided form")
    finally:
        for h in owned:
            _free(h)


def _indexed(base, lengths: list[int], displs: list[int], unit: int, extent: int,
             lb: int) -> StridedBlock:
    """Blocks of one base type at displacements (in units): regular ones only."""
    if len(set(lengths)) > 1:
        raise NotCanonical("indexed blocks of different lengths")
    step = _regular(list(displs))
    if step is None:
        raise NotCanonical("indexed blocks at irregular displacements")
    if not displs:
        return StridedBlock(0, (0,), (1,), extent, lb)
    old = _raw(base)
    _, oext = base.Get_extent()
    return _add(old, [(lengths[0], oext), (len(displs), step * unit)], displs[0] * unit,
                extent, lb)


def _add(old: StridedBlock, dims: list[tuple[int, int]], shift: int, extent: int,
         lb: int) -> StridedBlock:
    counts = old.counts + tuple(c for c, _ in dims)
    strides = old.strides + tuple(s for _, s in dims)
    return StridedBlock(old.start + shift, counts, strides, extent, lb)


def _free(dt) -> None:
    """decode() hands back new handles for derived base types; free them (named are shared)."""
    try:
        if dt != MPI.DATATYPE_NULL and not dt.is_predefined:
            dt.Free()
    except Exception:  # noqa: BLE001 - a handle the library will not free is harmless
        pass


def canonicalize(dt) -> StridedBlock:
    """The canonical strided block of a datatype, or NotCanonical with the reason."""
    return simplify(_raw(dt))


def try_canonicalize(dt) -> tuple[StridedBlock | None, str]:
    """(block, "canonical") or (None, why the library must handle it)."""
    try:
        return canonicalize(dt), "canonical strided block"
    except NotCanonical as exc:
        return None, str(exc)
