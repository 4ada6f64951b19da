"""TEMPI-style canonical form of MPI derived datatypes: one strided block, or a list of them.

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

Handled combiners (:func:`canonicalize`, one block): NAMED (size == extent), DUP,
CONTIGUOUS, VECTOR, HVECTOR, SUBARRAY, INDEXED_BLOCK / HINDEXED_BLOCK / INDEXED / HINDEXED
when their blocks are regular (equal lengths, evenly spaced displacements), a STRUCT of a
single member, and RESIZED of any of these.

Beyond one block (:func:`canonicalize_blocks`, a list of blocks in type-map order): a STRUCT
of several members, irregular indexed types, and any of the combiners above over such a list
(the list is laid out copy after copy, then neighbouring blocks that form one block are folded
back together). That covers the types applications build (ddtbench's WRF structs of
subarrays, MILC, NAS LU/MG, LAMMPS and SPECFEM3D indexed types, FFT transposes); a packer
driven by the list, block after block, writes exactly ``MPI_Pack``'s bytes.

Not handled (:class:`NotCanonical` with the reason; callers leave the type to the MPI library
and say so): darray and other combiners, named pair types with holes (``MPI_SHORT_INT``),
lists longer than :data:`MAX_BLOCKS` blocks.
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


#: a list form longer than this is left to the library (the plan itself would be the cost)
MAX_BLOCKS = 1 << 18


def _blocks(dt, strict: bool) -> list[StridedBlock]:
    """The unsimplified strided blocks of one datatype, in type-map order (recursive).

    strict: one block only, TEMPI's form (a general struct, irregular indexed blocks or a
    repeated list raise NotCanonical); otherwise a list of blocks, one after another."""
    lb, extent = dt.Get_extent()
    base, combiner, p = dt.decode()
    owned = [base] + list(p.get("datatypes", []))  # handles decode() created for us
    try:
        if combiner == "NAMED":
            size = dt.Get_size()
            if size != extent or lb != 0:
                raise NotCanonical(f"named type {dt.Get_name() or '?'} has holes "
                                   f"(size {size}, extent {extent})")
            return [StridedBlock(0, (size,), (1,))]
        if combiner == "STRUCT":
            types, lens, displs = p["datatypes"], p["blocklengths"], p["displacements"]
            if strict and len(types) != 1:
                raise NotCanonical(f"general struct of {len(types)} member types")
            out: list[StridedBlock] = []
            for t, n, d in zip(types, lens, displs):  # member after member, as MPI_Pack
                if n:
                    out += _repeat(_blocks(t, strict), [(n, t.Get_extent()[1])], d, strict)
            return _merge(out, strict)
        old = _blocks(base, strict)
        _, oext = base.Get_extent()
        if combiner in ("DUP", "RESIZED"):  # the same bytes (a new extent for repetition)
            return old
        if combiner == "CONTIGUOUS":
            return _repeat(old, [(p["count"], oext)], 0, strict)
        if combiner == "VECTOR":
            return _repeat(old, [(p["blocklength"], oext), (p["count"], p["stride"] * oext)],
                           0, strict)
        if combiner == "HVECTOR":
            return _repeat(old, [(p["blocklength"], oext), (p["count"], p["stride"])], 0, strict)
        if combiner == "SUBARRAY":
            sizes, sub, starts = p["sizes"], p["subsizes"], p["starts"]
            n = len(sizes)
            order = range(n - 1, -1, -1) if p["order"] == MPI.ORDER_C else range(n)
            dims, shift, el = [], 0, oext
            for i in order:  # innermost first
                dims.append((sub[i], el))
                shift += starts[i] * el
                el *= sizes[i]
            return _repeat(old, dims, shift, strict)
        if combiner in ("INDEXED_BLOCK", "HINDEXED_BLOCK", "INDEXED", "HINDEXED"):
            displs = list(p["displacements"])
            lens = ([p["blocklength"]] * len(displs) if combiner.endswith("_BLOCK")
                    else list(p["blocklengths"]))
            unit = oext if combiner in ("INDEXED_BLOCK", "INDEXED") else 1
            return _indexed(old, oext, lens, displs, unit, strict)
        raise NotCanonical(f"combiner {combiner} is not a strided form")
    finally:
        for h in owned:
            _free(h)


def _indexed(old: list[StridedBlock], oext: int, lens: list[int], displs: list[int],
             unit: int, strict: bool) -> list[StridedBlock]:
    """Blocks of one base type at displacements (in units): one strided dimension when the
    blocks are regular (equal lengths, evenly spaced), else (not strict) a block each."""
    if not displs:
        return []
    step = _regular(displs)
    if len(set(lens)) == 1 and step is not None:
        return _repeat(old, [(lens[0], oext), (len(displs), step * unit)], displs[0] * unit,
                       strict)
    if strict:
        raise NotCanonical("indexed blocks of different lengths" if len(set(lens)) > 1
                           else "indexed blocks at irregular displacements")
    out: list[StridedBlock] = []
    for n, d in zip(lens, displs):
        if n:
            out += _repeat(old, [(n, oext)], d * unit, strict)
    return _merge(out, strict)


def _shift(b: StridedBlock, by: int) -> StridedBlock:
    return StridedBlock(b.start + by, b.counts, b.strides)


def _repeat(old: list[StridedBlock], dims: list[tuple[int, int]], shift: int,
            strict: bool) -> list[StridedBlock]:
    """``old`` repeated over ``dims`` ((count, byte stride), innermost first), moved by
    ``shift``: one block gains the dimensions; a list is laid out copy after copy."""
    if any(c == 0 for c, _ in dims) or not old:
        return []
    if len(old) == 1:
        b = old[0]
        return [StridedBlock(b.start + shift, b.counts + tuple(c for c, _ in dims),
                             b.strides + tuple(st for _, st in dims))]
    if strict:
        raise NotCanonical(f"a repeated list of {len(old)} blocks")
    copies = 1
    for c, _ in dims:
        copies *= c
    if copies * len(old) > MAX_BLOCKS:
        raise NotCanonical(f"{copies * len(old)} strided blocks (more than {MAX_BLOCKS})")
    offs = [0]
    for c, st in dims:  # each further dimension slower than the ones before
        offs = [k * st + o for k in range(c) for o in offs]
    return _merge([_shift(b, o + shift) for o in offs for b in old], strict)


def _merge(blocks: list[StridedBlock], strict: bool) -> list[StridedBlock]:
    """Simplify each block, drop empty ones, and fold each into the one before it when the
    two are one block in type-map order: the next run of the last dimension, the next copy
    of a repeated block, or a second copy of the same shape (a new outer dimension)."""
    out: list[StridedBlock] = []
    for b in blocks:
        b = simplify(b)
        if b.size == 0:
            continue
        if out:
            m = _fold(out[-1], b)
            if m is not None:
                out[-1] = simplify(m)
                continue
        out.append(b)
    if strict and len(out) > 1:
        raise NotCanonical(f"{len(out)} strided blocks")
    return out


def _fold(a: StridedBlock, b: StridedBlock) -> StridedBlock | None:
    """a then b as one block, or None."""
    nxt = a.start + a.counts[-1] * a.strides[-1]  # where a's last dimension would go on
    if a.ndim == b.ndim and a.counts[:-1] == b.counts[:-1] and a.strides == b.strides \
            and b.start == nxt:  # b continues a's last dimension
        return StridedBlock(a.start, a.counts[:-1] + (a.counts[-1] + b.counts[-1],), a.strides)
    if a.ndim == b.ndim + 1 and a.counts[:-1] == b.counts and a.strides[:-1] == b.strides \
            and b.start == nxt:  # b is the next copy of a repeated block
        return StridedBlock(a.start, a.counts[:-1] + (a.counts[-1] + 1,), a.strides)
    if a.counts == b.counts and a.strides == b.strides:  # two copies: a new outer dimension
        return StridedBlock(a.start, a.counts + (2,), a.strides + (b.start - a.start,))
    return None


def _free(dt) -> None:
    """decode() hands back new handles for derived base types; free them (named are shared)."""
    try:
        if dt != MPI.DATATYPE_NULL and not dt.is_predefined:
            dt.Free()
    except Exception:  # noqa: BLE001 - a handle the library will not free is harmless
        pass


def canonicalize(dt) -> StridedBlock:
    """The canonical strided block of a datatype, or NotCanonical with the reason."""
    lb, extent = dt.Get_extent()
    got = _merge(_blocks(dt, True), True)
    b = got[0] if got else EMPTY
    return StridedBlock(b.start, b.counts, b.strides, extent, lb)


def canonicalize_blocks(dt) -> list[StridedBlock]:
    """The canonical list of strided blocks of a datatype, in type-map order (what
    ``MPI_Pack`` of one element writes, block after block), or NotCanonical with the reason.

    Structs of several members, irregular indexed types and repetitions of those become a
    list; adjacent blocks that are one block (a run continued, a copy repeated at a constant
    step) are folded, so a type with a single-block form gets a list of that one block.
    Empty for a type that moves no bytes."""
    return _merge(_blocks(dt, False), False)


def repeat_blocks(blocks: list[StridedBlock], count: int, extent: int) -> list[StridedBlock]:
    """The blocks of ``count`` consecutive elements (``extent`` bytes apart), folded: one
    block gains an outer dimension; a list is laid out copy after copy."""
    if count == 1:
        return list(blocks)
    return _merge(_repeat(list(blocks), [(count, extent)], 0, False), False)


def try_canonicalize(dt) -> tuple[StridedBlock | None, str]:
    """(block, "canonical") or (None, why the library must handle it)."""
    try:
        return canonicalize(dt), "canonical strided block"
    except NotCanonical as exc:
        return None, str(exc)
