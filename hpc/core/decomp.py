"""The suite's one block decomposition of a structured grid over a Cartesian communicator.

``decompose(comm, global_shape)`` lays the ranks out as a process grid (``MPI_Dims_create``),
creates the Cartesian communicator and gives each rank its block: a contiguous box of cells,
the same extent for every rank with the same coordinate along an axis (so neighbouring faces
always match). Sizes need not divide: along each axis the first ``n % p`` blocks get one more
cell (:func:`hpc.core.partition.block_range`).

Users: the halo exchange (:mod:`hpc.halo`), CG's matrix-free stencil operator and DCDM's
distributed network (which cuts its blocks in units of 2 cells, ``align=2``, so that no 2x2x2
pooling cell straddles two ranks).

Axis order is the array's: axis 0 is the Cartesian communicator's dimension 0 (usually z,
slowest varying).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from mpi4py import MPI

from .errors import InputTypeError, UsageError
from .partition import block_range
from .runtime import as_comm

__all__ = ["Decomposition", "decompose"]


@dataclass(frozen=True)
class Decomposition:
    """One rank's block of a global grid on a Cartesian communicator.

    Attributes
    ----------
    cart : mpi4py.MPI.Cartcomm
        The Cartesian communicator the blocks are laid on (created by :func:`decompose`; the
        caller frees it with :meth:`free`).
    dims : tuple of int
        Ranks along each axis (the process grid); their product is the communicator's size.
    coords : tuple of int
        This rank's coordinates in the process grid.
    periodic : tuple of bool
        Whether each axis wraps around.
    global_shape : tuple of int
        Cells of the whole grid along each axis.
    local_shape : tuple of int
        Cells this rank owns along each axis.
    offset : tuple of int
        Global index of this rank's first owned cell along each axis.
    align : int
        Blocks start and end on multiples of ``align`` cells (1: any cell).
    """

    cart: MPI.Cartcomm
    dims: tuple[int, ...]
    coords: tuple[int, ...]
    periodic: tuple[bool, ...]
    global_shape: tuple[int, ...]
    local_shape: tuple[int, ...]
    offset: tuple[int, ...]
    align: int = 1

    @property
    def ndim(self) -> int:
        """Number of grid axes."""
        return len(self.global_shape)

    @property
    def lo(self) -> tuple[int, ...]:
        """Global index of this rank's first owned cell per axis (the same as ``offset``)."""
        return self.offset

    @property
    def hi(self) -> tuple[int, ...]:
        """One past this rank's last owned cell per axis."""
        return tuple(o + n for o, n in zip(self.offset, self.local_shape))

    def global_slices(self) -> tuple[slice, ...]:
        """This rank's block as slices of a global array."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.local_shape))

    def bounds(self, axis: int, coord: int) -> tuple[int, int]:
        """``(start, stop)``: the global cells of the ``coord``-th block along ``axis``."""
        a, b = block_range(self.global_shape[axis] // self.align, self.dims[axis], coord)
        return self.align * a, self.align * b

    def owner(self, axis: int, index: np.ndarray) -> np.ndarray:
        """Process-grid coordinate along ``axis`` of the block holding each global ``index``."""
        cuts = np.array([self.bounds(axis, c)[0] for c in range(self.dims[axis])] +
                        [self.global_shape[axis]], dtype=np.int64)
        return np.searchsorted(cuts, np.asarray(index), side="right") - 1

    def free(self) -> None:
        """Free the Cartesian communicator (collective)."""
        if self.cart != MPI.COMM_NULL:
            self.cart.Free()


def _fits(units: Sequence[int], dims: Sequence[int]) -> bool:
    return all(p <= n for n, p in zip(units, dims))


def _best_layout(p: int, units: Sequence[int], want: Sequence[int]) -> tuple[int, ...] | None:
    """The process grid (fixed entries of ``want`` kept) whose smallest block is largest,
    among those that give every rank at least one unit per axis; None if there is none."""
    free = [k for k, w in enumerate(want) if w == 0]
    fixed = int(np.prod([w for w in want if w])) if any(want) else 1
    if fixed == 0 or p % fixed:
        return None
    rest = p // fixed
    divisors = [d for d in range(1, rest + 1) if rest % d == 0]
    best = None
    for combo in itertools.product(divisors, repeat=len(free)):
        if int(np.prod(combo)) != rest:
            continue
        dims = list(want)
        for k, d in zip(free, combo):
            dims[k] = d
        if _fits(units, dims):
            score = min(n // d for n, d in zip(units, dims))
            if best is None or score > best[0]:
                best = (score, tuple(dims))
    return None if best is None else best[1]


def decompose(comm: MPI.Intracomm | None, global_shape: Sequence[int],
              periodic: bool | Sequence[bool] = True, dims: Sequence[int] | None = None, *,
              reorder: bool = False, align: int = 1) -> Decomposition:
    """Block-decompose a grid over a new Cartesian communicator (collective).

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm or None
        The ranks to lay out; None means ``MPI.COMM_WORLD``.
    global_shape : sequence of int
        Cells along each axis, in the array's axis order (any number of axes).
    periodic : bool or sequence of bool, default True
        Whether each axis wraps around (one bool for all axes).
    dims : sequence of int, optional
        The process grid; entries that are 0 (or ``dims=None``) are chosen by
        ``MPI_Dims_create``. When its balanced choice would leave some rank without cells, the
        layout whose smallest block is largest is taken instead.
    reorder : bool, default False
        Let MPI renumber the ranks in the Cartesian communicator.
    align : int, default 1
        Cut blocks in units of ``align`` cells: every extent must be a multiple of it.

    Returns
    -------
    Decomposition
        This rank's block; ``cart`` is a new communicator (free it with ``free()``).

    Raises
    ------
    UsageError (a ValueError), on every rank
        An empty grid, an extent not a multiple of ``align``, ``periodic``/``dims`` of the wrong
        length, a process grid that does not multiply to the number of ranks, or one that leaves
        some rank without cells.
    InputTypeError (a TypeError)
        ``comm`` is not an intra-communicator.

    Notes
    -----
    Cost: one ``MPI_Cart_create`` (collective) and O(ranks) arithmetic.
    """
    comm = as_comm(comm)
    try:
        shape = tuple(int(n) for n in global_shape)
    except (TypeError, ValueError):
        raise InputTypeError(f"global_shape must be a sequence of integers, got {global_shape!r}") from None
    nd = len(shape)
    if nd < 1 or any(n <= 0 for n in shape):
        raise UsageError(f"grid {list(shape)} is empty: every extent must be positive")
    align = int(align)
    if align < 1:
        raise UsageError(f"align must be at least 1, got {align}")
    if any(n % align for n in shape):
        raise UsageError(f"grid {'x'.join(map(str, shape))}: every extent must be a multiple "
                         f"of {align} (blocks are cut in units of {align} cells)")
    per = ((bool(periodic),) * nd if isinstance(periodic, (bool, np.bool_))
           else tuple(bool(p) for p in periodic))
    if len(per) != nd:
        raise UsageError(f"periodic has {len(per)} entries for a {nd}-D grid")
    want = [int(d) for d in dims] if dims is not None else [0] * nd
    if len(want) != nd:
        raise UsageError(f"dims has {len(want)} entries for a {nd}-D grid")
    p = comm.Get_size()
    try:
        pdims = tuple(MPI.Compute_dims(p, want))
    except MPI.Exception as exc:
        raise UsageError(f"cannot lay {p} ranks out as {want}: "
                         f"{exc.Get_error_string()}") from None
    if int(np.prod(pdims)) != p:
        raise UsageError(f"process grid {list(pdims)} does not match {p} ranks")
    units = [n // align for n in shape]
    if not _fits(units, pdims):
        pdims = _best_layout(p, units, want) or pdims
    for k, (n, q) in enumerate(zip(units, pdims)):
        if q > n:
            if align > 1:
                raise UsageError(f"grid extent {n * align} along dimension {k} holds {n} "
                                 f"blocks of {align} cells, fewer than the {q} ranks laid "
                                 "along it")
            raise UsageError(f"grid extent {n} along dimension {k} is smaller than the "
                             f"{q} ranks laid along it")
    cart = comm.Create_cart(list(pdims), periods=list(per), reorder=reorder)
    coords = tuple(cart.Get_coords(cart.Get_rank()))
    rngs = [block_range(n, q, c) for n, q, c in zip(units, pdims, coords)]
    return Decomposition(cart, pdims, coords, per, shape,
                         tuple(align * (b - a) for a, b in rngs),
                         tuple(align * a for a, _ in rngs), align)
