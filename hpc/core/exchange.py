"""Ghost exchanges, node communicators and prefix sums: one home for each.

The ghost-exchange plan
-----------------------
Items ``0 .. n-1`` (matrix columns, graph vertices, grid points) are owned by the ranks in
contiguous blocks: rank ``r`` owns ``[offsets[r], offsets[r+1])``. Every rank names the global
ids it needs from the others; :class:`GhostPlan` is built once from these (collective: one
``Alltoall`` of counts, one ``Alltoallv`` of ids) and then moves the values of those ids as
often as asked, as a split ``start(x)`` / ``wait()`` so that local work can overlap the
messages::

    plan = GhostPlan(comm, needs, offsets)        # collective, once
    plan.start(x_local)                           # x_local: this rank's block (any dtype,
    ...                                           #   optionally several values per id)
    ghosts = plan.wait()                          # ghosts[k] is the value of plan.ghost_ids[k]

Two transports move the values, chosen by ``method`` in one place (:func:`resolve_method`):

- ``"neighbor"``: a persistent neighbourhood collective (``MPI_Neighbor_alltoallv_init``,
  MPI-4) on a distributed-graph communicator whose edges are the ranks that exchange data;
- ``"p2p"``: persistent point-to-point requests (``MPI_Recv_init`` / ``MPI_Send_init``), one
  per neighbour, receives posted first; no new communicator.

``"auto"`` takes ``"p2p"`` up to 4 ranks and ``"neighbor"`` above (measured on PageRank's
1D solver: the persistent requests have the lowest latency when every rank talks to every
other, the graph collective scales better). :class:`Transfer` is the transport alone, for
callers that lay out their own buffers (PageRank's sweep packs its send buffer natively and
receives straight into its input vector; halo exchanges).

Elsewhere in this module: :func:`exscan` (sum over the lower ranks), :func:`node_comm` (the
ranks of this host, cached) and :func:`host_ids`.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import numpy as np
from mpi4py import MPI

from .errors import InputTypeError, UsageError
from .runtime import as_comm

__all__ = ["METHODS", "resolve_method", "Transfer", "GhostPlan", "exscan",
           "node_comm", "host_ids", "owners_of"]

#: The transports of a ghost exchange (see the module docstring).
METHODS = ("neighbor", "p2p")

#: Default message tag of the point-to-point transport.
TAG = 0x5B3

#: Up to this many ranks ``"auto"`` takes the point-to-point transport.
AUTO_P2P_MAX_RANKS = 4


def resolve_method(method: str, nranks: int) -> str:
    """The transport of an exchange among ``nranks`` ranks: the one place that decides.

    Parameters
    ----------
    method : {"auto", "neighbor", "p2p"}
        ``"auto"``: ``"p2p"`` up to :data:`AUTO_P2P_MAX_RANKS` ranks, ``"neighbor"`` above.
    nranks : int
        Size of the communicator.

    Returns
    -------
    str
        ``"neighbor"`` or ``"p2p"``; ``"none"`` on one rank (nothing to exchange).

    Raises
    ------
    UsageError
        (a ValueError) for an unknown method.
    """
    if method not in ("auto", *METHODS):
        raise UsageError(f"exchange method {method!r}: choose auto, neighbor or p2p")
    if nranks <= 1:
        return "none"
    if method == "auto":
        return "p2p" if nranks <= AUTO_P2P_MAX_RANKS else "neighbor"
    return method


def _mpi_type(dtype: np.dtype) -> MPI.Datatype:
    try:
        return MPI._typedict[np.dtype(dtype).char]
    except KeyError:
        raise InputTypeError(f"no MPI datatype for dtype {np.dtype(dtype)}") from None


def _displs(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    return (np.cumsum(counts) - counts).astype(np.int64)   # also right for no neighbours


class Transfer:
    """A persistent exchange of two fixed buffers with fixed neighbours.

    Rank ``sources[i]`` sends ``recv_counts[i]`` elements that land contiguously in ``recv``
    (neighbour after neighbour, in the order of ``sources``); ``send`` holds
    ``send_counts[i]`` elements for ``dests[i]`` the same way. Building it is collective over
    ``comm`` for ``method="neighbor"`` (the graph communicator and the persistent collective),
    local for ``"p2p"``. Every :meth:`start` sends the buffers' current contents.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        The communicator the ranks in ``sources`` and ``dests`` belong to.
    sources, recv_counts : sequence of int
        The ranks this rank receives from (ascending, each once) and how many elements each.
    dests, send_counts : sequence of int
        The ranks this rank sends to and how many elements each.
    recv, send : numpy.ndarray
        C-contiguous buffers of one dtype (any MPI-mappable dtype) holding at least
        ``sum(recv_counts)`` and ``sum(send_counts)`` elements; kept alive by this object.
    method : {"neighbor", "p2p", "none"}
        The transport (see :func:`resolve_method`). ``"none"`` (one rank) does nothing.
    tag : int
        Message tag of the point-to-point transport.
    graph : mpi4py.MPI.Topocomm, optional
        A distributed-graph communicator with exactly these sources and destinations (in
        this order) to reuse; default: one is created and owned (freed by :meth:`free`).

    Attributes
    ----------
    start : callable, no arguments
        Start the exchange of the buffers' current contents (non-blocking).
    wait : callable, no arguments
        Complete the exchange started last: ``recv`` then holds the neighbours' values.
    requests : list of mpi4py.MPI.Prequest
        The persistent requests (empty for ``"none"``).

    ``start`` and ``wait`` are bound once to the requests' own methods (no Python layer in
    between): a microsecond iteration calls them directly.

    Notes
    -----
    Cost: no messages to build with ``"p2p"``; with ``"neighbor"`` the graph creation and the
    persistent collective's set-up (collectives over ``comm``). Per exchange one message per
    neighbour and direction.
    """

    def __init__(self, comm, sources: Sequence[int], recv_counts, dests: Sequence[int],
                 send_counts, recv: np.ndarray, send: np.ndarray, *, method: str = "neighbor",
                 tag: int = TAG, graph=None):
        if method not in (*METHODS, "none"):
            raise UsageError(f"exchange method {method!r}: choose neighbor, p2p or none")
        self.comm = comm
        self.method = method
        self.sources = [int(q) for q in sources]
        self.dests = [int(q) for q in dests]
        self.recv_counts = np.asarray(recv_counts, dtype=np.int64).reshape(-1)
        self.send_counts = np.asarray(send_counts, dtype=np.int64).reshape(-1)
        if self.recv_counts.size != len(self.sources) or self.send_counts.size != len(self.dests):
            raise UsageError("Transfer: one count per source and per destination")
        self.recv_displs = _displs(self.recv_counts)
        self.send_displs = _displs(self.send_counts)
        for name, buf, need in (("recv", recv, self.recv_counts.sum()),
                                ("send", send, self.send_counts.sum())):
            if not isinstance(buf, np.ndarray) or not buf.flags.c_contiguous:
                raise InputTypeError(f"Transfer: {name} must be a C-contiguous numpy array")
            if buf.size < need:
                raise UsageError(f"Transfer: {name} holds {buf.size} elements, needs {need}")
        if recv.dtype != send.dtype:
            raise InputTypeError(f"Transfer: recv dtype {recv.dtype} != send dtype {send.dtype}")
        self.recv, self.send = recv, send
        t = _mpi_type(recv.dtype)
        self.graph = graph
        self._own_graph = False
        self.requests: list[MPI.Prequest] = []
        if method == "p2p":
            rflat, sflat = recv.reshape(-1), send.reshape(-1)
            # receives first: a matching send can then land without an unexpected-message copy
            self.requests = [comm.Recv_init([rflat[a:a + c], t], q, tag) for q, a, c in
                             zip(self.sources, self.recv_displs.tolist(), self.recv_counts.tolist())]
            self.requests += [comm.Send_init([sflat[a:a + c], t], q, tag) for q, a, c in
                              zip(self.dests, self.send_displs.tolist(), self.send_counts.tolist())]
        elif method == "neighbor":   # collective: also on ranks without neighbours
            if self.graph is None:
                self.graph = comm.Create_dist_graph_adjacent(self.sources, self.dests,
                                                             reorder=False)
                self._own_graph = True
            self.requests = [self.graph.Neighbor_alltoallv_init(
                [send, self.send_counts, self.send_displs, t],
                [recv, self.recv_counts, self.recv_displs, t])]
        reqs = self.requests
        self.start: Callable[[], object]
        self.wait: Callable[[], object]
        if len(reqs) == 1:
            self.start, self.wait = reqs[0].Start, reqs[0].Wait
        elif reqs:
            self.start = partial(MPI.Prequest.Startall, reqs)
            self.wait = partial(MPI.Request.Waitall, reqs)
        else:
            self.start = self.wait = _nothing

    def run(self) -> None:
        """:meth:`start` then :meth:`wait`."""
        self.start()
        self.wait()

    def free(self) -> None:
        """Release the persistent requests (and the graph communicator this object made)."""
        for r in self.requests:
            r.Free()
        self.requests = []
        self.start = self.wait = _nothing
        if self._own_graph and self.graph is not None:
            self.graph.Free()
        self.graph = None


def _nothing() -> None:
    return None


def owners_of(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The owning rank of every global id under the block partition ``offsets`` (int64)."""
    return (np.searchsorted(offsets, np.asarray(ids, dtype=np.int64), side="right") - 1
            ).astype(np.int64)


class GhostPlan:
    """Who sends which values to whom so that every rank gets the ids it needs (built once).

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm or None
        The ranks among which the items are distributed (None: ``MPI.COMM_WORLD``).
    needs : array_like of int
        Global ids this rank needs from other ranks, in any order, repeats allowed (they
        are made unique). Ids this rank owns are not allowed: they need no message.
    offsets : array_like of int, length ``comm.size + 1``
        The owner partition: rank ``r`` owns ids ``[offsets[r], offsets[r+1])``.
    method : {"neighbor", "p2p", "auto"}
        The transport (see :func:`resolve_method`); default ``"neighbor"``.
    tag : int
        Message tag of the point-to-point transport (plans in flight at the same time on
        one communicator need different tags).
    assume_unique : bool
        ``needs`` is already sorted and unique (skips the sort).
    recv_counts : array_like of int, optional
        How many of ``needs`` each rank owns, when the caller has counted them (requires
        ``assume_unique``).
    validate : bool
        Check ``needs`` (inside the partition, not owned here) on every rank and agree on the
        outcome (one more collective); off for callers whose ids are already checked.

    Attributes
    ----------
    ghost_ids : ndarray of int64
        The sorted global ids this rank receives; slot ``k`` of :meth:`wait`'s result holds
        the value of ``ghost_ids[k]``. Sorted ids are grouped by owner, ascending.
    recv_counts, send_counts : ndarray of int64, length ``comm.size``
        How many ids this rank receives from / sends to each rank.
    send_ids : ndarray of int64
        The global ids other ranks asked of this rank, grouped by destination ascending;
        ``send_idx = send_ids - offsets[rank]`` indexes this rank's block.
    sources, dests : list of int
        The ranks with ``recv_counts > 0`` / ``send_counts > 0``, ascending.
    method : str
        ``"neighbor"``, ``"p2p"`` or ``"none"`` (one rank).

    Raises
    ------
    UsageError
        (ValueError) bad offsets, an id outside ``[0, n)`` or owned by this rank (on every
        rank when ``validate``).
    InputTypeError
        (TypeError) ``comm`` is not an intracommunicator or ``needs`` is not integral.

    Notes
    -----
    Building costs one ``Alltoall`` of ``p`` counts and one ``Alltoallv`` of the ids (plus one
    ``allgather`` of the validation outcome), and ``O(m log m)`` for ``m`` needs. Each exchange
    of ``w`` values per id of ``b`` bytes moves ``w b len(ghost_ids)`` bytes in, one message
    per neighbour and direction. Buffers and persistent requests are made on first use per
    (dtype, values per id) and reused.
    """

    def __init__(self, comm, needs, offsets, *, method: str = "neighbor", tag: int = TAG,
                 assume_unique: bool = False, recv_counts=None, validate: bool = True):
        comm = as_comm(comm)
        self.comm = comm
        p, r = comm.Get_size(), comm.Get_rank()
        self.rank, self.size = r, p
        self.method = resolve_method(method, p)
        self.tag = int(tag)
        off = np.asarray(offsets, dtype=np.int64)
        if off.shape != (p + 1,) or off[0] != 0 or np.any(np.diff(off) < 0):
            raise UsageError(f"offsets must be {p + 1} non-decreasing integers from 0, "
                             f"got {off.tolist() if off.size < 20 else off.shape}")
        self.offsets = off
        self.lo, self.hi = int(off[r]), int(off[r + 1])
        needs = np.asarray(needs)
        if needs.dtype.kind not in "iu" and not (needs.size == 0 and needs.dtype.kind == "f"):
            raise InputTypeError(f"needs must be integer ids, got dtype {needs.dtype}")
        needs = needs.astype(np.int64, copy=False).reshape(-1)
        ghost = needs if assume_unique else np.unique(needs)
        if validate:
            from .runtime import collective

            with collective(comm):
                n = int(off[-1])
                if ghost.size and (ghost.min() < 0 or ghost.max() >= n):
                    raise UsageError(f"ghost plan: rank {r} needs an id outside [0, {n})")
                if np.any((ghost >= self.lo) & (ghost < self.hi)):
                    raise UsageError(f"ghost plan: rank {r} names ids it owns itself")
        self.ghost_ids = ghost
        if recv_counts is None:
            recv_counts = np.bincount(owners_of(ghost, off), minlength=p)
        self.recv_counts = np.asarray(recv_counts, dtype=np.int64)
        if p > 1:
            self.send_counts = np.empty(p, dtype=np.int64)
            comm.Alltoall(self.recv_counts, self.send_counts)
            self.send_ids = np.empty(int(self.send_counts.sum()), dtype=np.int64)
            comm.Alltoallv([ghost, self.recv_counts, _displs(self.recv_counts), MPI.INT64_T],
                           [self.send_ids, self.send_counts, _displs(self.send_counts),
                            MPI.INT64_T])
        else:
            self.send_counts = np.zeros(p, dtype=np.int64)
            self.send_ids = np.empty(0, dtype=np.int64)
        self.send_idx = self.send_ids - self.lo
        if self.send_idx.size and (self.send_idx.min() < 0
                                   or self.send_idx.max() >= self.hi - self.lo):
            raise RuntimeError("ghost plan: a rank asked for an id this rank does not own")
        self.sources = [int(q) for q in np.flatnonzero(self.recv_counts)]
        self.dests = [int(q) for q in np.flatnonzero(self.send_counts)]
        self._graph = None
        self._channels: dict[tuple[str, int], Transfer] = {}
        self._pending: tuple[Transfer, tuple[int, ...]] | None = None

    # -- sizes ------------------------------------------------------------------------
    @property
    def n_ghost(self) -> int:
        """Number of ids this rank receives."""
        return int(self.ghost_ids.size)

    @property
    def n_send(self) -> int:
        """Number of values this rank sends (summed over its destinations)."""
        return int(self.send_idx.size)

    @property
    def n_local(self) -> int:
        """Number of ids this rank owns (the length of ``x_local`` in :meth:`start`)."""
        return self.hi - self.lo

    def slots(self, ids) -> np.ndarray:
        """The positions of global ``ids`` (all among :attr:`ghost_ids`) in the ghost array."""
        ids = np.asarray(ids, dtype=np.int64)
        k = np.searchsorted(self.ghost_ids, ids)
        if ids.size and (k.max() >= self.ghost_ids.size
                         or np.any(self.ghost_ids[np.minimum(k, self.ghost_ids.size - 1)] != ids)):
            raise UsageError("slots: an id is not a ghost of this plan")
        return k

    # -- the transport ----------------------------------------------------------------
    @property
    def graph(self):
        """The distributed-graph communicator (``method="neighbor"``; made on first use, which
        is collective: every rank starts its first exchange at the same point)."""
        if self._graph is None and self.method == "neighbor":
            self._graph = self.comm.Create_dist_graph_adjacent(self.sources, self.dests,
                                                               reorder=False)
        return self._graph

    def channel(self, dtype=np.float64, width: int = 1) -> Transfer:
        """The persistent transport for ``width`` values of ``dtype`` per id: its ``send``
        buffer is packed in :attr:`send_idx` order (``send[k*width:(k+1)*width]`` = the
        values of ``send_ids[k]``), its ``recv`` buffer holds the ghosts in :attr:`ghost_ids`
        order. Made on first use per (dtype, width) (collective for ``"neighbor"``)."""
        dt = np.dtype(dtype)
        key = (dt.str, int(width))
        ch = self._channels.get(key)
        if ch is None:
            w = int(width)
            recv = np.empty(self.n_ghost * w, dtype=dt)
            send = np.empty(self.n_send * w, dtype=dt)
            ch = Transfer(self.comm, self.sources, self.recv_counts[self.sources] * w,
                          self.dests, self.send_counts[self.dests] * w, recv, send,
                          method=self.method, tag=self.tag, graph=self.graph)
            self._channels[key] = ch
        return ch

    def start(self, x_local: np.ndarray) -> Transfer:
        """Start sending the values other ranks need from ``x_local`` (non-blocking).

        Parameters
        ----------
        x_local : numpy.ndarray, shape ``(n_local,)`` or ``(n_local, k...)``
            This rank's block: row ``i`` holds the value(s) of id ``offsets[rank] + i``.
            Any dtype MPI can carry.

        Returns
        -------
        Transfer
            The channel in flight (its ``recv`` buffer is complete after :meth:`wait`).
        """
        if self._pending is not None:
            raise RuntimeError("GhostPlan.start: an exchange is already in flight; wait() first")
        x = np.asarray(x_local)
        if x.ndim < 1 or x.shape[0] != self.n_local:
            raise UsageError(f"x_local has shape {x.shape}, expected ({self.n_local}, ...) "
                             "(this rank's block)")
        tail = x.shape[1:]
        w = int(np.prod(tail, dtype=np.int64)) if tail else 1
        ch = self.channel(x.dtype, w)
        if self.n_send:
            np.take(x, self.send_idx, axis=0, out=ch.send.reshape((self.n_send, *tail)))
        ch.start()
        self._pending = (ch, tail)
        return ch

    def wait(self, out: np.ndarray | None = None) -> np.ndarray:
        """Finish the exchange started last; return the ghosts, shape ``(n_ghost, k...)``:
        row ``j`` is the value(s) of ``ghost_ids[j]`` (a view of the channel's buffer, valid
        until the next exchange of that dtype and width, unless ``out`` is given)."""
        if self._pending is None:
            raise RuntimeError("GhostPlan.wait: no exchange in flight")
        ch, tail = self._pending
        self._pending = None
        ch.wait()
        g = ch.recv.reshape((self.n_ghost, *tail))
        if out is not None:
            out[...] = g
            return out
        return g

    def exchange(self, x_local: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`start` then :meth:`wait`: the ghost values of ``x_local`` (collective over
        the neighbours)."""
        self.start(x_local)
        return self.wait(out)

    def free(self) -> None:
        """Release the persistent requests and the graph communicator (optional)."""
        for ch in self._channels.values():
            ch.free()
        self._channels.clear()
        if self._graph is not None:
            self._graph.Free()
            self._graph = None

    def __repr__(self) -> str:
        return (f"GhostPlan(rank={self.rank}/{self.size}, ghosts={self.n_ghost}, "
                f"sends={self.n_send}, sources={self.sources}, dests={self.dests}, "
                f"method={self.method!r})")


# ----------------------------------------------------------------------------------------
# prefix sums and the node communicator
# ----------------------------------------------------------------------------------------
def exscan(comm, value: int) -> int:
    """The sum of ``value`` over the ranks below this one (0 on rank 0). Collective.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm or None
        None: ``MPI.COMM_WORLD``.
    value : int
        This rank's count (an exact integer sum: Python ints, no overflow).

    Returns
    -------
    int
        ``sum(value of rank q for q < rank)``; the start of this rank's slice when every rank
        contributes its count.
    """
    comm = as_comm(comm)
    if comm.Get_size() == 1:
        return 0
    r = comm.exscan(int(value), op=MPI.SUM)
    return 0 if r is None or comm.Get_rank() == 0 else int(r)


_NODE_KEY: int | None = None


def node_comm(comm=None) -> MPI.Intracomm:
    """The ranks of ``comm`` on this host (``MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)``),
    made once per communicator and cached on it as an MPI attribute. Collective the first
    time. Do not free the result: it lives as long as ``comm`` (the cache is dropped when
    ``comm`` is freed).
    """
    global _NODE_KEY
    comm = as_comm(comm)
    if _NODE_KEY is None:  # freeing comm frees its node communicator (no leaked context ids)
        _NODE_KEY = MPI.Comm.Create_keyval(delete_fn=lambda _comm, _key, node: node.Free())
    node = comm.Get_attr(_NODE_KEY)
    if node is None:
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        comm.Set_attr(_NODE_KEY, node)
    return node


def host_ids(comm=None) -> list[int]:
    """Per rank of ``comm``, an id its host's ranks share: the lowest ``comm`` rank on that
    host (so ids are ascending in first appearance). Collective."""
    comm = as_comm(comm)
    node = node_comm(comm)
    leader = node.bcast(comm.Get_rank(), root=0)
    return [int(h) for h in comm.allgather(leader)]
