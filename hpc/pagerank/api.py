"""The Python API of hpc.pagerank: global PageRank, PowerWalk personalized PageRank and its
fingerprint index, on one rank or under ``mpiexec -n N`` alike.

``G`` may be given as

- a SciPy sparse adjacency matrix (any format, array or matrix), identical on every rank:
  a nonzero ``A[i, j]`` is the edge i -> j; values are ignored (the graph is unweighted) and
  stored zeros are no edge; vertices 0..n-1, isolated ones included;
- an ``(m, 2)`` integer NumPy array of edges (source, target), identical on every rank:
  vertices 0..n-1 with n = the largest id + 1 (an id in no edge is an isolated vertex);
- a path (``str`` or ``os.PathLike``) to a SNAP edge list (whitespace separated, ``#``/``%``
  comments, any non-negative ids), a Matrix Market ``.mtx`` file or an HDF5 graph written by
  ``python -m hpc.pagerank --cache``, read in parallel: the vertices are the ids that occur,
  in ascending order (``.mtx``: 0..n-1);
- the suite's distributed objects: a :class:`hpc.pagerank.graphio.Graph` (its vertex blocks)
  or an :class:`hpc.sparse.DistCSR` adjacency matrix (its row blocks).

Edges follow networkx's ``DiGraph``: duplicates collapse into one edge, self-loops stay.
A global input gives a global result on every rank; a distributed one gives this rank's block.
``comm=None`` means ``MPI.COMM_WORLD``; any intracommunicator may be passed.
"""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import NamedTuple, Union

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core import envinfo, h5io
from hpc.core.checks import check_choice
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.runtime import as_comm, collective
from hpc.sparse.dcsr import DistCSR

from . import graphio
from .graphio import Graph
from .ppr import (ENGINES, Answer, Fingerprints, build_fingerprints, choose_engine, combine,
                  decompose, fingerprint_matrix, native_engine, native_query, native_support,
                  needed_vertices, partitioned_answer, partitioned_engine, partitioned_push,
                  partitioned_support, push_operator, WALK_RULES)
from .solver import Teleport, distribution, make_solver, move_blocks

GraphLike = Union[sp.spmatrix, "sp.sparray", np.ndarray, str, "os.PathLike[str]", Graph, DistCSR]

INDEX_FORMAT = "hpc.pagerank.ppr-index/2"   # /2: the graph's content fingerprint


class PowerIterationFailedConvergence(RuntimeError):
    """The power iteration did not reach the tolerance within ``max_iter`` iterations
    (networkx raises ``networkx.PowerIterationFailedConvergence`` in the same case).

    Attributes
    ----------
    num_iterations : int
        The iterations run (``max_iter``).
    l1_change : float
        The L1 change of the score vector in the last iteration.
    """

    def __init__(self, num_iterations: int, l1_change: float, target: float):
        self.num_iterations = int(num_iterations)
        self.l1_change = float(l1_change)
        super().__init__(f"power iteration failed to converge within {num_iterations} "
                         f"iterations (L1 change {l1_change:.3g}, needed < {target:.3g}); "
                         f"raise max_iter or tol")


# --------------------------------------------------------------------------------------------
# argument checks and inputs
# --------------------------------------------------------------------------------------------
def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def _alpha(alpha) -> float:
    a = _real(alpha, "alpha")
    if not 0.0 < a < 1.0:
        raise UsageError(f"alpha: the damping factor must lie in (0, 1), got {a}")
    return a


def _positive(value, name: str) -> float:
    v = _real(value, name)
    if not (v > 0.0 and np.isfinite(v)):
        raise UsageError(f"{name}: expected a finite number > 0, got {v}")
    return v


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if int(value) < minimum:
        raise UsageError(f"{name}: expected an integer >= {minimum}, got {int(value)}")
    return int(value)


@dataclass
class _Input:
    """A graph built from an API input, and how to hand results back."""

    g: Graph
    offsets: np.ndarray | None   # row blocks of a distributed input (None: a global input)


def as_graph(G: GraphLike, comm=None, what: str = "G") -> Graph:
    """The distributed :class:`~hpc.pagerank.graphio.Graph` of any input :func:`pagerank`
    takes (collective). A ``Graph`` is returned as it is."""
    return _load(G, as_comm(comm), what).g


def _load(G, comm: MPI.Intracomm, what: str = "G", weights: bool = False,
          undirected: bool = False) -> _Input:
    if isinstance(G, Graph):
        return _Input(G, G.offsets)
    if isinstance(G, DistCSR):
        return _Input(graphio.from_distcsr(G, what=what, weights=weights,
                                           undirected=undirected), np.asarray(G.row_offsets))
    if sp.issparse(G):
        g = graphio.from_scipy(G, comm, what, weights, undirected)
    elif isinstance(G, (str, os.PathLike)):
        g = _read(os.fspath(G), comm, what, weights, undirected)
    elif isinstance(G, (np.ndarray, list, tuple)):
        g = graphio.from_edge_array(np.asarray(G), comm, what, weights, undirected)
    else:
        raise InputTypeError(
            f"{what}: expected a SciPy sparse adjacency matrix, an (m, 2) integer edge array, "
            f"a path to a graph file, a Graph or a DistCSR; got {type(G).__name__}")
    if g.n == 0:
        raise UsageError(f"{what}: the graph has no vertices")
    return _Input(g, None)


def _read(path: str, comm: MPI.Intracomm, what: str, weights: bool = False,
          undirected: bool = False) -> Graph:
    with collective(comm):
        if not os.path.isfile(path):
            raise UsageError(f"{what}: cannot read {path!r} (no such file)")
    return graphio.load_graph(comm, graph=path, weights=weights, undirected=undirected)


def teleport_of(g: Graph, personalization=None, dangling=None) -> Teleport:
    """The :class:`~hpc.pagerank.solver.Teleport` of networkx's ``personalization`` and
    ``dangling`` arguments (see :func:`distribution`; collective)."""
    return Teleport(distribution(g, personalization, "personalization"),
                    distribution(g, dangling, "dangling"))


def _default_backend() -> str:
    return "native" if registry.is_available("native") else "numpy"


def _allgather(comm, x_local: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty(int(offsets[-1]), dtype=np.float64)
    counts = np.diff(offsets).astype(np.int64)
    comm.Allgatherv(np.ascontiguousarray(x_local, dtype=np.float64),
                    [out, counts, np.asarray(offsets[:-1], dtype=np.int64), MPI.DOUBLE])
    return out


# --------------------------------------------------------------------------------------------
# global PageRank
# --------------------------------------------------------------------------------------------
def pagerank(G: GraphLike, alpha: float = 0.85, personalization=None, *, tol: float = 1e-06,
             max_iter: int = 100, weight=None, dangling=None, undirected: bool = False,
             relax: bool = False, comm=None) -> np.ndarray:
    """PageRank of every vertex of a directed graph, as ``networkx.pagerank`` computes it.

    The power iteration of Page, Brin, Motwani and Winograd ("The PageRank citation ranking:
    bringing order to the web", Stanford, 1999) with networkx's semantics and stopping rule::

        x_0 = 1/N,  x_{k+1} = alpha * (A^T D^-1 x_k + dangling(x_k) / N) + (1 - alpha) / N

    with A the adjacency matrix, D the out-degrees and dangling(x) the score of the vertices
    without out-edges: the teleport is uniform and the dangling mass is spread uniformly over
    all N vertices (networkx's default ``personalization=None, dangling=None``); an isolated
    vertex is dangling and keeps the teleport share. The iteration stops at the first
    ``x_{k+1}`` whose L1 change is below ``N * tol``, as networkx's does, and returns it
    (scores sum to 1). Where the change settles at the rate alpha (a periodic component: a
    star, a path, a reciprocal pair, a cycle; its error decays like alpha^k after the rest has
    converged), ``relax=True`` relaxes one step, ``x_{k+1} = (alpha x_k + G(x_k)) / (1 +
    alpha)``, which removes that tail; every step's change is still ``|G(x_k) - x_k|``.

    The variants take networkx's names and semantics: ``weight`` (A^T D^-1 with A the
    weighted adjacency and D the out-weights; a vertex whose out-weights sum to 0 is
    dangling), ``personalization`` (the teleport goes to p / sum(p) instead of 1/N) and
    ``dangling`` (the dangling mass goes to that distribution; default: the
    personalization, as in networkx)::

        x_{k+1} = alpha * (A^T D^-1 x_k + dangling(x_k) * q) + (1 - alpha) * p

    Distributed: every rank owns a block of vertices and pulls the scores of its
    in-neighbours each iteration (ghost exchange of the 1D layout; the native C++ kernels
    when ``hpc._core`` is built, else NumPy/SciPy); one Allreduce per iteration carries the
    L1 change and the dangling mass.

    Parameters
    ----------
    G : SciPy sparse matrix, (m, 2) int ndarray, str or os.PathLike, Graph or DistCSR
        The graph (see :mod:`hpc.pagerank.api`): ``A[i, j] != 0`` is the edge i -> j; an edge
        array's row ``(u, v)`` is the edge u -> v; a path names a SNAP, ``.mtx`` or HDF5
        graph file.
    alpha : float, default 0.85
        Damping factor, in (0, 1); the teleport probability is ``1 - alpha``.
    personalization : dict or sequence of float, optional
        The teleport distribution: {vertex id: value} (ids as the graph names its vertices:
        0..N-1 for a matrix or edge array, the file's ids for a file; other ids are ignored,
        missing vertices get 0) or N values; normalised to sum 1. Default uniform.
    tol : float, default 1e-06
        Per-vertex tolerance, > 0: stop when the L1 change is below ``N * tol``.
    max_iter : int, default 100
        Iteration limit, >= 1.
    weight : str or bool, optional
        None or False (default): unweighted. Any string (networkx's attribute name, e.g.
        ``"weight"``) or True: edge weights, finite and >= 0: the values of a sparse matrix
        or DistCSR, the third column of an (m, 3) edge array or of a SNAP file (of duplicate
        edges the last one counts, as networkx's ``add_edge``), the values of a ``.mtx``
        file, the weights of an HDF5 graph file. A Graph is used as it is.
    dangling : dict or sequence of float, optional
        Where the dangling mass goes (as ``personalization``); default: the personalization
        (networkx's default), which is uniform when that is.
    undirected : bool, default False
        Every edge both ways (networkx on an undirected ``Graph``, igraph's
        ``directed=False``); not for a Graph or an HDF5 graph file.
    relax : bool, default False
        Relaxed steps against the periodic tail (above; GAP's Kronecker graph of scale 19:
        36 iterations instead of 64 to an L1 change of 1e-10). The answer is then another
        iterate within the tolerance, no longer networkx's own (False: equal to networkx's
        to 1e-12).
    comm : mpi4py.MPI.Intracomm, optional
        The ranks that share the work (default ``MPI.COMM_WORLD``). Ignored for a Graph or
        DistCSR, which carry their own.

    Returns
    -------
    numpy.ndarray
        float64 scores. A global input: all N scores on every rank, entry i for vertex i
        (a file: the i-th smallest vertex id of the file). A Graph or DistCSR: this rank's
        block (the Graph's vertex block, or the DistCSR's row block).

    Raises
    ------
    ValueError
        (``hpc.core.errors.UsageError``) a non-square matrix, a negative vertex id, an empty
        graph, an unreadable or malformed file, alpha outside (0, 1), tol <= 0, max_iter < 1.
    TypeError
        (``hpc.core.errors.InputTypeError``) an input of an unsupported type, a non-integer
        edge array, a non-numeric alpha or tol.
    PowerIterationFailedConvergence
        (a ``RuntimeError``) when ``max_iter`` iterations do not reach the tolerance.

    Notes
    -----
    Cost per iteration: O((N + E) / p) work per rank, one exchange of the ghost scores (at
    most one value per cut edge) and one 2-value Allreduce; reading the graph sorts the edges
    once (O(E log E / p)). Memory: O((N + E) / p) per rank plus the N-vector returned.

    Examples
    --------
    >>> import numpy as np
    >>> from hpc.pagerank import pagerank
    >>> x = pagerank(np.array([[0, 1], [1, 2], [2, 0], [2, 1]]))
    >>> x.round(3)
    array([0.215, 0.397, 0.388])
    """
    alpha = _alpha(alpha)
    tol = _positive(tol, "tol")
    max_iter = _count(max_iter, "max_iter")
    if weight is not None and not isinstance(weight, (str, bool)):
        raise InputTypeError(f"weight: expected None, a str or a bool, got {type(weight).__name__}")
    if not isinstance(undirected, (bool, np.bool_)):
        raise InputTypeError(f"undirected: expected a bool, got {type(undirected).__name__}")
    if not isinstance(relax, (bool, np.bool_)):
        raise InputTypeError(f"relax: expected a bool, got {type(relax).__name__}")
    if undirected and isinstance(G, Graph):
        raise UsageError("undirected: a Graph is used as it is; build it undirected")
    inp = _load(G, as_comm(comm), weights=bool(weight), undirected=bool(undirected))
    tp = teleport_of(inp.g, personalization, dangling)
    res = solve(inp.g, alpha, inp.g.n * tol, max_iter, teleport=tp, relax=bool(relax))
    if not res.converged:
        raise PowerIterationFailedConvergence(max_iter, res.l1_change, inp.g.n * tol)
    g = inp.g
    if inp.offsets is None:
        return _allgather(g.comm, res.x, g.offsets)
    return move_blocks(g.comm, res.x, g.offsets, inp.offsets)


def solve(g: Graph, alpha: float, l1_tol: float, max_iter: int, backend: str | None = None,
          layout: str = "1d", teleport: Teleport | None = None, sweep: str = "jacobi",
          relax: bool = False):
    """One power iteration on a distributed graph to an absolute L1 change ``l1_tol``: the
    solver's result (this rank's scores ``x``, ``iterations``, ``l1_change``, ``converged``).
    ``backend``: a name of :data:`hpc.pagerank.backends.BACKENDS` (default: native when
    built, else numpy); ``layout``: '1d' or '2d'; ``teleport``: see :func:`teleport_of`;
    ``sweep``: 'jacobi' or 'gauss-seidel' (1d; stops on the Jacobi residual); ``relax``:
    relaxed Jacobi steps against the periodic tail (see :func:`pagerank`) (collective)."""
    solver = make_solver(g, backend or _default_backend(), layout, teleport, sweep=sweep)
    solver.relax = bool(relax)
    try:
        return solver.solve(alpha, l1_tol, max_iter)
    finally:
        solver.free()


# --------------------------------------------------------------------------------------------
# PowerWalk: the fingerprint index and personalized PageRank
# --------------------------------------------------------------------------------------------
class PPRIndex:
    """PowerWalk's fingerprint index: for every vertex u, a Monte Carlo estimate of its
    personalized PageRank vector from ``walks`` random walks that start at u (Liu, Cao,
    Wang, Jiang, "PowerWalk: Scalable personalized PageRank via random walks with
    vertex-centric decomposition", CIKM 2016). Each vertex keeps its ``keep`` largest entries
    and the estimate's full mass. Distributed: each rank holds the fingerprints of its
    vertex block.

    Build it with :meth:`build`, store it with :meth:`save`, read it back with :meth:`load`,
    and pass it to :func:`personalized` as ``index``.

    Attributes
    ----------
    graph : Graph
        The distributed graph the index belongs to.
    fingerprints : Fingerprints
        This rank's rows (see :mod:`hpc.pagerank.ppr`).
    alpha, walks, max_length, keep, seed : float, int
        The parameters it was built with.
    walk_rule : str
        ``"uniform"`` or ``"degree"`` (walks per vertex, see :meth:`build`).
    """

    def __init__(self, graph: Graph, fingerprints: Fingerprints, alpha: float, walks: int,
                 max_length: int, keep: int, seed: int, source=None,
                 walk_rule: str = "uniform"):
        self.graph = graph
        self.walk_rule = str(walk_rule)
        self.fingerprints = fingerprints
        self.alpha = float(alpha)
        self.walks = int(walks)
        self.max_length = int(max_length)
        self.keep = int(keep)
        self.seed = int(seed)
        self._source = source

    @property
    def survivors(self) -> int:
        """Walks (over all ranks) still alive after ``max_length`` steps."""
        return int(self.fingerprints.survivors)

    def __repr__(self) -> str:
        return (f"PPRIndex(n={self.graph.n}, alpha={self.alpha}, walks={self.walks}, "
                f"keep={self.keep}, ranks={self.graph.comm.Get_size()})")

    @classmethod
    def build(cls, G: GraphLike, *, alpha: float = 0.85, walks: int = 100,
              max_length: int = 64, keep: int = 128, seed: int = 0, batch: int = 4096,
              comm=None, progress=None, walk_rule: str = "degree") -> "PPRIndex":
        """Run ``walks`` random walks from every vertex and keep the fingerprints (collective).

        A walk stops with probability ``1 - alpha`` at each step and is absorbed at a
        dangling vertex; F_u(v) = (1 - alpha) / walks x (visits of v). Walkers live on the
        rank that owns their vertex and move in supersteps (one all-to-all each); the
        randomness is a counter-based hash of (seed, walk, step), so the index does not
        depend on the number of ranks.

        Parameters
        ----------
        G : graph input
            As for :func:`pagerank`.
        alpha : float, default 0.85
            Damping factor in (0, 1).
        walks : int, default 100
            Walks per vertex (the error of a fingerprint shrinks like 1/sqrt(walks)).
        max_length : int, default 64
            Steps after which a surviving walk (a fraction ``alpha ** max_length``) stops; its
            remaining mass is credited where it stops.
        keep : int, default 128
            Entries stored per vertex, largest first (0 keeps all).
        seed : int, default 0
            Seed of the walks.
        batch : int, default 4096
            Source vertices per rank per round of walks (bounds memory).
        comm : mpi4py.MPI.Intracomm, optional
            Default ``MPI.COMM_WORLD``.
        progress : callable, optional
            ``progress(rounds_done)`` before each round of walks (there are
            :func:`hpc.pagerank.ppr.walk_rounds` rounds, each of at most about ``batch`` x
            ``walks`` walks: ceil(largest vertex block / batch) with uniform walks; e.g. a
            :class:`hpc.core.progress.Progress`'s ``set``).
        walk_rule : {"degree", "uniform"}, default "degree"
            ``"degree"``: a vertex of out-degree d runs ``walks`` x ceil(d / mean
            out-degree) walks, so the fingerprints of hubs, which keep the most residual
            mass under the per-edge push, are as precise per unit of that mass as the
            others' (:func:`hpc.pagerank.ppr.walks_per_vertex`); ``"uniform"``: ``walks``
            from every vertex. ``walks`` is the least per vertex either way.

        Returns
        -------
        PPRIndex

        Notes
        -----
        Cost: N x walks walks of expected length 1 / (1 - alpha), O(N walks / ((1 - alpha) p))
        work per rank and one all-to-all per step; memory O(N keep / p) per rank.
        """
        alpha = _alpha(alpha)
        walks = _count(walks, "walks")
        max_length = _count(max_length, "max_length")
        keep = _count(keep, "keep", 0)
        batch = _count(batch, "batch")
        walk_rule = check_choice("walk_rule", walk_rule, WALK_RULES)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise InputTypeError(f"seed: expected an integer, got {type(seed).__name__}")
        g = _load(G, as_comm(comm)).g
        fp = build_fingerprints(g, np.arange(g.lo, g.hi, dtype=np.int64), walks, alpha,
                                int(seed), max_length, keep, batch, progress=progress,
                                rule=walk_rule)
        return cls(g, fp, alpha, walks, max_length, keep, int(seed), source=G,
                   walk_rule=walk_rule)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to an HDF5 file (collective; atomic: a temporary name, then a
        rename). Datasets ``/vertex_ids``, ``/index/count``, ``/index/ids``,
        ``/index/values``, ``/index/mass``; the parameters are attributes of ``/index``."""
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
        g, fp = self.graph, self.fingerprints
        counts = np.diff(fp.indptr)
        h5io.write(os.fspath(path), g.comm, {
            "/vertex_ids": h5io.Distributed(g.ids),
            "/index/count": h5io.Distributed(counts.astype(np.int64)),
            "/index/ids": h5io.Distributed(fp.ids),
            "/index/values": h5io.Distributed(fp.vals),
            "/index/mass": h5io.Distributed(fp.mass),
        }, attrs={"/index": {"format": INDEX_FORMAT, "n": g.n, "m": g.m, "damping": self.alpha,
                             "walks": self.walks, "max_length": self.max_length,
                             "keep": self.keep, "seed": self.seed, "walk_rule": self.walk_rule,
                             "survivors": fp.survivors, "graph": g.source,
                             "graph_fingerprint": _fingerprint(g)}})
        g.comm.Barrier()  # rank 0 renames the file into place; nobody reads it before that

    @classmethod
    def load(cls, path: str | os.PathLike, G: GraphLike, *, comm=None) -> "PPRIndex":
        """Read an index written by :meth:`save` (or ``python -m hpc.pagerank ppr-index``)
        for the graph ``G``; each rank reads only its rows (collective).

        Raises
        ------
        ValueError
            (``UsageError``) the file is unreadable, not an index of this version, built for
            another graph (its stored content fingerprint, see
            :func:`hpc.pagerank.graphio.content_hash`, differs from ``G``'s), or corrupt: a
            field of the wrong shape, vertex numbers outside [0, n), negative counts or
            counts above ``keep``, counts that do not sum to the stored entries, NaN,
            infinite or negative values, or a zero, negative or non-finite mass; the
            message names the file and the field.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
        path = os.fspath(path)
        g = _load(G, as_comm(comm)).g
        mine = _fingerprint(g)   # collective: before any rank may raise
        with collective(g.comm):
            fp, params = _read_index(path, g, mine)
        return cls(g, fp, float(params["damping"]), int(params["walks"]),
                   int(params["max_length"]), int(params["keep"]), int(params["seed"]),
                   source=G, walk_rule=params["walk_rule"])


def _fingerprint(g: Graph) -> str:
    """The graph's content fingerprint, computed once per graph (collective)."""
    if "content_hash" not in g.info:
        g.info["content_hash"] = graphio.content_hash(g)
    return g.info["content_hash"]


def _read_index(path: str, g: Graph, graph_fp: str) -> tuple[Fingerprints, dict]:
    """This rank's rows of an index file, every field checked (see :meth:`PPRIndex.load`):
    a UsageError names the file and the field."""
    import h5py

    def bad(field: str, why: str) -> UsageError:
        return UsageError(f"index {path}: corrupt: {field} {why}")

    n, lo, hi = g.n, g.lo, g.hi
    try:
        with h5py.File(path, "r") as f:
            a = f["index"].attrs
            if a.get("format") != INDEX_FORMAT:
                raise UsageError(f"index {path}: not a ppr-index file of this version (format "
                                 f"{a.get('format')!r}, expected {INDEX_FORMAT!r}); rebuild it "
                                 f"with ppr-index")
            stored = str(a.get("graph_fingerprint", ""))
            if int(a["n"]) != n or int(a["m"]) != g.m or stored != graph_fp:
                raise UsageError(f"index {path}: built for another graph ({a.get('graph')}, "
                                 f"{int(a['n'])} vertices, {int(a['m'])} edges, content "
                                 f"fingerprint {stored or 'none'}; this graph's is "
                                 f"{graph_fp}); rebuild it with ppr-index")
            params = {k: a[k] for k in ("damping", "walks", "max_length", "keep", "seed",
                                        "survivors")}
            params["walk_rule"] = str(a.get("walk_rule", "uniform"))   # older files: uniform
            if params["walk_rule"] not in WALK_RULES:
                raise bad("walk_rule", f"{params['walk_rule']!r} is not one of {WALK_RULES}")
            damping = float(params["damping"])
            if not 0.0 < damping < 1.0:
                raise bad("damping", f"{damping} is outside (0, 1)")
            for k, least in (("walks", 1), ("max_length", 1), ("keep", 0), ("survivors", 0)):
                if int(params[k]) < least:
                    raise bad(k, f"{int(params[k])} is below {least}")
            keep = int(params["keep"])
            for name in ("vertex_ids", "index/count", "index/mass"):
                if f[name].shape != (n,):
                    raise bad(f"/{name}", f"has shape {f[name].shape}, expected ({n},)")
            size = f["index/ids"].shape
            if len(size) != 1 or f["index/values"].shape != size:
                raise bad("/index/values", f"has shape {f['index/values'].shape}, /index/ids "
                          f"{size}: expected two equal 1-D arrays")
            if not np.array_equal(f["vertex_ids"][lo:hi], g.ids):
                raise bad("/vertex_ids", "are not this graph's vertex ids")
            before = f["index/count"][:lo].astype(np.int64)
            cnt = f["index/count"][lo:hi].astype(np.int64)
            limit = min(n, keep) if keep > 0 else n
            if (before < 0).any() or (cnt < 0).any():
                raise bad("/index/count", "has negative entries")
            if (before > limit).any() or (cnt > limit).any():
                raise bad("/index/count", f"has entries above {limit} (keep {keep}, "
                          f"{n} vertices)")
            start = int(before.sum())
            stop = start + int(cnt.sum())
            if stop > size[0] or (hi == n and stop != size[0]):
                raise bad("/index/ids", f"holds {size[0]} entries, /index/count sums to "
                          f"{stop if hi == n else 'more'}")
            ids = f["index/ids"][start:stop].astype(np.int64)
            vals = f["index/values"][start:stop].astype(np.float64)
            mass = f["index/mass"][lo:hi].astype(np.float64)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"index {path}: cannot read ({exc})") from None
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise bad("/index/ids", f"has vertex numbers outside [0, {n})")
    if not (np.isfinite(vals).all() and (vals >= 0).all()):
        raise bad("/index/values", "has NaN, infinite or negative entries")
    if not (np.isfinite(mass).all() and (mass > 0).all()):
        raise bad("/index/mass", "has zero, negative, NaN or infinite entries")
    indptr = np.zeros(cnt.size + 1, dtype=np.int64)
    np.cumsum(cnt, out=indptr[1:])
    # a row's stored entries are part of its estimate: their sum cannot exceed its mass
    if cnt.size and (np.add.reduceat(np.append(vals, 0.0), indptr[:-1]) * (cnt > 0)
                     > mass * (1 + 1e-9)).any():
        raise bad("/index/values", "exceed their row's /index/mass")
    fp = Fingerprints(np.arange(lo, hi, dtype=np.int64), indptr, ids, vals, mass,
                      int(params["survivors"]), int(params["walks"]))
    return fp, params


class TopK(NamedTuple):
    """The answer of :func:`personalized`: per source (rows, in the order given), its ``topk``
    best vertices, best first (ties by vertex), padded with id -1 and score 0 where fewer
    vertices are reachable."""

    ids: np.ndarray      #: (q, topk) int64 vertex ids, as G names them
    scores: np.ndarray   #: (q, topk) float64 personalized PageRank scores


@dataclass
class QueryStats:
    """Totals of a batch of PPR queries over all ranks."""

    pushes: int                 # residual entries pushed
    iterations: int             # push iterations run
    residual_mass: float        # residual mass left to the fingerprints, summed over queries
    residual_entries: int       # residual entries left
    fingerprints_built: int     # fingerprints built on the fly (0 with an index)


def prepare(g: Graph, fingerprints: Fingerprints | None, alpha: float, backend: str,
            engine: str = "replicated") -> None:
    """Derive once what batches of queries reuse (collective; cached on the graph or the
    fingerprints): with ``fingerprints``, the index's part (the native engine's copy of the
    graph and index, or the SciPy fingerprint matrix); without, the graph's part (the
    replicated graph, or the SciPy push operator). ``engine``: the native engine, replicated
    or partitioned (see :func:`hpc.pagerank.ppr.choose_engine`)."""
    if backend == "native" and engine == "partitioned":
        partitioned_engine(g, fingerprints, alpha)
    elif backend == "native":
        native_engine(g, fingerprints, alpha)
    elif fingerprints is not None:
        fingerprint_matrix(g, fingerprints)
    else:
        push_operator(g, alpha)


def query(g: Graph, verts: np.ndarray, *, alpha: float, fingerprints: Fingerprints | None = None,
          backend: str | None = None, topk: int = 20, iterations: int = 3,
          threshold: float = 1e-2, per_edge: bool = False, combine_rel: float = 0.0,
          walks: int = 100, max_length: int = 64, batch: int = 4096, seed: int = 0,
          want_full: bool = False, threads: int = 1,
          engine: str | None = None, walk_rule: str = "degree") -> tuple[Answer, QueryStats]:
    """A batch of PPR queries by PowerWalk's decomposition (collective): the engine behind
    :func:`personalized` and ``python -m hpc.pagerank ppr``.

    ``verts`` are global vertex numbers (the same array on every rank). Without
    ``fingerprints`` the ones the residual needs are built on the fly, ``walks`` per vertex by
    ``walk_rule`` (as ``PPRIndex.build``: the same walks as an index of those settings). ``backend`` 'native'
    (C++ engine, queries block-distributed) or 'numpy' (SciPy sparse products on the
    distributed graph). The native ``engine``: 'replicated' (every rank holds the whole graph
    and index and answers its queries alone), 'partitioned' (each rank holds its vertex
    block's rows; pushes and partial vectors are routed between the ranks in batched rounds;
    the same answer to rounding) or None/'auto' (chosen by memory). The answer (vertex
    numbers) is on rank 0, None elsewhere; the stats are on every rank.
    """
    backend = backend or _default_backend()
    built = 0
    fp = fingerprints
    if backend == "native" and choose_engine(g, fp, engine) == "partitioned":
        eng = partitioned_engine(g, fp, alpha)
        rounds = partitioned_push(g, eng, verts, iterations, threshold, per_edge, threads)
        if fp is None:
            fp = build_fingerprints(g, partitioned_support(g, eng), walks, alpha, seed,
                                    max_length, 0, batch, rule=walk_rule)
            built = int(g.comm.allreduce(int(fp.vertices.size)))
            eng = partitioned_engine(g, fp, alpha, keep_blocks=True)   # the batch stays
        ans, st = partitioned_answer(g, eng, int(verts.size), rounds, topk, combine_rel,
                                     want_full, threads)
        return ans, QueryStats(st.pushes, st.iterations, st.residual_mass,
                               st.residual_entries, built)
    if backend == "native":
        if fp is None:
            need = native_support(g, verts, alpha, iterations, threshold, per_edge)
            fp = build_fingerprints(g, need, walks, alpha, seed, max_length, 0, batch,
                                    rule=walk_rule)
            built = int(g.comm.allreduce(int(fp.vertices.size)))
        ans, st = native_query(g, native_engine(g, fp, alpha), verts, iterations, threshold,
                               topk, per_edge, combine_rel, want_full, threads)
        return ans, QueryStats(st.pushes, st.iterations, st.residual_mass,
                               st.residual_entries, built)
    dec = decompose(g, verts, alpha, iterations, threshold, per_edge=per_edge)
    if fp is None:
        fp = build_fingerprints(g, needed_vertices(g, dec), walks, alpha, seed, max_length, 0,
                                batch, rule=walk_rule)
        built = int(g.comm.allreduce(int(fp.vertices.size)))
    ans = combine(g, dec, fp, int(verts.size), topk, want_full=want_full)
    resid = float(g.comm.allreduce(float(dec.R.sum()), op=MPI.SUM))
    rent = int(g.comm.allreduce(int(dec.R.nnz), op=MPI.SUM))
    return ans, QueryStats(dec.pushes, dec.iterations, resid, rent, built)


def source_vertices(g: Graph, sources, what: str = "sources") -> np.ndarray:
    """Global vertex numbers of vertex ids as the graph's input names them (collective)."""
    ids = np.atleast_1d(np.asarray(sources))
    if ids.ndim != 1:
        raise UsageError(f"{what}: expected a 1-D sequence of vertex ids, got shape {ids.shape}")
    if ids.size == 0:
        raise UsageError(f"{what}: no vertex ids given")
    if not np.issubdtype(ids.dtype, np.integer):
        raise InputTypeError(f"{what}: vertex ids must be integers, got dtype {ids.dtype}")
    if int(ids.min()) < 0:
        raise UsageError(f"{what}: vertex ids must be non-negative, got {int(ids.min())}")
    verts = g.lookup(ids.astype(np.int64))
    if (verts < 0).any():
        bad = ids[verts < 0][:5].tolist()
        raise UsageError(f"{what}: not a vertex of the graph: {', '.join(map(str, bad))}")
    return verts


def personalized(G: GraphLike, sources, *, topk: int = 20, index: PPRIndex | None = None,
                 alpha: float | None = None, iterations: int = 3, threshold: float = 1e-2,
                 walks: int = 100, seed: int = 0, engine: str | None = None,
                 comm=None) -> TopK:
    """Personalized PageRank of a batch of sources by PowerWalk: each source's ``topk``
    vertices and scores.

    The semantics are networkx's ``pagerank(G, alpha, personalization={s: 1})``: teleport to
    s with probability 1 - alpha, and dangling mass returns to s. PowerWalk (Liu et al.,
    CIKM 2016) pushes each query's mass ``iterations`` times (entries >= ``threshold``) and
    combines the remaining residual with the fingerprints of ``index`` (or fingerprints
    built on the fly for the vertices the residual needs): the scores are estimates, their
    top-k ranking close to the exact one (precision@20 above 0.95 on the suite's graphs).

    Parameters
    ----------
    G : graph input
        As for :func:`pagerank`.
    sources : int or 1-D sequence of int
        The source vertices, as G names them (vertex numbers of a matrix or edge array,
        the file's ids for a path, original ids for a Graph).
    topk : int, default 20
        Vertices reported per source.
    index : PPRIndex, optional
        Fingerprints to reuse (:meth:`PPRIndex.build` or :meth:`PPRIndex.load`) for this
        graph; without one, the needed fingerprints are built for this call.
    alpha : float, optional
        Damping factor in (0, 1) (default: the index's, else 0.85).
    iterations : int, default 3
        Push iterations of the decomposition.
    threshold : float, default 1e-2
        Residual entries below this fraction of a query's mass are left to the fingerprints.
    walks : int, default 100
        Walks per vertex of fingerprints built on the fly (no index): the least, with hubs
        running more by the index's default rule (``PPRIndex.build(walk_rule="degree")``).
    seed : int, default 0
        Seed of those walks.
    engine : {'replicated', 'partitioned', 'auto'}, optional
        The native engine: every rank holding the whole graph and index, or each rank only
        its vertex block's rows (pushes and partial vectors routed between the ranks; the
        same answer to rounding). Default: chosen by memory (see ``query``).
    comm : mpi4py.MPI.Intracomm, optional
        Default ``MPI.COMM_WORLD``.

    Returns
    -------
    TopK
        A named tuple ``(ids, scores)`` of (q, topk) arrays on every rank, rows in the order
        of ``sources``, best first; id -1 and score 0 pad a row with fewer reachable vertices.

    Raises
    ------
    ValueError
        A bad graph (as :func:`pagerank`), a source that is not a vertex, topk < 1, alpha
        outside (0, 1) or unlike the index's, an index of another graph.
    TypeError
        Non-integer sources, an index that is not a PPRIndex, a wrong type of G.

    Notes
    -----
    Cost per query: the pushes touch O(out-degree) entries per pushed vertex over
    ``iterations`` rounds, and the combination one fingerprint row per residual entry
    (O(keep) each): milliseconds on graphs of 10^4 - 10^5 vertices, independent of N. With
    the replicated native engine every rank holds the whole graph and index (memory O(N + E + N keep))
    and answers a block of the queries with OpenMP threads; the partitioned engine holds
    O((N + E + N keep) / p) per rank.
    """
    topk = _count(topk, "topk")
    iterations = _count(iterations, "iterations", 0)
    threshold = _positive(threshold, "threshold")
    walks = _count(walks, "walks")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(f"seed: expected an integer, got {type(seed).__name__}")
    if engine is not None and not isinstance(engine, str):
        raise InputTypeError(f"engine: expected a str or None, got {type(engine).__name__}")
    if engine not in (None, "auto", *ENGINES):
        raise UsageError(f"engine: expected one of {', '.join(ENGINES)} or auto, got {engine!r}")
    if index is not None and not isinstance(index, PPRIndex):
        raise InputTypeError(f"index: expected a PPRIndex or None, got {type(index).__name__}")
    if alpha is None:
        alpha = index.alpha if index is not None else 0.85
    alpha = _alpha(alpha)
    if index is not None and abs(index.alpha - alpha) > 1e-15:
        raise UsageError(f"alpha: the index was built with alpha {index.alpha}, not {alpha}")
    comm = as_comm(comm)
    if index is not None and (G is index.graph or G is index._source):
        g = index.graph
    else:
        g = _load(G, comm).g
        if index is not None:
            g = _same_graph(g, index)
    verts = source_vertices(g, sources)
    backend = _default_backend()
    fp = index.fingerprints if index is not None else None
    ans, _ = query(g, verts, alpha=alpha, fingerprints=fp, backend=backend, topk=topk,
                   iterations=iterations, threshold=threshold, walks=walks, seed=int(seed),
                   threads=envinfo.default_threads(g.comm) if backend == "native" else 1,
                   engine=engine)
    flat = g.comm.bcast(ans.topk_ids.ravel() if g.comm.Get_rank() == 0 else None, root=0)
    scores = g.comm.bcast(ans.topk_scores if g.comm.Get_rank() == 0 else None, root=0)
    orig = g.original_ids(np.where(flat >= 0, flat, 0))
    ids = np.where(flat >= 0, orig, -1).reshape(verts.size, topk)
    return TopK(ids, np.asarray(scores, dtype=np.float64))


def _same_graph(g: Graph, index: PPRIndex) -> Graph:
    """The index's graph when ``g`` is the same graph on the same number of ranks."""
    h = index.graph
    same = (g.n == h.n and g.m == h.m and g.comm.Get_size() == h.comm.Get_size()
            and np.array_equal(g.offsets, h.offsets) and np.array_equal(g.ids, h.ids)
            and np.array_equal(g.out_indptr, h.out_indptr)
            and np.array_equal(g.out_indices, h.out_indices))
    if not g.comm.allreduce(bool(same), op=MPI.LAND):
        raise UsageError("index: built for another graph (or on another number of ranks)")
    return h


__all__ = ["pagerank", "personalized", "PPRIndex", "TopK", "PowerIterationFailedConvergence",
           "as_graph", "solve", "query", "prepare", "source_vertices", "QueryStats",
           "distribution", "teleport_of"]
