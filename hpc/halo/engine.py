"""The suite's one halo-exchange engine: ghost layers of a block-decomposed grid, all neighbours.

Used by ``hpc.halo`` and by the stencil solvers (CG's matrix-free Poisson operator, DCDM's
distributed convolutions). Typical use::

    from hpc.halo.engine import decompose, HaloExchange

    dec = decompose(comm, (NZ, NY, NX), periodic=False)        # Dims_create + Cartesian comm
    halo = HaloExchange(dec.cart, dec.local_shape, radius=1, quantities=None,
                        method="pack", fill=0.0)               # collective
    u = halo.allocate()                                        # zeros, shape local + 2R
    halo.interior(u)[...] = my_block                           # global cells dec.offset + ...
    halo.exchange(u)                                           # ghosts filled in place
    ...
    halo.free()                                                # collective

Contract
--------
- Grid and field: the Cartesian communicator's dimensions are the array's leading axes, in
  order (axis 0 = cart dimension 0, usually z, slowest). A rank's field has shape
  ``local_shape[k] + 2R`` on each of those axes, then ``(Q,)`` if ``quantities`` is given
  (quantities innermost, as in TEMPI's halo benchmark); C-contiguous, of ``dtype``. Interior
  is ``[R:R+n]`` on each axis. Any number of grid dimensions works (1, 2, 3, ...); the halo app
  uses 3.
- ``exchange(field)`` fills, in place, every ghost cell of every neighbour direction
  (``neighbors="all"``: 3^d - 1 of them, 26 in 3-D, so edges and corners too;
  ``neighbors="faces"``: only the 2d face neighbours, enough for a 7-point stencil) with the
  owner's interior values. It is collective over the communicator (every rank calls it).
  Interior cells are never written. Ghost cells are the cells of the neighbour's block, so
  the radius may not exceed any rank's local extent (checked, UsageError on every rank).
- Boundaries: along a periodic dimension the neighbour wraps around (a rank can be its own
  neighbour). Along a non-periodic one, ghost cells beyond the physical boundary get
  ``fill`` when it is not None (e.g. 0.0 for a homogeneous Dirichlet problem) and are left
  untouched when it is None. ``periodic`` defaults to the communicator's own periods.
- Non-divisible grids: local shapes may differ between ranks; each rank passes its own
  (``decompose`` gives it); faces still match because a block's extent along a dimension
  depends only on its coordinate along that dimension.
- Methods: ``datatype`` sends each face with an MPI subarray datatype (the library packs);
  ``pack`` packs each face with a fast packer (``packer="native"|"numba"|"numpy"``) and sends
  contiguous bytes; ``auto`` chooses one of the two per face from the measured model
  (``python -m hpc.halo measure``; see :mod:`hpc.halo.model`), per (canonical type, bytes,
  same host or not). ``strategy`` (a dict) records what was chosen and why.
- Transports: ``transport="p2p"`` posts Irecv/Isend per neighbour (``wait="all"``: one
  Waitall, then one unpack call; ``wait="any"``: unpack each face as it arrives);
  ``"alltoallw"`` does one ``Neighbor_alltoallw`` on a distributed-graph communicator of the neighbours (one strategy
  for all faces there, since the call takes one buffer).
- Faces whose datatypes cannot be canonicalised fall back to the library's datatype send
  (never happens for the subarrays built here; see :mod:`hpc.halo.canonical`).
- ``HaloExchange`` duplicates the communicator (its messages never meet the caller's); call
  ``free()`` (collective) when done, or use it as a context manager.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field as dfield
from typing import Any, Sequence

import numpy as np

from hpc.core.errors import UsageError
from hpc.core.partition import block_range

from . import packers
from .canonical import StridedBlock, try_canonicalize

METHODS = ("datatype", "pack", "auto")
TRANSPORTS = ("p2p", "alltoallw")


@dataclass(frozen=True)
class Decomposition:
    """One rank's share of a global grid on a Cartesian communicator."""

    cart: Any                       # MPI.Cartcomm
    dims: tuple[int, ...]           # process grid, one entry per grid dimension
    coords: tuple[int, ...]         # this rank's coordinates
    periodic: tuple[bool, ...]
    global_shape: tuple[int, ...]
    local_shape: tuple[int, ...]    # cells this rank owns per dimension
    offset: tuple[int, ...]         # global index of its first owned cell per dimension

    def global_slices(self) -> tuple[slice, ...]:
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.local_shape))


def decompose(comm, global_shape: Sequence[int], periodic: bool | Sequence[bool] = True,
              dims: Sequence[int] | None = None, reorder: bool = False) -> Decomposition:
    """Block-decompose a grid (axis order as the array's) over a new Cartesian communicator.

    ``MPI_Dims_create`` chooses the process grid (``dims`` entries that are 0 are free);
    sizes need not divide: the first ``n % p`` blocks of a dimension get one more cell.
    Raises UsageError (on every rank) for an empty grid or a process grid that leaves some
    rank without cells. Collective.
    """
    from mpi4py import MPI

    shape = tuple(int(n) for n in global_shape)
    nd = len(shape)
    if nd < 1 or any(n <= 0 for n in shape):
        raise UsageError(f"grid {list(shape)} is empty: every extent must be positive")
    per = (bool(periodic),) * nd if isinstance(periodic, (bool, np.bool_)) else tuple(map(bool, periodic))
    if len(per) != nd:
        raise UsageError(f"periodic has {len(per)} entries for a {nd}-D grid")
    want = list(dims) if dims is not None else [0] * nd
    if len(want) != nd:
        raise UsageError(f"dims has {len(want)} entries for a {nd}-D grid")
    try:
        pdims = tuple(MPI.Compute_dims(comm.Get_size(), want))
    except MPI.Exception as exc:
        raise UsageError(f"cannot lay {comm.Get_size()} ranks out as {want}: "
                         f"{exc.Get_error_string()}") from None
    for k, (n, p) in enumerate(zip(shape, pdims)):
        if p > n:
            raise UsageError(f"grid extent {n} along dimension {k} is smaller than the "
                             f"{p} ranks laid along it")
    cart = comm.Create_cart(list(pdims), periods=list(per), reorder=reorder)
    coords = tuple(cart.Get_coords(cart.Get_rank()))
    rngs = [block_range(n, p, c) for n, p, c in zip(shape, pdims, coords)]
    return Decomposition(cart, pdims, coords, per, shape, tuple(b - a for a, b in rngs),
                         tuple(a for a, _ in rngs))


@dataclass
class Face:
    """One neighbour direction: what is sent there and where its answer lands."""

    direction: tuple[int, ...]
    index: int                       # position in the direction list (the send tag)
    dest: int                        # rank we send to (PROC_NULL at a physical boundary)
    source: int                      # rank whose face lands in our ghost region -direction
    send_type: Any                   # MPI subarray of the interior cells sent
    recv_type: Any                   # MPI subarray of the ghost cells received
    send_block: StridedBlock | None  # canonical forms (None: not canonicalisable)
    recv_block: StridedBlock | None
    recv_slices: tuple[slice, ...]
    nbytes: int
    method: str = "datatype"
    reason: str = ""
    same_host: bool = True
    sendbuf: np.ndarray | None = dfield(default=None, repr=False)
    recvbuf: np.ndarray | None = dfield(default=None, repr=False)


def _region(d: int, n: int, r: int, send: bool) -> tuple[int, int]:
    """(start, size) along one axis of a padded extent n + 2r, for direction component d."""
    if d == 0:
        return r, n
    if send:
        return (r, r) if d < 0 else (n, r)
    return (0, r) if d < 0 else (n + r, r)


class HaloExchange:
    """Ghost-layer exchange for one field layout on one Cartesian communicator (collective)."""

    def __init__(self, cart, local_shape: Sequence[int], radius: int,
                 quantities: int | None = None, periodic: bool | Sequence[bool] | None = None,
                 dtype: Any = np.float64, method: str = "pack", packer: str = "native",
                 transport: str = "p2p", neighbors: str = "all", fill: float | None = None,
                 model: Any = None, typebuild: str = "subarray", wait: str = "all"):
        from mpi4py import MPI
        from mpi4py.util import dtlib

        if method not in METHODS:
            raise UsageError(f"halo method {method!r}: choose from {', '.join(METHODS)}")
        if transport not in TRANSPORTS:
            raise UsageError(f"halo transport {transport!r}: choose from {', '.join(TRANSPORTS)}")
        if wait not in ("all", "any"):
            raise UsageError(f"wait {wait!r}: choose all or any")
        self.wait = wait
        if neighbors not in ("all", "faces"):
            raise UsageError(f"neighbors {neighbors!r}: choose all or faces")
        topo_dims, topo_periods, coords = cart.Get_topo()
        self.ndim = nd = len(topo_dims)
        self.local_shape = tuple(int(n) for n in local_shape)
        if len(self.local_shape) != nd:
            raise UsageError(f"local_shape {list(self.local_shape)} has {len(self.local_shape)} "
                             f"dimensions, the communicator {nd}")
        self.radius = r = int(radius)
        if r < 1:
            raise UsageError(f"radius must be at least 1, got {r}")
        if quantities is not None and int(quantities) < 1:
            raise UsageError(f"quantities must be at least 1, got {quantities}")
        smallest = cart.allreduce(min(self.local_shape), op=MPI.MIN)
        if r > smallest:
            raise UsageError(f"radius {r} is larger than the smallest local block "
                             f"({smallest} cells along some dimension): ghosts would need "
                             "cells beyond the nearest neighbour")
        self.quantities = None if quantities is None else int(quantities)
        self.dtype = np.dtype(dtype)
        if periodic is None:
            self.periodic = tuple(bool(p) for p in topo_periods)
        elif isinstance(periodic, (bool, np.bool_)):
            self.periodic = (bool(periodic),) * nd
        else:
            self.periodic = tuple(bool(p) for p in periodic)
        self.dims, self.coords = tuple(topo_dims), tuple(coords)
        self.method, self.packer_name, self.transport = method, packer, transport
        self.fill = fill
        self.comm = cart.Dup()
        self.shape = tuple(n + 2 * r for n in self.local_shape) + (
            (self.quantities,) if self.quantities is not None else ())
        self._base = dtlib.from_numpy_dtype(self.dtype)
        if method != "datatype":
            packers.get(packer)  # an unavailable packer is a UsageError now, not mid-exchange

        dirs = [d for d in itertools.product((-1, 0, 1), repeat=nd) if any(d)]
        if neighbors == "faces":
            dirs = [d for d in dirs if sum(map(abs, d)) == 1]
        self.directions = dirs
        hosts = _host_ids(self.comm)
        me = self.comm.Get_rank()
        self.faces: list[Face] = []
        for i, d in enumerate(dirs):
            dest = self._neighbor(d)
            src = self._neighbor(tuple(-x for x in d))
            s_reg = [_region(c, n, r, True) for c, n in zip(d, self.local_shape)]
            r_reg = [_region(c, n, r, False) for c, n in zip(d, self.local_shape)]
            st = self._subarray(s_reg, typebuild)
            rt = self._subarray(r_reg, typebuild)
            sb, why_s = try_canonicalize(st)
            rb, why_r = try_canonicalize(rt)
            nbytes = int(np.prod([s for _, s in s_reg])) * (self.quantities or 1) * self.dtype.itemsize
            peer = dest if dest != MPI.PROC_NULL else src
            same = peer == MPI.PROC_NULL or hosts[peer] == hosts[me]
            f = Face(d, i, dest, src, st, rt, sb, rb,
                     tuple(slice(a, a + s) for a, s in r_reg), nbytes, same_host=same)
            if sb is None or rb is None:
                f.method, f.reason = "datatype", f"library fallback: {why_s if sb is None else why_r}"
            self.faces.append(f)
        self.strategy = self._choose(model)
        if transport == "alltoallw" and len({f.method for f in self.faces}) > 1:
            for f in self.faces:  # one call takes one buffer: the library handles every face
                if f.method == "pack":
                    f.method = "datatype"
                    f.reason = "alltoallw takes one strategy and another face needs the library"
            self.strategy = self._summarise()
        self.field_nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        # Plans: the packed faces' blocks, validated once against the field's size.
        self._pk = [f for f in self.faces if f.method == "pack"]
        self._slot = {f.index: k for k, f in enumerate(self._pk)}
        self._send_plan = self._recv_plan = None
        if self._pk:
            self._send_plan = packers.Plan(packer, [f.send_block for f in self._pk],
                                           self.field_nbytes)
            self._recv_plan = packers.Plan(packer, [f.recv_block for f in self._pk],
                                           self.field_nbytes)
            # one send and one receive buffer; each face's slice sits at its plan offset, so
            # a single pack_all / unpack_all call serves every face
            self._p2p_sbuf = np.empty(max(1, self._send_plan.total), np.uint8)
            self._p2p_rbuf = np.empty(max(1, self._recv_plan.total), np.uint8)
            for f, so, ro in zip(self._pk, self._send_plan.offsets, self._recv_plan.offsets):
                f.sendbuf = self._p2p_sbuf[so:so + f.nbytes]
                f.recvbuf = self._p2p_rbuf[ro:ro + f.nbytes]
        self._all_live = all(f.dest != MPI.PROC_NULL for f in self._pk)
        self._graph = None
        if transport == "alltoallw":
            self._setup_alltoallw()

    # -- construction helpers ------------------------------------------------------------
    def _neighbor(self, d: tuple[int, ...]) -> int:
        from mpi4py import MPI

        c = []
        for k, (x, dk) in enumerate(zip(self.coords, d)):
            y = x + dk
            if not 0 <= y < self.dims[k]:
                if not self.periodic[k]:
                    return MPI.PROC_NULL
                y %= self.dims[k]
            c.append(y)
        return self.comm.Get_cart_rank(c)

    def _subarray(self, reg: list[tuple[int, int]], typebuild: str):
        """The datatype of one region: a subarray, or the same bytes built other ways."""
        from mpi4py import MPI

        sizes = list(self.shape)
        sub = [s for _, s in reg] + ([self.quantities] if self.quantities else [])
        starts = [a for a, _ in reg] + ([0] if self.quantities else [])
        if typebuild == "subarray":
            return self._base.Create_subarray(sizes, sub, starts, order=MPI.ORDER_C).Commit()
        if typebuild in ("hvector", "struct"):
            # nested hvectors, innermost first; an hvector stride is in bytes
            item = self._base.Get_extent()[1]
            t = self._base.Create_contiguous(sub[-1])
            stride = item * sizes[-1]
            off = starts[-1] * item
            for k in range(len(sizes) - 2, -1, -1):
                nt = t.Create_hvector(sub[k], 1, stride)
                t.Free()
                t = nt
                off += starts[k] * stride
                stride *= sizes[k]
            if typebuild == "hvector":
                out = MPI.Datatype.Create_struct([1], [off], [t]) if off else t.Dup()
            else:  # a two-member struct (the region, then nothing): not a strided form
                out = MPI.Datatype.Create_struct([1, 0], [off, 0], [t, MPI.BYTE])
            t.Free()
            return out.Commit()
        raise UsageError(f"typebuild {typebuild!r}: choose subarray, hvector or struct")

    def _choose(self, model) -> dict[str, Any]:
        """Per face: datatype or pack (auto asks the model); returns the record's summary."""
        if self.method in ("datatype", "pack"):
            for f in self.faces:
                if f.reason.startswith("library fallback"):
                    continue
                f.method, f.reason = self.method, f"--method {self.method}"
        else:
            from .model import load_or_measure

            m = model if model is not None else load_or_measure(self.comm)
            self.model_source = m.source or "model given by the caller"
            for f in self.faces:
                if f.reason.startswith("library fallback"):
                    continue
                f.method, f.reason = m.choose(f.send_block, f.nbytes, f.same_host)
            if self.transport == "alltoallw":  # one call, one buffer: one strategy for all
                votes = sum(f.nbytes if f.method == "pack" else -f.nbytes for f in self.faces)
                pick = "pack" if votes > 0 else "datatype"
                for f in self.faces:
                    if not f.reason.startswith("library fallback"):
                        f.reason = (f"alltoallw takes one strategy; {pick} won by bytes "
                                    f"(face alone: {f.method}: {f.reason})")
                        f.method = pick
        return self._summarise()

    def _summarise(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for f in self.faces:
            counts[f.method] = counts.get(f.method, 0) + 1
        fallbacks = [f.reason for f in self.faces if f.reason.startswith("library fallback")]
        return {
            "method": self.method,
            "transport": self.transport,
            "packer": self.packer_name if self.method != "datatype" else None,
            "faces": counts,
            "fallback": fallbacks[0] if fallbacks else None,
            "model": getattr(self, "model_source", None),
            "choices": [{"direction": list(f.direction), "bytes": f.nbytes, "method": f.method,
                         "same_host": f.same_host, "reason": f.reason,
                         "canonical": str(f.send_block) if f.send_block else None}
                        for f in self.faces],
        }

    def _setup_alltoallw(self) -> None:
        """A dist-graph comm whose j-th out-edge is face j and j-th in-edge its mirror."""
        from mpi4py import MPI

        # Out-edge j: our face d_j to the rank at +d_j. In-edge j: the face d_j of the rank at
        # -d_j, landing in our ghost region -d_j. Both lists in face order (boundary entries
        # dropped) make the k-th message between two ranks match the k-th edge on both
        # sides, even when one rank is a neighbour several times over.
        mirror = {f.direction: f for f in self.faces}
        self._live = [f for f in self.faces if f.dest != MPI.PROC_NULL]
        self._live_recv = [mirror[tuple(-x for x in f.direction)] for f in self.faces
                           if f.source != MPI.PROC_NULL]
        self._graph = self.comm.Create_dist_graph_adjacent(
            [f.source for f in self.faces if f.source != MPI.PROC_NULL],
            [f.dest for f in self._live], reorder=False)
        if self._pk:  # all faces packed: one send and one receive buffer, faces at offsets
            self._a_send = packers.Plan(self.packer_name, [f.send_block for f in self._live],
                                        self.field_nbytes)
            self._a_recv = packers.Plan(self.packer_name, [f.recv_block for f in self._live_recv],
                                        self.field_nbytes)
            self._sbuf = np.empty(max(1, self._a_send.total), np.uint8)
            self._rbuf = np.empty(max(1, self._a_recv.total), np.uint8)

    # -- the public calls ----------------------------------------------------------------
    def allocate(self, fill: float = 0.0) -> np.ndarray:
        """A field of the right shape and dtype, every cell set to ``fill``."""
        return np.full(self.shape, fill, dtype=self.dtype)

    def interior(self, field: np.ndarray) -> np.ndarray:
        """The owned cells of a padded field (a view)."""
        r = self.radius
        return field[tuple(slice(r, r + n) for n in self.local_shape)]

    @property
    def send_bytes(self) -> int:
        """Bytes this rank sends per exchange (all live faces)."""
        from mpi4py import MPI

        return sum(f.nbytes for f in self.faces if f.dest != MPI.PROC_NULL)

    def _check_field(self, field: np.ndarray) -> None:
        if not isinstance(field, np.ndarray):
            raise TypeError("field must be a numpy array (GPU fields: hpc.halo.gpu)")
        if field.shape != self.shape or field.dtype != self.dtype or not field.flags.c_contiguous:
            raise ValueError(f"field must be C-contiguous {self.dtype} of shape {self.shape}, "
                             f"got {field.dtype} {field.shape}")

    def pack_all(self, field: np.ndarray, out: np.ndarray | None = None) -> int:
        """Pack every face the pack strategy sends into one buffer (faces in order); bytes."""
        if self._send_plan is None:
            return 0
        if out is None:
            out = getattr(self, "_scratch", None)
            if out is None:
                out = self._scratch = np.empty(max(1, self._send_plan.total), np.uint8)
        return self._send_plan.pack_all(field, out)

    def exchange(self, field: np.ndarray) -> None:
        """Fill every ghost cell of ``field`` in place (collective)."""
        self._check_field(field)
        if self.transport == "alltoallw":
            self._exchange_alltoallw(field)
        else:
            self._exchange_p2p(field)
        if self.fill is not None:
            from mpi4py import MPI

            for f in self.faces:
                if f.dest == MPI.PROC_NULL:  # the cells of ghost region d lie outside
                    field[f.recv_slices] = self.fill

    def _exchange_p2p(self, field: np.ndarray) -> None:
        from mpi4py import MPI

        comm, nf = self.comm, len(self.faces)
        recvs, sends = [], []
        # Ghost region of face f is filled by the rank at f.direction, which sent its face
        # -f.direction: that tag is the mirror face's index.
        mirror = {f.direction: f.index for f in self.faces}
        for f in self.faces:
            tag = mirror[tuple(-x for x in f.direction)]
            if f.method == "pack":
                recvs.append(comm.Irecv([f.recvbuf, MPI.BYTE], f.dest, tag))
            else:
                recvs.append(comm.Irecv([field, 1, f.recv_type], f.dest, tag))
        # (f.dest: the rank at +d, which owns the cells of our ghost region +d)
        if self._pk:
            self._send_plan.pack_all(field, self._p2p_sbuf)  # every packed face, one call
        for f in self.faces:
            if f.method == "pack":
                sends.append(comm.Isend([f.sendbuf, MPI.BYTE], f.dest, f.index))
            else:
                sends.append(comm.Isend([field, 1, f.send_type], f.dest, f.index))
        if self.wait == "any":  # unpack each face as it arrives (overlaps unpack and wire)
            for _ in range(nf):
                i = MPI.Request.Waitany(recvs)
                f = self.faces[i]
                if f.method == "pack" and f.dest != MPI.PROC_NULL:
                    self._recv_plan.unpack_one(self._slot[f.index], f.recvbuf, field)
        else:  # one wait, one unpack call (fewer trips into MPI progress and C++)
            MPI.Request.Waitall(recvs)
            if self._pk and self._all_live:
                self._recv_plan.unpack_all(self._p2p_rbuf, field)
            else:
                for f in self._pk:
                    if f.dest != MPI.PROC_NULL:
                        self._recv_plan.unpack_one(self._slot[f.index], f.recvbuf, field)
        MPI.Request.Waitall(sends)

    def _exchange_alltoallw(self, field: np.ndarray) -> None:
        from mpi4py import MPI

        live, back = self._live, self._live_recv
        if not live and not back:
            return
        if self.faces[0].method == "pack":
            self._a_send.pack_all(field, self._sbuf)
            cs = [f.nbytes for f in live]
            cr = [f.nbytes for f in back]
            self._graph.Neighbor_alltoallw(
                [self._sbuf, (cs, list(self._a_send.offsets)), [MPI.BYTE] * len(live)],
                [self._rbuf, (cr, list(self._a_recv.offsets)), [MPI.BYTE] * len(back)])
            self._a_recv.unpack_all(self._rbuf, field)
        else:
            ns, nr = len(live), len(back)
            self._graph.Neighbor_alltoallw(
                [field, ([1] * ns, [0] * ns), [f.send_type for f in live]],
                [field, ([1] * nr, [0] * nr), [f.recv_type for f in back]])

    def free(self) -> None:
        """Release the datatypes and communicators (collective)."""
        for f in getattr(self, "faces", []):
            for t in (f.send_type, f.recv_type):
                try:
                    t.Free()
                except Exception:  # noqa: BLE001
                    pass
        self.faces = []
        if self._graph is not None:
            self._graph.Free()
            self._graph = None
        if getattr(self, "comm", None) is not None:
            self.comm.Free()
            self.comm = None

    def __enter__(self) -> "HaloExchange":
        return self

    def __exit__(self, *exc) -> None:
        self.free()


def _host_ids(comm) -> list[int]:
    """Per rank of comm, an id shared by the ranks on the same host (shared-memory node)."""
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    leader = node.bcast(comm.Get_rank(), root=0)
    node.Free()
    return comm.allgather(leader)


def fill_global(field_interior: np.ndarray, offset: Sequence[int], global_shape: Sequence[int],
                quantities: int | None = None) -> None:
    """Set owned cells to a function of the global index (for validation): unique per cell.

    value = linear global cell index * Q + q + 1 (exact in float64 below 2^53).
    """
    nd = len(offset)
    grids = np.meshgrid(*[np.arange(o, o + n) for o, n in zip(offset, field_interior.shape[:nd])],
                        indexing="ij")
    lin = np.zeros(grids[0].shape, np.int64) if grids else np.zeros((), np.int64)
    for g, n in zip(grids, global_shape):
        lin = lin * n + g
    if quantities is None:
        field_interior[...] = lin + 1
    else:
        field_interior[...] = (lin[..., None] * quantities + np.arange(quantities) + 1)


def expected_ghosts(shape_local: Sequence[int], offset: Sequence[int], global_shape: Sequence[int],
                    radius: int, periodic: Sequence[bool], quantities: int | None,
                    fill: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The whole padded field as it must look after an exchange, and a mask of cells to check.

    Cells outside a non-periodic boundary are checked against ``fill`` when it is given, and
    not checked at all when it is None.
    """
    nd = len(offset)
    r = radius
    idx, ok = [], np.ones([n + 2 * r for n in shape_local], bool)
    for k in range(nd):
        g = np.arange(offset[k] - r, offset[k] + shape_local[k] + r)
        inside = (g >= 0) & (g < global_shape[k])
        if periodic[k]:
            g = g % global_shape[k]
            inside[:] = True
        idx.append(np.where(inside, g, 0))
        sh = [1] * nd
        sh[k] = -1
        ok = ok & inside.reshape(sh)
    grids = np.meshgrid(*idx, indexing="ij")
    lin = np.zeros(grids[0].shape, np.int64)
    for gk, n in zip(grids, global_shape):
        lin = lin * n + gk
    if quantities is None:
        val = (lin + 1).astype(np.float64)
    else:
        val = (lin[..., None] * quantities + np.arange(quantities) + 1).astype(np.float64)
        ok = np.broadcast_to(ok[..., None], val.shape)
    mask = np.ones(val.shape, bool)
    if fill is None:
        mask = ok.copy()
    else:
        val = np.where(ok, val, fill)
    return val, mask
