"""HPCG's geometry: the process grid, each rank's box and the checks HPCG makes on both.

Every rank holds an ``nx x ny x nz`` box of the global grid; the boxes form an
``npx x npy x npz`` process grid chosen as HPCG 3.1 chooses it (the most cubic factorisation of
the rank count, :func:`process_grid`), rank ``r`` at ``(r % npx, (r // npx) % npy,
r // (npx npy))``. The suite's one decomposition, :func:`hpc.core.decomp.decompose`, lays the
grid out (``dims`` given, no reordering), so ranks sit where HPCG puts them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from hpc.core.decomp import decompose
from hpc.core.errors import UsageError
from hpc.core.runtime import as_comm

MIN_LOCAL = 16      # HPCG: local extents below 16 are not allowed
MULTIPLE = 8        # three coarsenings by 2 need extents divisible by 8
MIN_ASPECT = 0.125  # HPCG's CheckAspectRatio: smallest / largest extent


def _prime_factors(n: int) -> dict[int, int]:
    out: dict[int, int] = {}
    d = 2
    while d * d <= n:
        while n % d == 0:
            out[d] = out.get(d, 0) + 1
            n //= d
        d += 1
    if n > 1 or not out:
        out[n] = out.get(n, 0) + 1
    return out


def process_grid(size: int) -> tuple[int, int, int]:
    """``(npx, npy, npz)`` for ``size`` ranks, as HPCG 3.1 factorises the rank count.

    A prime power ``q**k`` is split as evenly as possible with the larger factors first
    (x, then y); two distinct primes ``q1 < q2`` give ``(q1, q2, 1)``; ``q1**2 q2`` or
    ``q1 q2**2`` keep the repeated prime in z; three distinct primes one each; anything else is
    the factorisation with the least surface ``xy + yz + zx`` (the most cubic one).

    Parameters
    ----------
    size : int
        Number of ranks (at least 1).

    Returns
    -------
    tuple of int
        The process grid, ``npx * npy * npz == size``.
    """
    if size < 1:
        raise UsageError(f"ranks must be at least 1, got {size}")
    f = _prime_factors(size)
    primes = sorted(f)
    if len(primes) == 1:
        q, k = primes[0], f[primes[0]]
        base, extra = divmod(k, 3)
        return q ** (base + (extra >= 1)), q ** (base + (extra >= 2)), q ** base
    a, b = primes[0], primes[1]
    if len(primes) == 2 and f[a] == 1 and f[b] == 1:
        return a, b, 1
    if len(primes) == 2 and f[a] + f[b] == 3:
        return a, b, (a if f[a] == 2 else b)
    if len(primes) == 3 and all(f[p] == 1 for p in primes):
        return primes[0], primes[1], primes[2]
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    best, best_area = (size, 1, 1), 2.0 * size + 1.0
    for x, y in itertools.product(divisors, divisors):
        if x == 1 or y == 1 or size % (x * y):
            continue
        z = size // (x * y)
        area = x * y + y * z + x * z
        if area < best_area:
            best, best_area = (x, y, z), area
    return best


def checked_process_grid(size: int) -> tuple[int, int, int]:
    """:func:`process_grid`, or UsageError where HPCG refuses it (smallest/largest extent of
    the process grid below 1/8, e.g. 11 ranks: 11x1x1)."""
    npx, npy, npz = process_grid(size)
    if min(npx, npy, npz) / max(npx, npy, npz) < MIN_ASPECT:
        raise UsageError(f"{size} ranks: the process grid {npx}x{npy}x{npz} is too far from a "
                         f"cube (smallest/largest below {MIN_ASPECT}, HPCG's rule); use another "
                         "rank count")
    return npx, npy, npz


def check_local(nx: int, ny: int, nz: int) -> None:
    """Raise UsageError unless the local box is one HPCG accepts with 4 grid levels."""
    for name, n in (("nx", nx), ("ny", ny), ("nz", nz)):
        if not isinstance(n, int) or isinstance(n, bool):
            raise UsageError(f"--{name} must be an integer, got {n!r}")
        if n < MIN_LOCAL:
            raise UsageError(f"--{name} {n}: HPCG's local extents are at least {MIN_LOCAL}")
        if n % MULTIPLE:
            raise UsageError(f"--{name} {n}: must be a multiple of {MULTIPLE} (three "
                             "coarsenings by 2 of the 4-level multigrid)")
        if n > 4096:
            raise UsageError(f"--{name} {n}: at most 4096 points per rank and axis")
    if min(nx, ny, nz) / max(nx, ny, nz) < MIN_ASPECT:
        raise UsageError(f"local box {nx}x{ny}x{nz}: smallest/largest extent below "
                         f"{MIN_ASPECT} (HPCG's aspect-ratio rule)")


@dataclass(frozen=True)
class Geometry:
    """One rank's box: local extents, the process grid and this rank's place in it."""

    nx: int
    ny: int
    nz: int
    npx: int
    npy: int
    npz: int
    ipx: int
    ipy: int
    ipz: int
    rank: int
    size: int

    @property
    def nrow(self) -> int:
        """Rows (grid points) on this rank."""
        return self.nx * self.ny * self.nz

    @property
    def global_shape(self) -> tuple[int, int, int]:
        """``(gnx, gny, gnz)``: the whole grid."""
        return self.nx * self.npx, self.ny * self.npy, self.nz * self.npz

    @property
    def origin(self) -> tuple[int, int, int]:
        """Global ``(x, y, z)`` of this rank's first point."""
        return self.ipx * self.nx, self.ipy * self.ny, self.ipz * self.nz

    def coarse(self) -> "Geometry":
        """The next multigrid level: every local extent halved, the same process grid."""
        return Geometry(self.nx // 2, self.ny // 2, self.nz // 2, self.npx, self.npy, self.npz,
                        self.ipx, self.ipy, self.ipz, self.rank, self.size)


def make_geometry(comm, nx: int, ny: int, nz: int) -> Geometry:
    """The fine level's geometry on ``comm`` (collective: one Cartesian communicator is made
    and freed), after HPCG's checks on the local box and the process grid."""
    comm = as_comm(comm)
    check_local(nx, ny, nz)
    p = comm.Get_size()
    npx, npy, npz = checked_process_grid(p)
    dec = decompose(comm, (nz * npz, ny * npy, nx * npx), periodic=False, dims=(npz, npy, npx))
    try:
        ipz, ipy, ipx = dec.coords
        if dec.local_shape != (nz, ny, nx) or dec.cart.Get_rank() != comm.Get_rank():
            raise RuntimeError("hpcg: the decomposition does not place ranks as HPCG does")
    finally:
        dec.free()
    return Geometry(nx, ny, nz, npx, npy, npz, ipx, ipy, ipz, comm.Get_rank(), p)


def owner_rank(g: Geometry, ox, oy, oz):
    """Rank of the box at process coordinates ``(ox, oy, oz)`` (arrays allowed)."""
    return ox + g.npx * (oy + g.npy * oz)


def global_row(g: Geometry, lx, ly, lz):
    """HPCG's global row number of local point ``(lx, ly, lz)``: x fastest over the whole grid."""
    gnx, gny, _ = g.global_shape
    x0, y0, z0 = g.origin
    return (x0 + lx) + gnx * ((y0 + ly) + gny * (z0 + lz))

