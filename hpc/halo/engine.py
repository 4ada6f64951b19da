"""The suite's one halo-exchange engine: ghost layers of a block-decomposed grid, all neighbours.

Used by ``hpc.halo`` and by the stencil solvers (CG's matrix-free Poisson operator, DCDM's
distributed convolutions). Typical use::

    from hpc.core.decomp import decompose
    from hpc.halo import HaloExchange

    dec = decompose(comm, (NZ, NY, NX), periodic=False)        # Dims_create + Cartesian comm
    halo = HaloExchange(dec.cart, dec.local_shape, radius=1, quantities=None,
                        method="pack", fill=0.0)               # collective
    u = halo.allocate()                                        # zeros, shape local + 2R
    halo.interior(u)[...] = my_block                           # global cells dec.offset + ...
    halo.exchange(u)                                           # ghosts filled in place
    halo.start(u); ...; halo.wait()                            # the same, split (overlap)
    ...
    halo.free()                                                # collective

Contract
--------
- Grid and field: the Cartesian communicator's dimensions are the array's leading axes, in
  order (axis 0 = cart dimension 0, usually z, slowest). A rank's field has shape
  ``local_shape[k] + 2R_k`` on each of those axes (``radius`` is one width R for every axis
  or one per axis), then ``(Q,)`` if ``quantities`` is given
  (quantities innermost, as in TEMPI's halo benchmark); C-contiguous, of ``dtype``. Interior
  is ``[R:R+n]`` on each axis. Any number of grid dimensions works (1, 2, 3, ...); the halo app
  uses 3.
- ``exchange(field)`` fills, in place, every ghost cell of every neighbour direction
  (``neighbors="all"``: 3^d - 1 of them, 26 in 3-D, so edges and corners too;
  ``neighbors="faces"``: only the 2d face neighbours, enough for a 7-point stencil) with the
  owner's interior values. It is collective over the communicator (every rank calls it).
  Interior cells are never written. Ghost cells are the cells of the neighbour's block, so
  the radius may not exceed any rank's local extent (checked, UsageError on every rank).
  ``start(field)`` / ``wait()`` split it: between them the field's interior may be read but
  nothing of the field may be written (``progress()`` now and then lets the library move the
  messages meanwhile). ``phase_times()`` breaks the time in ``start`` and ``wait`` into
  Comb's phases (post receives, pack, post sends, wait receives, unpack, wait sends).
- Boundaries: along a periodic dimension the neighbour wraps around (a rank can be its own
  neighbour). Along a non-periodic one, ghost cells beyond the physical boundary get
  ``fill`` when it is not None (e.g. 0.0 for a homogeneous Dirichlet problem) and are left
  untouched when it is None. ``periodic`` defaults to the communicator's own periods.
- Non-divisible grids: local shapes may differ between ranks; each rank passes its own
  (:func:`hpc.core.decomp.decompose` gives it); faces still match because a block's extent
  along a dimension depends only on its coordinate along that dimension.
- Methods: ``datatype`` sends each face with an MPI subarray datatype (the library packs);
  ``pack`` packs each face with a fast packer (``packer="native"|"numba"|"numpy"``) and sends
  contiguous bytes; ``auto`` chooses one of the two per face from the measured model
  (``python -m hpc.halo measure``; see :mod:`hpc.halo.model`), per (canonical type, bytes,
  same host or not). ``strategy`` (a dict) records what was chosen and why.
- Transports: when every face of every rank is packed (``method="pack"``, the default), the
  faces to one neighbour rank travel as one message through the suite's exchange transport,
  :class:`hpc.core.exchange.Transfer`: persistent point-to-point requests
  (``transport="p2p"``) or a persistent neighbourhood all-to-all on a distributed-graph
  communicator of the neighbour ranks (``"alltoallw"``); one pack call fills the send buffer
  and one unpack call empties the receive buffer. Otherwise (library-packed faces, or
  ``wait="any"``: unpack each face as it arrives) every face is its own persistent request,
  or, for ``"alltoallw"``, one ``Neighbor_alltoallw`` of the face datatypes (one strategy for
  every face and rank there, since the call takes one buffer). ``"auto"`` takes the suite's
  one choice (:func:`hpc.core.exchange.resolve_method`). Requests that carry the field itself
  (library-packed faces) are made for the field passed and kept for the last few fields seen.
- Faces whose datatypes cannot be canonicalised fall back to the library's datatype send
  (never happens for the subarrays built here; see :mod:`hpc.halo.canonical`).
- ``HaloExchange`` duplicates the communicator (its messages never meet the caller's); call
  ``free()`` (collective) when done, or use it as a context manager.
"""
from __future__ import annotations

import itertools
from time import perf_counter
from dataclasses import dataclass, field as dfield
from typing import Any, Sequence

import numpy as np
from mpi4py import MPI
from mpi4py.util import dtlib

from hpc.core.envinfo import default_threads
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import Transfer, host_ids, resolve_method

from . import model as halo_model
from . import packers
from .canonical import StridedBlock, try_canonicalize

METHODS = ("datatype", "pack", "auto")
TRANSPORTS = ("p2p", "alltoallw")
#: fields whose library-packed requests are kept (a solver alternates a few fields)
_BOUND_FIELDS = 4
#: the phases of one exchange, as LLNL's Comb reports them; their sum is the exchange's time
PHASES = ("post_recv", "pack", "post_send", "wait_recv", "unpack", "wait_send")


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


def _positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if int(value) < 1:
        raise UsageError(f"{name} must be at least 1, got {int(value)}")
    return int(value)


class HaloExchange:
    """Ghost-layer exchange for one field layout on one Cartesian communicator.

    Parameters
    ----------
    cart : mpi4py.MPI.Cartcomm
        The Cartesian communicator the blocks are laid on (e.g. ``decompose(...).cart`` or
        ``comm.Create_cart(dims, periods)``); its dimensions are the field's leading axes.
        It is duplicated: the exchange's messages never meet the caller's.
    local_shape : sequence of int
        Cells this rank owns along each grid axis (without ghosts); may differ between ranks
        as long as ranks with the same coordinate along an axis agree on its extent.
    radius : int or sequence of int
        Ghost-layer width R in cells, one for every axis or one per axis (``(RZ, RY, RX)``
        in 3-D); along each axis at most every rank's smallest local extent.
    quantities : int, optional
        Values per cell Q (a trailing, innermost axis of the field); None: no such axis.
    periodic : bool or sequence of bool, optional
        Whether each axis wraps around; default: the communicator's own periods.
    dtype : numpy dtype, default float64
        The field's element type.
    method : {'pack', 'datatype', 'auto'}, default 'pack'
        How faces are sent: packed by ``packer`` into contiguous bytes, described by MPI
        subarray datatypes (the library packs), or chosen per face from the measured model
        (:mod:`hpc.halo.model`; ``model`` or the cached one, measured on the spot if absent).
    packer : {'native', 'numba', 'numpy'}, default 'native'
        The CPU packer of the ``pack`` faces.
    transport : {'p2p', 'alltoallw', 'auto'}, default 'p2p'
        Persistent point-to-point requests per neighbour, or one neighbourhood all-to-all;
        'auto' asks :func:`hpc.core.exchange.resolve_method` (p2p up to 4 ranks).
    neighbors : {'all', 'faces'}, default 'all'
        Every one of the 3^d - 1 neighbours (edges and corners too), or the 2d face ones.
    fill : float, optional
        Value of ghost cells beyond a non-periodic boundary; None leaves them untouched.
    model : hpc.halo.model.Model, optional
        The send model ``method='auto'`` asks (default: the cached one).
    typebuild : {'subarray', 'hvector', 'struct'}, default 'subarray'
        How face datatypes are built (the same bytes; 'struct' is not canonicalisable and falls
        back to the library, a test of that path).
    wait : {'all', 'any'}, default 'all'
        p2p: wait for every face then unpack in one call, or unpack each face as it arrives.
    autotune : bool, default True
        ``method='auto'``: after the model's per-face choice, time a few exchanges of the
        candidates (every face packed, every face the library's, and the model's mix when it
        mixes) on a scratch field and keep the fastest, judged by the slowest rank. The model
        compares one face at a time; the exchange sends all faces to one rank as one
        message, which the model cannot see (at one rank it picked the packer, 579 us,
        where the library's datatypes took 404 us). False: the model's choice alone.
    threads : int, optional
        OpenMP threads of the native packer per call; default ``OMP_NUM_THREADS``, else this
        host's cores shared evenly by the ranks on it.
    reorder : bool, default False
        ``transport='alltoallw'``: let the MPI library renumber the ranks of the distributed-
        graph communicator (``reorder`` of ``MPI_Dist_graph_create_adjacent``) to place
        neighbours close; the exchange stays correct either way (a neighbourhood collective
        addresses processes, not rank numbers). :attr:`reordered` says whether the library
        renumbered any rank.

    Raises
    ------
    InputTypeError (a TypeError)
        ``cart`` is not a Cartesian communicator; a non-integer size.
    UsageError (a ValueError), on every rank
        A shape of the wrong length or with non-positive entries, a radius below 1 or above
        the smallest block of any rank, an unknown method, transport, packer or option, an
        unavailable packer.

    Notes
    -----
    Construction is collective (a communicator duplicate, one allreduce, one host-id
    allgather; ``method='auto'`` may measure the model, seconds). Per exchange a rank sends
    and receives sum over live faces of (face cells x Q x itemsize) bytes in 3^d - 1 messages
    (or one neighbourhood call) and packs/unpacks the same bytes once each. The TEMPI paper
    (Pearson et al., "TEMPI: An Interposed MPI Library with a Canonical Representation of CUDA-
    aware Datatypes", HPDC 2021) is the design of the canonical form and of the model.
    """

    def __init__(self, cart: MPI.Cartcomm, local_shape: Sequence[int],
                 radius: int | Sequence[int], quantities: int | None = None,
                 periodic: bool | Sequence[bool] | None = None,
                 dtype: Any = np.float64, method: str = "pack", packer: str = "native",
                 transport: str = "p2p", neighbors: str = "all", fill: float | None = None,
                 model: Any = None, typebuild: str = "subarray", wait: str = "all",
                 reorder: bool = False, autotune: bool = True, threads: int | None = None):
        # the arguments again, for the trial engines of method="auto" (see _autotune)
        self._args = dict(cart=cart, local_shape=local_shape, radius=radius,
                          quantities=quantities, periodic=periodic, dtype=dtype, packer=packer,
                          transport=transport, neighbors=neighbors, fill=fill,
                          typebuild=typebuild, wait=wait, reorder=reorder, threads=threads)
        self.autotune = bool(autotune)
        self.comm = None
        self._graph = None
        self._own_graph = None  # a graph communicator made here for Transfer (freed here)
        self.reorder = bool(reorder)
        self.reordered = False
        self._ph = [0.0] * len(PHASES)
        self._nex = 0
        self._transfer: Transfer | None = None
        self.faces: list[Face] = []
        self._bound: dict[Any, tuple[Any, list, list]] = {}
        self._pending: tuple[np.ndarray, list, list] | None = None
        if not isinstance(cart, MPI.Cartcomm):
            raise InputTypeError("cart must be a Cartesian communicator (mpi4py.MPI.Cartcomm, "
                                 "e.g. comm.Create_cart(dims) or hpc.core.decomp.decompose(...)"
                                 f".cart), got {type(cart).__name__}")
        if method not in METHODS:
            raise UsageError(f"halo method {method!r}: choose from {', '.join(METHODS)}")
        if transport == "auto":  # the suite's one p2p/neighbourhood choice (hpc.core.exchange)
            transport = {"neighbor": "alltoallw"}.get(resolve_method("auto", cart.Get_size()),
                                                      "p2p")
        if transport not in TRANSPORTS:
            raise UsageError(f"halo transport {transport!r}: choose from "
                             f"{', '.join(TRANSPORTS)} or auto")
        if wait not in ("all", "any"):
            raise UsageError(f"wait {wait!r}: choose all or any")
        if neighbors not in ("all", "faces"):
            raise UsageError(f"neighbors {neighbors!r}: choose all or faces")
        if typebuild not in ("subarray", "hvector", "struct"):
            raise UsageError(f"typebuild {typebuild!r}: choose subarray, hvector or struct")
        self.wait_mode = wait
        topo_dims, topo_periods, coords = cart.Get_topo()
        self.ndim = nd = len(topo_dims)
        if isinstance(local_shape, (str, bytes)) or not hasattr(local_shape, "__iter__"):
            raise InputTypeError(f"local_shape must be a sequence of integers, got "
                                 f"{local_shape!r}")
        self.local_shape = tuple(_positive_int("local_shape entry", n) for n in local_shape)
        if len(self.local_shape) != nd:
            raise UsageError(f"local_shape {list(self.local_shape)} has {len(self.local_shape)} "
                             f"dimensions, the communicator {nd}")
        if isinstance(radius, (str, bytes)) or (hasattr(radius, "__iter__")
                                                and len(list(radius)) != nd):
            raise UsageError(f"radius {radius!r}: one width, or one per dimension ({nd})")
        radii = (tuple(_positive_int("radius", x) for x in radius)
                 if hasattr(radius, "__iter__") else (_positive_int("radius", radius),) * nd)
        #: ghost width per axis; ``radius`` is the one width when they agree, else the tuple
        self.radii = radii
        self.radius = radii[0] if len(set(radii)) == 1 else radii
        self.quantities = _positive_int("quantities", quantities, allow_none=True)
        smallest = np.array(self.local_shape, np.int64)
        cart.Allreduce(MPI.IN_PLACE, smallest, op=MPI.MIN)
        for k, (rk, nk) in enumerate(zip(radii, smallest)):
            if rk > nk:
                raise UsageError(f"radius {rk} is larger than the smallest local block "
                                 f"({nk} cells along dimension {k}): ghosts would need "
                                 "cells beyond the nearest neighbour")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise InputTypeError(f"dtype {dtype!r} is not a numpy dtype") from None
        if periodic is None:
            self.periodic = tuple(bool(p) for p in topo_periods)
        elif isinstance(periodic, (bool, np.bool_)):
            self.periodic = (bool(periodic),) * nd
        else:
            self.periodic = tuple(bool(p) for p in periodic)
            if len(self.periodic) != nd:
                raise UsageError(f"periodic has {len(self.periodic)} entries for a {nd}-D grid")
        self.dims, self.coords = tuple(topo_dims), tuple(coords)
        self.method, self.packer_name, self.transport = method, packer, transport
        self.fill = fill
        self._base = dtlib.from_numpy_dtype(self.dtype)
        if method != "datatype":
            packers.get(packer)  # an unavailable packer is a UsageError now, not mid-exchange
        self.comm = cart.Dup()
        # the native packer's threads: OMP_NUM_THREADS, else this host's cores shared by its
        # ranks (OpenMP's default, every core per rank, oversubscribes a shared host badly)
        self.threads = (int(threads) if threads is not None and int(threads) > 0
                        else default_threads(self.comm))
        self.shape = tuple(n + 2 * r for n, r in zip(self.local_shape, radii)) + (
            (self.quantities,) if self.quantities is not None else ())

        dirs = [d for d in itertools.product((-1, 0, 1), repeat=nd) if any(d)]
        if neighbors == "faces":
            dirs = [d for d in dirs if sum(map(abs, d)) == 1]
        self.directions = dirs
        hosts = host_ids(self.comm)
        me = self.comm.Get_rank()
        for i, d in enumerate(dirs):
            dest = self._neighbor(d)
            src = self._neighbor(tuple(-x for x in d))
            s_reg = [_region(c, n, r, True) for c, n, r in zip(d, self.local_shape, radii)]
            r_reg = [_region(c, n, r, False) for c, n, r in zip(d, self.local_shape, radii)]
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
        # Ghost region f is filled by the rank at f.direction, which sent its face
        # -f.direction: that tag is the mirror face's index.
        mirror = {f.direction: f.index for f in self.faces}
        self._recv_tags = [mirror[tuple(-x for x in f.direction)] for f in self.faces]
        self.strategy = self._choose(model)
        if method == "auto" and self.autotune:
            self._autotune()
        if transport == "alltoallw" and len({f.method for f in self.faces}) > 1:
            for f in self.faces:  # one call takes one buffer: the library handles every face
                if f.method == "pack":
                    f.method = "datatype"
                    f.reason = "alltoallw takes one strategy and another face needs the library"
            self.strategy = self._summarise()
        self.field_nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        # Every face of every rank packed: one message per neighbour rank through the suite's
        # exchange transport. Decided together (the ranks' messages must match).
        all_packed = self.comm.allreduce(all(f.method == "pack" for f in self.faces),
                                         op=MPI.LAND)
        if transport == "alltoallw" and not all_packed:  # one strategy for every rank too
            for f in self.faces:
                if f.method == "pack":
                    f.method = "datatype"
                    f.reason = "alltoallw takes one strategy and another rank needs the library"
            self.strategy = self._summarise()
        self._boundary = [f for f in self.faces if f.dest == MPI.PROC_NULL]
        self._live_idx = [i for i, f in enumerate(self.faces) if f.dest != MPI.PROC_NULL]
        self._pk = [f for f in self.faces if f.method == "pack"]
        self._by_library = len(self._pk) < len(self.faces)
        self._send_plan = self._recv_plan = None
        if all_packed and (transport == "alltoallw" or wait == "all"):
            self._setup_transfer()
        else:
            self._setup_faces()

    def _setup_transfer(self) -> None:
        """All faces packed: one message per neighbour rank (:class:`hpc.core.exchange.
        Transfer`: persistent p2p, or a persistent neighbourhood collective for alltoallw).

        The faces to one rank go in face order; a rank receives the faces from one rank in
        the order of their index there, the index of the mirror direction here (the ghost
        region of face f is filled by the rank at +f's face -f). One pack_all fills the send
        buffer, one unpack_all empties the receive buffer."""
        live = [f for f in self.faces if f.dest != MPI.PROC_NULL]
        out = sorted(live, key=lambda f: (f.dest, f.index))
        inc = sorted(live, key=lambda f: (f.dest, self._recv_tags[f.index]))
        if live:
            self._send_plan = packers.Plan(self.packer_name, [f.send_block for f in out],
                                           self.field_nbytes, threads=self.threads)
            self._recv_plan = packers.Plan(self.packer_name, [f.recv_block for f in inc],
                                           self.field_nbytes, threads=self.threads)
        self._sbuf = np.empty(max(1, sum(f.nbytes for f in out)), np.uint8)
        self._rbuf = np.empty(max(1, sum(f.nbytes for f in inc)), np.uint8)

        def by_rank(faces: list[Face]) -> tuple[list[int], list[int]]:
            ranks: list[int] = []
            counts: list[int] = []
            for f in faces:
                if not ranks or ranks[-1] != f.dest:
                    ranks.append(f.dest)
                    counts.append(0)
                counts[-1] += f.nbytes
            return ranks, counts

        dests, scounts = by_rank(out)
        sources, rcounts = by_rank(inc)
        graph = None
        if self.transport == "alltoallw":
            graph = self._own_graph = self._make_graph(sources, dests)
        self._transfer = Transfer(self.comm, sources, rcounts, dests, scounts, self._rbuf,
                                  self._sbuf, graph=graph,
                                  method="neighbor" if self.transport == "alltoallw" else "p2p")
        # p2p: receives first in the request list; posted and completed apart (phases)
        n_r = len(sources) if self.transport == "p2p" else 0
        self._t_recvs = self._transfer.requests[:n_r]
        self._t_sends = self._transfer.requests[n_r:]

    def _make_graph(self, sources: list[int], dests: list[int]) -> MPI.Distgraphcomm:
        """The distributed-graph communicator of the neighbourhood calls (collective)."""
        g = self.comm.Create_dist_graph_adjacent(sources, dests, reorder=self.reorder)
        self.reordered = bool(self.comm.allreduce(g.Get_rank() != self.comm.Get_rank(),
                                                  op=MPI.LOR))
        return g

    def _setup_faces(self) -> None:
        """One persistent request per face and direction (p2p), or one neighbourhood
        all-to-all of the face datatypes (alltoallw); packed faces share one buffer."""
        self._slot = {f.index: k for k, f in enumerate(self._pk)}
        if self._pk:  # validated once against the field's size
            self._send_plan = packers.Plan(self.packer_name, [f.send_block for f in self._pk],
                                           self.field_nbytes, threads=self.threads)
            self._recv_plan = packers.Plan(self.packer_name, [f.recv_block for f in self._pk],
                                           self.field_nbytes, threads=self.threads)
            # one send and one receive buffer; each face's slice sits at its plan offset, so
            # a single pack_all / unpack_all call serves every face
            self._p2p_sbuf = np.empty(max(1, self._send_plan.total), np.uint8)
            self._p2p_rbuf = np.empty(max(1, self._recv_plan.total), np.uint8)
            for f, so, ro in zip(self._pk, self._send_plan.offsets, self._recv_plan.offsets):
                f.sendbuf = self._p2p_sbuf[so:so + f.nbytes]
                f.recvbuf = self._p2p_rbuf[ro:ro + f.nbytes]
        self._all_live = all(f.dest != MPI.PROC_NULL for f in self._pk)
        if self.transport == "alltoallw":
            self._setup_alltoallw()

    # -- construction helpers ------------------------------------------------------------
    def _neighbor(self, d: tuple[int, ...]) -> int:
        c = []
        for k, (x, dk) in enumerate(zip(self.coords, d)):
            y = x + dk
            if not 0 <= y < self.dims[k]:
                if not self.periodic[k]:
                    return MPI.PROC_NULL
                y %= self.dims[k]
            c.append(y)
        return self.comm.Get_cart_rank(c)

    def _subarray(self, reg: list[tuple[int, int]], typebuild: str) -> MPI.Datatype:
        """The datatype of one region: a subarray, or the same bytes built other ways."""
        sizes = list(self.shape)
        sub = [s for _, s in reg] + ([self.quantities] if self.quantities else [])
        starts = [a for a, _ in reg] + ([0] if self.quantities else [])
        if typebuild == "subarray":
            return self._base.Create_subarray(sizes, sub, starts, order=MPI.ORDER_C).Commit()
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

    def _choose(self, model: Any) -> dict[str, Any]:
        """Per face: datatype or pack (auto asks the model); returns the record's summary."""
        if self.method in ("datatype", "pack"):
            for f in self.faces:
                if f.reason.startswith("library fallback"):
                    continue
                f.method, f.reason = self.method, f"--method {self.method}"
        else:
            m = model if model is not None else halo_model.load_or_measure(self.comm)
            self._model = m
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

    def _autotune(self, min_rounds: int = 5, max_rounds: int = 15) -> None:
        """method='auto': keep the fastest of the candidates, measured here (collective).

        Candidates are built as engines of their own on the same communicator and timed in
        alternating rounds (two exchanges each) on one scratch field. Each round's time is
        the slowest rank's (so every rank sees the same samples and makes the same choice).
        Candidates are ranked by their fastest round: the noise of a shared host (a round
        preempted, another job's cache traffic) only ever adds time, so the fastest round is
        the nearest to a method's own cost, while a median of a few rounds is moved by two
        unlucky ones (at load 12 on 2 cores the median chose the library's datatypes at
        1.76x the packer's time in one of 12 one-rank cells). Rounds go on, from
        ``min_rounds`` up to ``max_rounds``, until the fastest candidate is clear of the
        runner-up: its lower quartile below the runner-up's fastest round."""
        fixed = [f for f in self.faces if not f.reason.startswith("library fallback")]
        model_pick = {f.index: (f.method, f.reason) for f in fixed}
        cands: dict[str, dict[str, Any]] = {"pack": {"method": "pack"},
                                            "datatype": {"method": "datatype"}}
        if len({f.method for f in fixed}) > 1 and self.transport == "p2p":
            cands["model"] = {"method": "auto", "autotune": False, "model": self._model}
        engines = {k: HaloExchange(**{**self._args, **kw}) for k, kw in cands.items()}
        names = list(engines)
        rows: list[np.ndarray] = []
        try:
            u = engines["pack"].allocate(0.0)
            for e in engines.values():
                e.exchange(u)  # warm: requests made, pages touched
            while len(rows) < max_rounds:
                row = np.empty(len(names))
                for i, e in enumerate(engines.values()):
                    self.comm.Barrier()
                    t0 = perf_counter()
                    e.exchange(u)
                    e.exchange(u)
                    row[i] = (perf_counter() - t0) / 2
                self.comm.Allreduce(MPI.IN_PLACE, row, op=MPI.MAX)  # the slowest rank's
                rows.append(row)
                if len(rows) >= min_rounds:
                    low = np.min(np.array(rows), axis=0)
                    q1 = np.percentile(np.array(rows), 25, axis=0)
                    order = np.argsort(low)
                    if q1[order[0]] < low[order[1]]:  # the fastest is clear of the runner-up
                        break
        finally:
            for e in engines.values():
                e.free()
        med = np.min(np.array(rows), axis=0)
        best = names[int(np.argmin(med))]
        figures = ", ".join(f"{k} {t * 1e6:.1f} us" for k, t in zip(names, med))
        self.autotuned = {k: float(t * 1e6) for k, t in zip(names, med)}
        self.autotune_rounds = len(rows)
        for f in fixed:
            pick, why = model_pick[f.index]
            f.method = pick if best == "model" else best
            f.reason = (f"auto, measured per exchange ({len(rows)} rounds, fastest): "
                        f"{figures} -> {best} (the model alone: {pick}: {why})")
        self.strategy = self._summarise()

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
            "autotune_us": getattr(self, "autotuned", None),
            "choices": [{"direction": list(f.direction), "bytes": f.nbytes, "method": f.method,
                         "same_host": f.same_host, "reason": f.reason,
                         "canonical": str(f.send_block) if f.send_block else None}
                        for f in self.faces],
        }

    def _setup_alltoallw(self) -> None:
        """A dist-graph comm whose j-th out-edge is face j and j-th in-edge its mirror."""
        # Out-edge j: our face d_j to the rank at +d_j. In-edge j: the face d_j of the rank at
        # -d_j, landing in our ghost region -d_j. Both lists in face order (boundary entries
        # dropped) make the k-th message between two ranks match the k-th edge on both
        # sides, even when one rank is a neighbour several times over.
        mirror = {f.direction: f for f in self.faces}
        self._live = [f for f in self.faces if f.dest != MPI.PROC_NULL]
        self._live_recv = [mirror[tuple(-x for x in f.direction)] for f in self.faces
                           if f.source != MPI.PROC_NULL]
        self._graph = self._make_graph(
            [f.source for f in self.faces if f.source != MPI.PROC_NULL],
            [f.dest for f in self._live])
        self._persistent_coll = hasattr(self._graph, "Neighbor_alltoallw_init")

    # -- requests ------------------------------------------------------------------------
    def _requests(self, field: np.ndarray) -> tuple[list, list]:
        """The persistent (receives, sends) of an exchange of ``field``, made on first use.

        Packed faces' requests carry the engine's own buffers, so one set serves every field;
        library-packed faces carry the field itself, so they are made per field (the last
        few fields' sets are kept, the oldest freed)."""
        if not self._by_library:  # one set for every field
            got = self._bound.get(None)
            if got is not None:
                return got[1], got[2]
            key = None
        else:
            key = field.__array_interface__["data"][0]
            got = self._bound.get(key)
            if got is not None and got[0] is field:
                return got[1], got[2]
        if got is not None:  # another array at the same address: rebuild for it
            self._free_requests(self._bound.pop(key))
        if len(self._bound) >= _BOUND_FIELDS:
            self._free_requests(self._bound.pop(next(iter(self._bound))))
        recvs, sends = (self._make_alltoallw(field) if self.transport == "alltoallw"
                        else self._make_p2p(field))
        self._bound[key] = (field if self._by_library else None, recvs, sends)
        return recvs, sends

    def _make_p2p(self, field: np.ndarray) -> tuple[list, list]:
        comm = self.comm
        recvs, sends = [], []
        # (f.dest: the rank at +d, which owns the cells of our ghost region +d)
        for f, tag in zip(self.faces, self._recv_tags):
            spec = [f.recvbuf, MPI.BYTE] if f.method == "pack" else [field, 1, f.recv_type]
            recvs.append(comm.Recv_init(spec, f.dest, tag))
        for f in self.faces:
            spec = [f.sendbuf, MPI.BYTE] if f.method == "pack" else [field, 1, f.send_type]
            sends.append(comm.Send_init(spec, f.dest, f.index))
        return recvs, sends

    def _make_alltoallw(self, field: np.ndarray) -> tuple[list, list]:
        """One request (persistent where the library has neighbourhood init calls)."""
        live, back = self._live, self._live_recv
        if not live and not back:
            return [], []
        ns, nr = len(live), len(back)  # (every face is the library's here)
        args = ([field, ([1] * ns, [0] * ns), [f.send_type for f in live]],
                [field, ([1] * nr, [0] * nr), [f.recv_type for f in back]])
        if self._persistent_coll:
            return [self._graph.Neighbor_alltoallw_init(*args)], []
        return [args], []  # started as Ineighbor_alltoallw each time

    @staticmethod
    def _free_requests(entry: tuple[Any, list, list]) -> None:
        for req in entry[1] + entry[2]:
            if isinstance(req, MPI.Request):
                req.Free()

    # -- the public calls ----------------------------------------------------------------
    def allocate(self, fill: float = 0.0) -> np.ndarray:
        """A field of the right shape and dtype, every cell set to ``fill``."""
        return np.full(self.shape, fill, dtype=self.dtype)

    def interior(self, field: np.ndarray) -> np.ndarray:
        """The owned cells of a padded field (a view)."""
        return field[tuple(slice(r, r + n) for n, r in zip(self.local_shape, self.radii))]

    def _check_field(self, field: np.ndarray) -> None:
        if not isinstance(field, np.ndarray):
            raise InputTypeError(f"field must be a numpy array (GPU fields: hpc.halo.gpu), got "
                                 f"{type(field).__name__}")
        if field.dtype != self.dtype:
            raise InputTypeError(f"field must be of dtype {self.dtype} (the exchange's), got "
                                 f"{field.dtype}")
        flags = field.flags
        if field.shape != self.shape or not flags.c_contiguous:
            raise UsageError(f"field must be C-contiguous {self.dtype} of shape {self.shape} "
                             f"(local_shape + 2*radius{', quantities' if self.quantities else ''}"
                             f"), got {'non-contiguous ' if not field.flags.c_contiguous else ''}"
                             f"{field.dtype} {field.shape}")
        if not flags.writeable:
            raise UsageError("field must be writeable: its ghost cells are filled in place")

    def exchange(self, field: np.ndarray) -> None:
        """Fill every ghost cell of ``field`` in place (collective): ``start`` then ``wait``.

        Parameters
        ----------
        field : numpy.ndarray
            C-contiguous, of shape :attr:`shape` and dtype :attr:`dtype` (see
            :meth:`allocate`); its interior holds this rank's cells.

        Raises
        ------
        InputTypeError (a TypeError)
            ``field`` is not a NumPy array or has another dtype.
        UsageError (a ValueError)
            Wrong shape, not C-contiguous, read-only, or an exchange already started.
        """
        self.start(field)
        self.wait()

    def start(self, field: np.ndarray) -> None:
        """Begin filling the ghost cells of ``field`` (collective, non-blocking).

        Posts every receive, packs the outgoing faces and starts the sends; the exchange
        completes in :meth:`wait`. Until then the field's interior may be read (a stencil on
        interior cells overlaps the messages) but nothing of the field may be written.
        Persistent requests are reused across calls. Raises as :meth:`exchange`.
        """
        t0 = perf_counter()
        if self.comm is None:
            raise UsageError("this HaloExchange was freed")
        if self._pending is not None:
            raise UsageError("start() called again before wait(): one exchange at a time")
        self._check_field(field)
        if self._transfer is not None:
            # Comb's order: receives posted before packing, so a neighbour's early message
            # lands without an unexpected-message copy (p2p; the collective posts both at once)
            if self._t_recvs:
                MPI.Prequest.Startall(self._t_recvs)
            t1 = perf_counter()
            if self._send_plan is not None:
                self._send_plan.pack_all(field, self._sbuf)  # every face, one call
            t2 = perf_counter()
            if self._t_sends:
                MPI.Prequest.Startall(self._t_sends)
            self._pending = (field, [], [])
        else:
            recvs, sends = self._requests(field)
            if self.transport == "alltoallw":
                t1 = t2 = perf_counter()
                if recvs and not isinstance(recvs[0], MPI.Request):
                    recvs = [self._graph.Ineighbor_alltoallw(*recvs[0])]
                elif recvs:
                    MPI.Prequest.Startall(recvs)
            else:
                MPI.Prequest.Startall(recvs)
                t1 = perf_counter()
                if self._pk:
                    self._send_plan.pack_all(field, self._p2p_sbuf)  # every packed face
                t2 = perf_counter()
                MPI.Prequest.Startall(sends)
            self._pending = (field, recvs, sends)
        t3 = perf_counter()
        ph = self._ph
        ph[0] += t1 - t0
        ph[1] += t2 - t1
        ph[2] += t3 - t2

    def wait(self) -> None:
        """Complete the exchange begun by :meth:`start`: every ghost cell is filled (collective).

        Raises
        ------
        UsageError (a ValueError)
            No exchange was started.
        """
        t0 = perf_counter()
        if self._pending is None:
            raise UsageError("wait() without start(): no exchange in progress")
        field, recvs, sends = self._pending
        self._pending = None
        t_unpack = 0.0  # wait="any" interleaves waits and unpacks: the unpacks summed apart
        if self._transfer is not None:
            if self._t_recvs:
                MPI.Request.Waitall(self._t_recvs)
            else:  # the neighbourhood collective: one request, sends and receives
                self._transfer.wait()
            t1 = perf_counter()
            if self._recv_plan is not None:
                self._recv_plan.unpack_all(self._rbuf, field)  # every face, one call
            sends = self._t_sends if self._t_recvs else []  # the collective: done above
        elif self.transport == "alltoallw":
            MPI.Request.Waitall(recvs)
            t1 = perf_counter()
        elif self.wait_mode == "any":  # unpack each face as it arrives (overlaps unpack and wire)
            live = [recvs[i] for i in self._live_idx]
            while True:  # completed persistent requests turn inactive: UNDEFINED at the end
                j = MPI.Request.Waitany(live)
                if j == MPI.UNDEFINED:
                    break
                f = self.faces[self._live_idx[j]]
                if f.method == "pack":
                    u0 = perf_counter()
                    self._recv_plan.unpack_one(self._slot[f.index], f.recvbuf, field)
                    t_unpack += perf_counter() - u0
            MPI.Request.Waitall(recvs)  # the boundary faces' (PROC_NULL) requests
            t1 = perf_counter()
        else:  # one wait, one unpack call (fewer trips into MPI progress and C++)
            MPI.Request.Waitall(recvs)
            t1 = perf_counter()
            if self._pk and self._all_live:
                self._recv_plan.unpack_all(self._p2p_rbuf, field)
            else:
                for f in self._pk:
                    if f.dest != MPI.PROC_NULL:
                        self._recv_plan.unpack_one(self._slot[f.index], f.recvbuf, field)
        if self.fill is not None:
            for f in self._boundary:  # the cells of ghost region d lie outside the domain
                field[f.recv_slices] = self.fill
        t2 = perf_counter()
        if sends:
            MPI.Request.Waitall(sends)
        t3 = perf_counter()
        ph = self._ph
        ph[3] += t1 - t0 - t_unpack
        ph[4] += t2 - t1 + t_unpack
        ph[5] += t3 - t2
        self._nex += 1

    def progress(self) -> None:
        """Drive the MPI library's progress once (an ``Iprobe``; completes nothing).

        Between :meth:`start` and :meth:`wait`, call it now and then from the overlapped
        work: a library without a progress thread (MPICH's default) moves a message only
        inside MPI calls, so a long computation with none hides nothing of a rendezvous
        transfer."""
        if self.comm is not None:
            self.comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG)

    def phase_times(self, reset: bool = False) -> dict[str, float]:
        """Seconds spent in each phase of the exchanges since the last reset, and their count.

        Phases (LLNL Comb's breakdown): ``post_recv`` (start the receives; with a persistent
        neighbourhood collective the whole call is ``post_send``), ``pack``, ``post_send``,
        ``wait_recv`` (with ``wait='any'`` the waits between unpacks), ``unpack`` (with the
        boundary ``fill``), ``wait_send``. Every moment inside :meth:`start` and :meth:`wait`
        belongs to exactly one phase, so the phases add up to the exchange's time (what is
        done between ``start`` and ``wait`` is not counted). Local: this rank's times.
        """
        out = dict(zip(PHASES, self._ph))
        out["exchanges"] = self._nex
        if reset:
            self._ph = [0.0] * len(PHASES)
            self._nex = 0
        return out

    def free(self) -> None:
        """Release the requests, datatypes and communicators (collective)."""
        if self._pending is not None:
            self.wait()
        for entry in self._bound.values():
            self._free_requests(entry)
        self._bound = {}
        if self._transfer is not None:
            self._transfer.free()
            self._transfer = None
        if self._own_graph is not None:
            self._own_graph.Free()
            self._own_graph = None
        for f in self.faces:
            for t in (f.send_type, f.recv_type):
                try:
                    t.Free()
                except MPI.Exception:
                    pass
        self.faces = []
        if self._graph is not None:
            self._graph.Free()
            self._graph = None
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    def __enter__(self) -> "HaloExchange":
        return self

    def __exit__(self, *exc) -> None:
        self.free()


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
                    radius: int | Sequence[int], periodic: Sequence[bool],
                    quantities: int | None,
                    fill: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The whole padded field as it must look after an exchange, and a mask of cells to check.

    Cells outside a non-periodic boundary are checked against ``fill`` when it is given, and
    not checked at all when it is None.
    """
    nd = len(offset)
    radii = tuple(radius) if hasattr(radius, "__iter__") else (radius,) * nd
    idx, ok = [], np.ones([n + 2 * r for n, r in zip(shape_local, radii)], bool)
    for k in range(nd):
        r = radii[k]
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
