"""Stencil sweeps over a halo-exchanged field, with the exchange overlapped by the interior.

A sweep reads the field ``u`` (its ghosts filled by a :class:`~hpc.halo.engine.HaloExchange`)
and writes ``out`` (same shape; only the interior is written): every owned cell becomes the
mean of its 7-point (``stencil7``: itself and its 6 face neighbours) or 27-point
(``stencil27``: the 3 x 3 x 3 cube) neighbourhood, per quantity. The stencil has radius 1 on
every axis, so it needs ghosts of width at least 1 (and all 26 neighbours for ``stencil27``).

Overlap (:meth:`Stencil.sweep` with ``overlap=True``): ``start`` the exchange, update the
*inner* cells (those whose neighbourhood holds no ghost cell) while the messages travel,
``wait``, then update the *shell* (the owned cells next to the ghosts). The inner update
runs in slabs with a progress poke (:meth:`HaloExchange.progress`, an ``Iprobe``) between
them: MPICH moves a rendezvous message only inside MPI calls, so without the pokes nothing
is hidden (2 ranks, 96^3, R=2, Q=2, loaded host: plain 86.4 ms, overlapped without pokes
89.5 ms, with 8 pokes 76.3 ms per sweep). Every cell is computed
by the same expression in the same order either way, so the overlapped result equals the
plain one bit for bit; :func:`hidden_fraction` says how much of the exchange the interior hid.
"""
from __future__ import annotations

import itertools
from time import perf_counter

import numpy as np

from hpc.core.errors import UsageError

from .engine import HaloExchange

KINDS = ("stencil7", "stencil27")


def offsets(kind: str, ndim: int) -> list[tuple[int, ...]]:
    """The neighbourhood of a cell, in a fixed order (the order of the sum)."""
    if kind not in KINDS:
        raise UsageError(f"compute {kind!r}: choose from {', '.join(KINDS)}")
    cube = list(itertools.product((-1, 0, 1), repeat=ndim))
    return cube if kind == "stencil27" else [d for d in cube if sum(map(abs, d)) <= 1]


class Stencil:
    """A radius-1 mean stencil over the fields of one exchange (see the module docstring).

    Parameters
    ----------
    halo : HaloExchange
        The exchange of the fields swept (its radius is at least 1 on every axis).
    kind : {'stencil7', 'stencil27'}
        The neighbourhood (``stencil27`` needs ``neighbors='all'``, the default).
    """

    def __init__(self, halo: HaloExchange, kind: str):
        self.halo, self.kind = halo, kind
        nd = halo.ndim
        self.offs = offsets(kind, nd)
        if kind == "stencil27" and len(halo.directions) != 3 ** nd - 1:
            raise UsageError("stencil27 reads edge and corner ghosts: use neighbors='all'")
        r, n = halo.radii, halo.local_shape
        # owned cells [r, r+n) per axis; inner ones keep one cell away from the ghosts
        lo = [rk for rk in r]
        hi = [rk + nk for rk, nk in zip(r, n)]
        ilo = [min(a + 1, b) for a, b in zip(lo, hi)]
        ihi = [max(b - 1, a) for a, b in zip(ilo, hi)]
        self.inner = tuple(slice(a, b) for a, b in zip(ilo, ihi))
        # the shell, peeled axis by axis into disjoint boxes (empty ones dropped)
        boxes: list[tuple[slice, ...]] = []
        cur_lo, cur_hi = list(lo), list(hi)
        for k in range(nd):
            for a, b in ((cur_lo[k], ilo[k]), (ihi[k], cur_hi[k])):
                if b > a:
                    box = [slice(x, y) for x, y in zip(cur_lo, cur_hi)]
                    box[k] = slice(a, b)
                    boxes.append(tuple(box))
            cur_lo[k], cur_hi[k] = ilo[k], ihi[k]
        self.shell = [b for b in boxes if all(s.stop > s.start for s in b)]
        self.inner_cells = int(np.prod([s.stop - s.start for s in self.inner]))
        self._scale = 1.0 / len(self.offs)

    def _slabs(self, n: int) -> list[tuple[slice, ...]]:
        """The inner box cut into up to n slabs along axis 0 (the same cells, in order)."""
        s0 = self.inner[0]
        edges = np.linspace(s0.start, s0.stop, min(n, max(1, s0.stop - s0.start)) + 1)
        edges = sorted(set(int(round(e)) for e in edges))
        return [(slice(a, b),) + self.inner[1:] for a, b in zip(edges, edges[1:])] or \
            [self.inner]

    def update(self, u: np.ndarray, out: np.ndarray, box: tuple[slice, ...]) -> None:
        """out[box] = mean of u over each cell's neighbourhood (the same order everywhere)."""
        if any(s.stop <= s.start for s in box):
            return
        acc = out[box]
        acc[...] = 0.0
        for d in self.offs:
            acc += u[tuple(slice(s.start + dk, s.stop + dk) for s, dk in zip(box, d))]
        acc *= self._scale

    def sweep(self, u: np.ndarray, out: np.ndarray, overlap: bool = True,
              pokes: int = 8) -> dict[str, float]:
        """One exchange of ``u`` and one stencil update into ``out`` (collective).

        ``overlap``: the inner cells are updated in ``pokes`` slabs with
        :meth:`HaloExchange.progress` between them, so the library moves the messages while
        the interior is computed (0 or 1: one slab, no poke).

        Returns the seconds of this rank's parts: ``exchange`` (in :meth:`start` and
        :meth:`wait`), ``inner`` and ``shell`` compute, ``total`` (wall)."""
        h = self.halo
        t0 = perf_counter()
        if overlap:
            h.start(u)
            t1 = perf_counter()
            for k, box in enumerate(self._slabs(max(1, pokes))):  # no ghost read
                if k:
                    h.progress()
                self.update(u, out, box)
            t2 = perf_counter()
            h.wait()
            t3 = perf_counter()
            exchange, inner = (t1 - t0) + (t3 - t2), t2 - t1
        else:
            h.exchange(u)
            t1 = perf_counter()
            self.update(u, out, self.inner)
            t3 = perf_counter()
            exchange, inner = t1 - t0, t3 - t1
        for box in self.shell:
            self.update(u, out, box)
        t4 = perf_counter()
        return {"exchange": exchange, "inner": inner, "shell": t4 - t3, "total": t4 - t0}


def hidden_fraction(t_plain: float, t_overlap: float, t_exchange: float) -> float:
    """The share of the exchange time hidden behind the interior update: (plain - overlapped)
    / exchange alone, clipped to [0, 1] (Comb's and the literature's usual measure)."""
    if t_exchange <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (t_plain - t_overlap) / t_exchange)))


def rolled_mean(field: np.ndarray, kind: str, ndim: int) -> np.ndarray:
    """The stencil applied everywhere with ``np.roll`` (wrapping at the array's edges).

    The independent answer a sweep is checked against: on a whole periodic global grid it is
    the periodic stencil; on a padded field (zero-padded grid, or a rank's field as it must
    look after an exchange) its interior cells are exact and the wrapped edge cells are
    discarded by the caller."""
    acc = np.zeros_like(field)
    for d in offsets(kind, ndim):
        acc += np.roll(field, [-x for x in d], axis=tuple(range(ndim)))
    acc *= 1.0 / len(offsets(kind, ndim))
    return acc
