"""The public API of hpc.kmedoids: the :class:`KMedoids` estimator and the functions of the
`kmedoids` package (``fasterpam``, ``fastpam1``, ``pam``, ``pam_build``), distributed over MPI.

Every function works in a plain ``python`` process (one rank) and unchanged under
``mpiexec -n N``: the data (points X or a dissimilarity matrix D) are given *identically on
every rank*, each rank takes its block of rows, every loss change is summed over the ranks,
and the result (medoids, labels, loss) is returned on every rank. ``comm=None`` means
``MPI.COMM_WORLD``; any communicator may be passed (every rank of it must call).

The building blocks the command line uses, for data already distributed by rows
(:func:`hpc.kmedoids.data.read`), are :func:`distance_oracle` and :func:`cluster`.

References
----------
- L. Kaufman, P. J. Rousseeuw, "Clustering by means of medoids", in Statistical Data
  Analysis Based on the L1 Norm and Related Methods, 405-416, 1987 (PAM: BUILD and SWAP).
- E. Schubert, P. J. Rousseeuw, "Faster k-Medoids Clustering: Improving the PAM,
  CLARA, and CLARANS Algorithms", SISAP 2019, 171-187 (FastPAM1, FastPAM2).
- E. Schubert, P. J. Rousseeuw, "Fast and Eager k-Medoids Clustering: O(k) Runtime
  Improvement of the PAM, CLARA, and CLARANS Algorithms", Information Systems 101 (2021),
  101804 (FasterPAM, FastCLARA, FastCLARANS).
- R. T. Ng, J. Han, "CLARANS: A Method for Clustering Objects for Spatial Data
  Mining", IEEE TKDE 14(5), 2002, 1003-1016.
"""
from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from mpi4py import MPI

from hpc.core import backends as registry
from hpc.core import checks
from hpc.core.errors import InputTypeError, UsageError
from hpc.core.exchange import node_comm
from hpc.core.memory import available_bytes, require_memory
from hpc.core.partition import block_offsets, block_range
from hpc.core.runtime import as_comm

from . import algorithms, data, msc, onebatch
from . import quality as sil
from .kernels import BACKENDS, METRICS
from .kernels import load as load_kernels
from .oracle import DTYPES, MatrixOracle, Oracle, TiledOracle

METHODS = ("pam", "fastpam1", "fastpam2", "fasterpam", "clara", "clarans", "alternating",
           "onebatch", "fastmsc", "fastermsc", "dynmsc", "pammedsil")
SWAP_METHODS = ("pam", "fastpam1", "fastpam2", "fasterpam")
MSC_METHODS = msc.MSC_METHODS
INITS = ("build", "lab", "random", "first")
DISTANCES = ("auto", "matrix", "tiled")
MATRIX_FRACTION = 0.5  # auto mode keeps the matrix when it takes at most this much free memory
# the documented ranges of the numeric parameters (the CLI's options and the API's arguments)
K_MAX = 1_000_000
ITER_MAX = 1_000_000
SAMPLES_MAX = 10_000
SAMPLE_SIZE_MAX = 10_000_000
RESTARTS_MAX = 10_000
NEIGHBORS_MAX = 10.0
BATCH_MAX = 10_000_000


@dataclass
class KMedoidsResult:
    """A k-medoids clustering, with the fields of the `kmedoids` package's result.

    Parameters
    ----------
    loss : float
        The total deviation: the sum over all points of the distance to their medoid.
    labels : ndarray of int64, shape (n,)
        Cluster of every point: an index into ``medoids``.
    medoids : ndarray of int64, shape (k,)
        Indices of the medoid points, in slot order (``labels`` index this array).
    n_iter : int
        Iterations (SWAP passes; FasterPAM: sweeps over the points).
    n_swap : int
        Swaps performed.
    """

    loss: float
    labels: np.ndarray
    medoids: np.ndarray
    n_iter: int = 0
    n_swap: int = 0


@dataclass
class DynkResult(KMedoidsResult):
    """A DynMSC clustering: the `kmedoids` package's ``DynkResult``.

    Parameters
    ----------
    loss, labels, medoids, n_iter, n_swap
        As in :class:`KMedoidsResult`, for the chosen k (``loss``: its average medoid
        silhouette; ``n_iter``, ``n_swap``: summed over every k tried).
    losses : ndarray of float64
        The average medoid silhouette reached at each k of ``rangek``.
    rangek : ndarray of int64
        The k tried, ascending.
    bestk : int
        The chosen k (the largest average medoid silhouette).
    """

    losses: np.ndarray = None  # type: ignore[assignment]
    rangek: np.ndarray = None  # type: ignore[assignment]
    bestk: int = 0


# ------------------------------------------------------------------------------ checks
def _kernels(backend: str):
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    why = registry.why_unavailable(BACKENDS[backend][1])
    if why:
        raise UsageError(f"backend {backend!r} is not available here: {why}")
    return load_kernels(backend)


def _choice(name: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise UsageError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise UsageError(f"{name} must be positive, got {value}")
    return int(value)


def _matrix(name: str, X) -> np.ndarray:
    """X as a finite 2-D float64 array (InputTypeError for what is not numeric)."""
    if isinstance(X, (str, bytes, dict)) or X is None:
        raise InputTypeError(f"{name} must be a 2-D numeric array, got {type(X).__name__}")
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise InputTypeError(f"{name}: sparse input is not supported; pass a dense array")
    try:
        A = np.asarray(X)
    except (TypeError, ValueError) as e:
        raise InputTypeError(f"{name} must be a 2-D numeric array ({e})") from None
    if A.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must be a real numeric array, got dtype {A.dtype}")
    if A.ndim != 2:
        raise UsageError(f"{name} must be 2-D, got shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise UsageError(f"{name} is empty (shape {A.shape})")
    A = np.asarray(A, dtype=np.float64)
    if not np.isfinite(A).all():
        raise UsageError(f"{name} contains NaN or infinite values")
    return A


def _dissimilarity(name: str, D) -> np.ndarray:
    D = _matrix(name, D)
    if D.shape[0] != D.shape[1]:
        raise UsageError(f"{name} must be a square dissimilarity matrix, got shape {D.shape}")
    if (D < 0).any():
        raise UsageError(f"{name} has negative dissimilarities")
    if not (np.diagonal(D) == 0).all():
        raise UsageError(f"{name}: the diagonal of a dissimilarity matrix must be 0")
    return D


def _initial_medoids(medoids, n: int) -> tuple[int, np.ndarray | None]:
    """(k, None) for a count, (k, indices) for given initial medoids."""
    if isinstance(medoids, numbers.Integral) and not isinstance(medoids, bool):
        k = int(medoids)
        if not 1 <= k <= n:
            raise UsageError(f"medoids={k}: the number of medoids must be in 1..{n} "
                             "(the number of points)")
        return k, None
    if isinstance(medoids, (str, bytes, float, bool)) or medoids is None:
        raise InputTypeError("medoids must be the number of medoids (int) or an array of "
                             f"initial medoid indices, got {type(medoids).__name__}")
    m = np.asarray(medoids)
    if m.dtype.kind not in "iu" or m.ndim != 1:
        raise InputTypeError("medoids must be the number of medoids (int) or a 1-D integer "
                             f"array of initial medoid indices, got {m.dtype} shape {m.shape}")
    if m.size == 0 or m.size > n:
        raise UsageError(f"medoids: expected 1..{n} initial medoids, got {m.size}")
    m = m.astype(np.int64)
    if m.min() < 0 or m.max() >= n:
        raise UsageError(f"medoids: indices must be in 0..{n - 1}")
    if np.unique(m).size != m.size:
        raise UsageError("medoids: initial medoids must be distinct")
    return int(m.size), m


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):  # as scikit-learn allows
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise InputTypeError("random_state must be None, an int, a numpy Generator or "
                             f"RandomState, got {type(random_state).__name__}") from None


def _gather_labels(solver: algorithms.Solver, comm) -> np.ndarray:
    """Every point's cluster (slot index), on every rank."""
    n, p = solver.n, comm.Get_size()
    mine = np.ascontiguousarray(solver.near_i, dtype=np.int64)
    if p == 1:
        return mine.copy()
    off = block_offsets(n, p)
    out = np.empty(n, dtype=np.int64)
    comm.Allgatherv(mine, [out, np.diff(off), off[:-1], MPI.INT64_T])
    return out


# ------------------------------------------------------------------------------ building blocks
def distance_oracle(loc: data.Local, metric: str = "euclidean", *, distances: str = "auto",
                    backend: str = "native", comm=None,
                    X_all: np.ndarray | None = None, dtype: str = "float64") -> Oracle:
    """Where this rank's distances come from: its row block of the matrix, or tiles.

    Collective. Rows are block-distributed: this rank owns points ``loc.row0 ..
    loc.row0 + len(loc.X)``.

    Parameters
    ----------
    loc : hpc.kmedoids.data.Local
        This rank's rows: points (n_local x d), or rows of the dissimilarity matrix when
        ``metric='precomputed'``.
    metric : {'euclidean', 'sqeuclidean', 'manhattan', 'cosine', 'precomputed'}
    distances : {'auto', 'matrix', 'tiled'}, default 'auto'
        'matrix' keeps this rank's row block of the n x n matrix (8 n n/p bytes); 'tiled'
        recomputes distance tiles from the replicated points on every use (memory O(n d));
        'auto' keeps the matrix when the ranks of a host fit it in half its free memory.
    backend : {'native', 'numba', 'numpy', 'cupy'}, default 'native'
    comm : mpi4py.MPI.Comm, optional
    X_all : ndarray, optional
        All points, when every rank already has them (else they are allgathered).
    dtype : {'float64', 'float32'}, default 'float64'
        Of the stored matrix and the tiles: float32 halves their memory; distances are
        computed in float64 and rounded once, and every sum (loss, loss change) is float64,
        so the loss stays within about 1e-7 relative of the float64 run's.

    Returns
    -------
    Oracle
        ``MatrixOracle`` or ``TiledOracle``; its ``mode`` says which.

    Raises
    ------
    ValueError
        Unknown metric, distances mode or back end; 'tiled' with precomputed distances; not
        enough memory for the data or the matrix block.
    """
    comm = as_comm(comm)
    K = _kernels(backend)
    _choice("metric", metric, METRICS + ("precomputed",))
    _choice("distances", distances, DISTANCES)
    dt = DTYPES[_choice("dtype", dtype, tuple(DTYPES))]
    item = np.dtype(dt).itemsize
    n = loc.n
    if metric == "precomputed":
        if distances == "tiled":
            raise UsageError("tiled distances need data points, not a precomputed matrix")
        return MatrixOracle(K.xp.asarray(loc.X, dtype=dt), n, loc.row0, comm, K, "precomputed")
    if X_all is None:
        require_memory(8.0 * n * loc.d * 2, f"the data ({n} x {loc.d}) on every rank", comm)
        X_all = data.allgather_rows(loc.X, n, comm)
    nl_max = -(-n // comm.Get_size())
    mat_bytes = float(item) * nl_max * n
    mode = distances
    if mode == "auto":
        fits = mat_bytes * node_comm(comm).Get_size() <= MATRIX_FRACTION * available_bytes()
        mode = "matrix" if comm.allreduce(fits, op=MPI.LAND) else "tiled"
    if mode == "matrix":
        require_memory(mat_bytes, f"the distance matrix block ({nl_max} x {n}; use --distances "
                                  "tiled)", comm)
        return MatrixOracle.from_data(loc.X, X_all, loc.row0, comm, K, metric, dt)
    return TiledOracle(loc.X, X_all, loc.row0, comm, K, metric, dt)


def resolve_init(init: str, method: str, mode: str) -> str:
    """The initialisation 'auto' stands for: random for CLARANS (as in the original), else
    BUILD with a stored matrix and LAB with tiles; any other value is returned as is."""
    if init != "auto":
        return init
    return "random" if method == "clarans" else "build" if mode == "matrix" else "lab"


def cluster(oracle: Oracle, k: int, *, method: str = "fasterpam", init: str = "build",
            max_iter: int = 100, rng: np.random.Generator | None = None,
            medoids: np.ndarray | None = None, samples: int = 5,
            sample_size: int | None = None, restarts: int = 2,
            neighbors: float = 0.1, min_k: int = 2,
            keep_medoids: bool = True,
            batch_size: int | None = None) -> tuple[algorithms.Result, algorithms.Solver]:
    """Cluster the points behind ``oracle`` into ``k`` clusters (collective).

    Parameters
    ----------
    oracle : Oracle
        From :func:`distance_oracle`.
    k : int
        Number of medoids, 1 <= k <= n.
    method : {'pam', 'fastpam1', 'fastpam2', 'fasterpam', 'clara', 'clarans'}
    init : {'build', 'lab', 'random', 'first'}
        Initial medoids (ignored when ``medoids`` is given): BUILD (O(k n^2)), LAB (BUILD on
        subsamples of 10 + sqrt(n) points, O(k n)), uniformly random, the first k points.
    max_iter : int
        SWAP iterations at most (FasterPAM: sweeps).
    rng : numpy.random.Generator, optional
        Randomness of init 'random'/'lab', CLARA's samples and CLARANS' candidates.
    medoids : array of int, optional
        Initial medoids for a SWAP method (slot order kept).
    samples, sample_size : int
        CLARA: number of samples, points per sample (default 80 + 4k).
    restarts : int
        CLARANS: local searches.
    neighbors : float
        CLARANS: non-improving candidates in a row that end a local search, as a fraction of
        n - k.
    min_k : int
        DynMSC: the smallest k tried (k is the largest).
    keep_medoids : bool
        CLARA: every sample after the first holds the best medoids so far (ELKI's default).
    batch_size : int, optional
        OneBatchPAM: points the loss is estimated on (default 100 ln(k n)).

    Returns
    -------
    (algorithms.Result, algorithms.Solver)
        The result (medoids, loss, swaps, iterations, timings) and the solver, whose state
        (``near_i``: this rank's labels) the caller may inspect further.
    """
    comm = oracle.comm
    rng = np.random.default_rng(0) if rng is None else rng
    # every numeric parameter in its documented, finite range (hpc.core.checks)
    _choice("method", method, METHODS)
    max_iter = checks.check_int("max_iter", max_iter, 1, ITER_MAX)
    samples = checks.check_int("samples", samples, 1, SAMPLES_MAX)
    restarts = checks.check_int("restarts", restarts, 1, RESTARTS_MAX)
    neighbors = checks.check_real("neighbors", neighbors, 0, NEIGHBORS_MAX, lo_open=True)
    if sample_size is not None:
        sample_size = checks.check_int("sample_size", sample_size, max(2, k), SAMPLE_SIZE_MAX)
    if batch_size is not None:
        batch_size = checks.check_int("batch_size", batch_size, 2, BATCH_MAX)
    if method == "dynmsc":
        min_k = checks.check_int("min_k", min_k, 2, max(2, k))
    if medoids is None and init == "first":
        if method not in SWAP_METHODS + MSC_METHODS + ("alternating",):
            raise UsageError(f"init='first' is not supported by method={method!r}")
        medoids = np.arange(k, dtype=np.int64)
    if method in MSC_METHODS:
        return _cluster_msc(oracle, k, method, init, max_iter, rng, medoids, min_k)
    if method == "onebatch":
        if oracle.X_all is None:
            raise UsageError("method='onebatch' needs data points, not a precomputed matrix")
        if medoids is not None or init == "first":
            raise UsageError("method='onebatch' draws its initial medoids from the batch "
                             "(init 'build', 'lab' or 'random')")
        return onebatch.onebatch(oracle, k, init, rng, max_iter, batch_size)
    solver = algorithms.Solver(oracle, comm, oracle.K, k)
    if medoids is not None:
        res = algorithms.run_from(solver, method, medoids, max_iter)
    else:
        res = algorithms.run(solver, method, init, rng, max_iter, samples, sample_size,
                             restarts, neighbors, MPI.COMM_SELF, keep_medoids)
    return res, solver


def _cluster_msc(oracle: Oracle, k: int, method: str, init: str, max_iter: int,
                 rng: np.random.Generator, medoids, min_k: int):
    """A medoid silhouette method (hpc.kmedoids.msc): initial medoids, then its swaps."""
    import time

    t0 = time.perf_counter()
    solver = msc.MSCSolver(oracle, oracle.comm, oracle.K, k)
    if medoids is None:
        medoids = {"build": solver.init_build, "lab": lambda: solver.init_lab(rng),
                   "random": lambda: solver.init_random(rng)}[init]()
    t1 = time.perf_counter()
    res = msc.run_msc(solver, method, medoids, max_iter, min_k)
    res.build_s = t1 - t0
    return res, solver


# ------------------------------------------------------------------------------ functions
def _run_precomputed(method: str, diss, medoids, max_iter: int, init: str, random_state,
                     comm, backend: str, **kw) -> KMedoidsResult:
    return _fit_precomputed(method, diss, medoids, max_iter, init, random_state, comm, backend,
                            **kw)[0]


def _fit_precomputed(method: str, diss, medoids, max_iter: int, init: str, random_state,
                     comm, backend: str, **kw) -> tuple[KMedoidsResult, algorithms.Result]:
    comm = as_comm(comm)
    D = _dissimilarity("diss", diss)
    n = D.shape[0]
    k, meds = _initial_medoids(medoids, n)
    max_iter = _positive_int("max_iter", max_iter)
    if meds is None:
        _choice("init", init, INITS)
    K = _kernels(backend)
    lo, hi = block_range(n, comm.Get_size(), comm.Get_rank())
    oracle = MatrixOracle(K.xp.asarray(np.ascontiguousarray(D[lo:hi])), n, lo, comm, K,
                          "precomputed")
    res, solver = cluster(oracle, k, method=method, init=init, max_iter=max_iter,
                          rng=_rng(random_state), medoids=meds, **kw)
    return KMedoidsResult(float(res.loss), _gather_labels(solver, comm),
                          np.asarray(res.medoids, dtype=np.int64), int(res.iterations),
                          int(res.swaps)), res


def fasterpam(diss, medoids, max_iter: int = 100, init: str = "random", random_state=None, *,
              comm=None, backend: str = "native") -> KMedoidsResult:
    """FasterPAM k-medoids clustering (Schubert & Rousseeuw 2021): eager swaps in a circular
    sweep over the points.

    The first swap that lowers the loss is taken at once (each candidate evaluated for all k
    medoids in O(k) with FastPAM1's shared terms); a full sweep without a swap ends it. From
    the same initial medoids the result is the `kmedoids` package's ``fasterpam`` with
    ``n_cpu=1``, swap for swap. Candidates are evaluated in blocks over all ranks
    (speculatively: a block is one pass and one reduction; the sweep resumes after the swap).

    Parameters
    ----------
    diss : array_like, shape (n, n)
        Dissimilarities, identical on every rank: finite, non-negative, zero diagonal.
    medoids : int or array_like of int
        The number of medoids k (1 <= k <= n), or the initial medoid indices.
    max_iter : int, default 100
        Sweeps at most.
    init : {'random', 'build', 'lab', 'first'}, default 'random'
        Initialisation when ``medoids`` is a count.
    random_state : int, numpy Generator or RandomState, optional
        Seed of the random initialisation (the sweep itself is in index order).
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.
    backend : {'native', 'numba', 'numpy', 'cupy'}, default 'native'

    Returns
    -------
    KMedoidsResult
        loss, labels, medoids, n_iter, n_swap, on every rank.

    Raises
    ------
    ValueError
        Not a square finite dissimilarity matrix, k outside 1..n, bad initial medoids,
        unknown init or back end.
    TypeError
        Non-numeric ``diss``, ``medoids`` neither an int nor an integer array.

    Notes
    -----
    Cost: O(n k) per candidate batch for the loss changes plus O(n) per swap: about
    O(n^2) per sweep (each point a candidate, its loss change summed over n points), over
    p ranks; memory 8 n^2/p bytes per rank for the matrix block.
    """
    return _run_precomputed("fasterpam", diss, medoids, max_iter, init, random_state, comm,
                            backend)


def fastpam1(diss, medoids, max_iter: int = 100, init: str = "random", random_state=None, *,
             comm=None, backend: str = "native") -> KMedoidsResult:
    """FastPAM1 k-medoids clustering (Schubert & Rousseeuw 2019): PAM's swaps, found O(k)
    times faster.

    Every iteration evaluates all (medoid, non-medoid) swaps, in O(n^2) instead of PAM's
    O(k n^2), through the loss change shared by all medoids, and performs the best one
    (ties: lowest candidate, then lowest medoid slot). Same swaps and result as :func:`pam`
    and as the `kmedoids` package from the same initial medoids.

    Parameters
    ----------
    diss, medoids, max_iter, init, random_state, comm, backend
        As in :func:`fasterpam` (``max_iter``: swaps at most).

    Returns
    -------
    KMedoidsResult

    Raises
    ------
    ValueError, TypeError
        As in :func:`fasterpam`.

    Notes
    -----
    Cost: O(n^2) per iteration (one swap per iteration), over p ranks.
    """
    return _run_precomputed("fastpam1", diss, medoids, max_iter, init, random_state, comm,
                            backend)


def fastpam2(diss, medoids, max_iter: int = 100, init: str = "build", random_state=None, *,
             comm=None, backend: str = "native") -> KMedoidsResult:
    """FastPAM2 (Schubert & Rousseeuw 2019): per iteration, the best swap of every medoid
    slot, performed in order of gain while each still improves the loss (fewer iterations than
    FastPAM1).

    Parameters and results as in :func:`fasterpam`. Cost: O(n^2) per iteration.
    """
    return _run_precomputed("fastpam2", diss, medoids, max_iter, init, random_state, comm,
                            backend)


def pam(diss, medoids, max_iter: int = 100, init: str = "build", random_state=None, *,
        comm=None, backend: str = "native") -> KMedoidsResult:
    """PAM k-medoids clustering (Kaufman & Rousseeuw 1987): BUILD, then SWAP, the original
    algorithm.

    Each SWAP iteration evaluates every (medoid, non-medoid) pair with one pass over the points
    per medoid and performs the best swap, until none improves the loss.

    Parameters
    ----------
    diss, medoids, max_iter, random_state, comm, backend
        As in :func:`fasterpam`.
    init : {'build', 'lab', 'random', 'first'}, default 'build'

    Returns
    -------
    KMedoidsResult

    Raises
    ------
    ValueError, TypeError
        As in :func:`fasterpam`.

    Notes
    -----
    Cost: BUILD O(k n^2); SWAP O(k n^2) per iteration (use :func:`fastpam1` for the same
    result in O(n^2) per iteration).
    """
    return _run_precomputed("pam", diss, medoids, max_iter, init, random_state, comm, backend)


def clara(diss, k: int, *, samples: int = 5, sample_size: int | None = None,
          max_iter: int = 100, init: str = "build", random_state=None, comm=None,
          backend: str = "native", keep_medoids: bool = True) -> KMedoidsResult:
    """FastCLARA (Schubert & Rousseeuw 2021): FasterPAM on ``samples`` random samples of
    ``sample_size`` points (default 80 + 4k), every sample's medoids evaluated on all points,
    the best kept.

    With ``keep_medoids`` (ELKI's default) every sample after the first holds the best
    medoids so far and FasterPAM starts from them (sequential samples, each evaluated on all
    points in parallel); without, independent samples spread over the ranks. The result does
    not depend on the rank count. Parameters otherwise as in :func:`fasterpam` (``init``
    initialises the first sample, or each without ``keep_medoids``).
    Cost: O(samples (80 + 4k)^2) per sweep plus O(samples k n) for the evaluations.
    """
    k = _positive_int("k", k)
    if sample_size is not None and _positive_int("sample_size", sample_size) < k:
        raise UsageError(f"sample_size={sample_size} is smaller than k={k} (a sample must "
                         "hold the k medoids)")
    return _run_precomputed("clara", diss, k, max_iter, init,
                            random_state, comm, backend, samples=_positive_int("samples", samples),
                            sample_size=sample_size, keep_medoids=bool(keep_medoids))


def alternating(diss, medoids, max_iter: int = 100, init: str = "random", random_state=None, *,
                comm=None, backend: str = "native") -> KMedoidsResult:
    """Alternating k-medoids (the k-means-style Voronoi iteration; "Alternate" in facility
    location, Park & Jun 2009): every medoid becomes the member of its cluster with the least
    total distance to it, then every point is reassigned, until no medoid changes.

    The cheap baseline: O(n^2) per iteration like a FasterPAM sweep, but it stops in worse
    local optima. From the same initial medoids the result is the `kmedoids` package's
    ``alternating`` (medoids, labels, loss, n_iter; ``n_swap`` counts medoid changes).

    Parameters
    ----------
    diss, medoids, max_iter, init, random_state, comm, backend
        As in :func:`fasterpam` (``max_iter``: iterations).

    Returns
    -------
    KMedoidsResult
    """
    return _run_precomputed("alternating", diss, medoids, max_iter, init, random_state, comm,
                            backend)


def clarans(diss, k: int, *, restarts: int = 2, neighbors: float = 0.1, init: str = "random",
            random_state=None, comm=None, backend: str = "native") -> KMedoidsResult:
    """FastCLARANS (Schubert & Rousseeuw 2021; CLARANS: Ng & Han 2002): ``restarts``
    randomised local searches; each tries random non-medoids (each against all k medoids at
    once, O(k) faster than CLARANS) and stops after ``neighbors * (n - k)`` non-improving
    candidates in a row; the best search is kept.

    Parameters otherwise as in :func:`fasterpam`. Cost: O(n) per candidate over p ranks.
    """
    neighbors = checks.check_real("neighbors", neighbors, 0, NEIGHBORS_MAX, lo_open=True)
    return _run_precomputed("clarans", diss, _positive_int("k", k), 100, init, random_state,
                            comm, backend, restarts=_positive_int("restarts", restarts),
                            neighbors=float(neighbors))


def pam_build(diss, k: int, *, comm=None, backend: str = "native") -> KMedoidsResult:
    """PAM's BUILD (Kaufman & Rousseeuw 1987) only: k medoids chosen greedily, each lowering
    the loss most.

    Parameters
    ----------
    diss : array_like, shape (n, n)
    k : int
    comm, backend
        As in :func:`fasterpam`.

    Returns
    -------
    KMedoidsResult
        n_iter = n_swap = 0.

    Notes
    -----
    Cost: O(k n^2), over p ranks.
    """
    comm = as_comm(comm)
    D = _dissimilarity("diss", diss)
    n = D.shape[0]
    k, _ = _initial_medoids(_positive_int("k", k), n)
    K = _kernels(backend)
    lo, hi = block_range(n, comm.Get_size(), comm.Get_rank())
    oracle = MatrixOracle(K.xp.asarray(np.ascontiguousarray(D[lo:hi])), n, lo, comm, K,
                          "precomputed")
    solver = algorithms.Solver(oracle, comm, K, k)
    meds = solver.init_build()
    loss = solver.assign(meds)
    return KMedoidsResult(float(loss), _gather_labels(solver, comm), meds.astype(np.int64), 0, 0)


_MSC_DOC = """

    Parameters
    ----------
    diss, medoids, max_iter, init, random_state, comm, backend
        As in :func:`fasterpam`.

    Returns
    -------
    KMedoidsResult
        ``loss`` is the average medoid silhouette of the result (larger is better; with one
        medoid, the total distance, as in the package).

    Raises
    ------
    ValueError, TypeError
        As in :func:`fasterpam`.
    """


def fastmsc(diss, medoids, max_iter: int = 100, init: str = "random", random_state=None, *,
            comm=None, backend: str = "native") -> KMedoidsResult:
    """FastMSC (Lenssen & Schubert 2022, 2024): the best swap for the average medoid
    silhouette per iteration, found O(k^2) faster than PAMMEDSIL with the same swaps.

    From the same initial medoids the result is the `kmedoids` package's ``fastmsc``:
    medoids, labels, loss, n_iter, n_swap. Cost: O(n^2) per iteration (one swap), over p
    ranks; one reduction of (k+1) sums per tile of candidates.
    """
    return _run_precomputed("fastmsc", diss, medoids, max_iter, init, random_state, comm,
                            backend)


def fastermsc(diss, medoids, max_iter: int = 100, init: str = "random", random_state=None, *,
              comm=None, backend: str = "native") -> KMedoidsResult:
    """FasterMSC (Lenssen & Schubert 2024): eager swaps for the average medoid silhouette,
    the first improving candidate in index order taken at once, until a pass makes none.

    From the same initial medoids the result is the `kmedoids` package's ``fastermsc``,
    swap for swap; candidates are evaluated in speculative blocks as FasterPAM's. Cost: about
    O(n^2) per pass, over p ranks.
    """
    return _run_precomputed("fastermsc", diss, medoids, max_iter, init, random_state, comm,
                            backend)


def pammedsil(diss, medoids, max_iter: int = 100, init: str = "build", random_state=None, *,
              comm=None, backend: str = "native") -> KMedoidsResult:
    """PAMMEDSIL (Van der Laan, Pollard & Bryan 2003): PAM's SWAP on the average medoid
    silhouette, every (medoid, candidate) pair in its own pass over the points.

    The same swaps as :func:`fastmsc` (the package's ``pammedsil``), k times slower: the
    baseline of FastMSC's speedup. Cost: O(k n^2) per iteration, over p ranks.
    """
    return _run_precomputed("pammedsil", diss, medoids, max_iter, init, random_state, comm,
                            backend)


for _f in (fastmsc, fastermsc, pammedsil):
    _f.__doc__ += _MSC_DOC


def dynmsc(diss, medoids, minimum_k: int = 2, max_iter: int = 100, init: str = "random",
           random_state=None, *, comm=None, backend: str = "native") -> DynkResult:
    """DynMSC (Lenssen & Schubert 2024): FasterMSC from k_max medoids down to ``minimum_k``,
    dropping after each k the medoid whose removal costs least, and keeping the k of the
    largest average medoid silhouette.

    From the same initial medoids the result is the `kmedoids` package's ``dynmsc``
    (medoids, labels, loss, n_iter, n_swap, losses, rangek, bestk).

    Parameters
    ----------
    diss, init, random_state, comm, backend
        As in :func:`fasterpam`.
    medoids : int or array_like of int
        k_max, or k_max initial medoids.
    minimum_k : int, default 2
        The smallest k tried (2 <= minimum_k <= k_max).
    max_iter : int, default 100
        FasterMSC passes at most, per k.

    Returns
    -------
    DynkResult

    Raises
    ------
    ValueError, TypeError
        As in :func:`fasterpam`; ``minimum_k`` outside 2..k_max.

    Notes
    -----
    Cost: one FasterMSC run per k (each about O(n^2) per pass), over p ranks.
    """
    comm = as_comm(comm)
    D = _dissimilarity("diss", diss)
    k, meds = _initial_medoids(medoids, D.shape[0])
    mk = _positive_int("minimum_k", minimum_k)
    if not 2 <= mk <= max(k, 2) or mk > k:
        raise UsageError(f"minimum_k={mk}: expected 2 <= minimum_k <= {k} (the number of "
                         "medoids)")
    base, res = _fit_precomputed("dynmsc", D, medoids if meds is None else meds, max_iter,
                                 init, random_state, comm, backend, min_k=mk)
    return DynkResult(base.loss, base.labels, base.medoids, base.n_iter, base.n_swap,
                      np.asarray(res.extra["silhouettes"], dtype=np.float64),
                      np.arange(mk, k + 1, dtype=np.int64), int(base.medoids.size))


def silhouette(diss, labels, samples: bool = False, *, comm=None):
    """The silhouette (Rousseeuw 1987) of a clustering of the n points behind ``diss``.

    Per point (b - a) / max(a, b): a its mean dissimilarity to the other members of its
    cluster, b the least mean dissimilarity to the members of another cluster; 0 for a point
    alone in its cluster. The `kmedoids` package's ``silhouette``.

    Parameters
    ----------
    diss : array_like, shape (n, n)
        Dissimilarities, identical on every rank.
    labels : array_like of int, shape (n,)
        Cluster of every point (any integer values).
    samples : bool, default False
        Also return every point's value.
    comm : mpi4py.MPI.Comm, optional

    Returns
    -------
    (float, ndarray or None)
        The average silhouette, and the n per-point values when ``samples``.

    Notes
    -----
    Cost: O(n^2) over p ranks (one pass over the matrix).
    """
    comm = as_comm(comm)
    D = _dissimilarity("diss", diss)
    lab = _labels(labels, D.shape[0])
    K = _kernels("numpy")
    lo, hi = block_range(D.shape[0], comm.Get_size(), comm.Get_rank())
    oracle = MatrixOracle(np.ascontiguousarray(D[lo:hi]), D.shape[0], lo, comm, K, "precomputed")
    avg, s = sil.silhouette(oracle, lab, comm)
    return avg, (_gather_values(s, D.shape[0], comm) if samples else None)


def medoid_silhouette(diss, meds, samples: bool = False, *, comm=None):
    """The medoid silhouette (Van der Laan et al. 2003) of the medoids ``meds``.

    Per point 1 - a/b, a and b its dissimilarities to the nearest and second nearest medoid
    (a/b taken as 0 when a or b is 0); the `kmedoids` package's ``medoid_silhouette``.

    Parameters
    ----------
    diss : array_like, shape (n, n)
    meds : array_like of int
        Distinct medoid indices.
    samples : bool, default False
        Also return every point's value.
    comm : mpi4py.MPI.Comm, optional

    Returns
    -------
    (float, ndarray or None)

    Notes
    -----
    Cost: O(n k) over p ranks.
    """
    comm = as_comm(comm)
    D = _dissimilarity("diss", diss)
    n = D.shape[0]
    _, m = _initial_medoids(np.asarray(meds) if not isinstance(meds, np.ndarray) else meds, n)
    lo, hi = block_range(n, comm.Get_size(), comm.Get_rank())
    s = sil.medoid_silhouette_points(D[lo:hi][:, m])
    avg = comm.allreduce(float(s.sum()), op=MPI.SUM) / n
    return avg, (_gather_values(s, n, comm) if samples else None)


def _labels(labels, n: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu" or lab.shape != (n,):
        raise UsageError(f"labels must be {n} integers (one per point), got {lab.dtype} "
                         f"shape {lab.shape}")
    return lab.astype(np.int64)


def _gather_values(mine: np.ndarray, n: int, comm) -> np.ndarray:
    """This rank's per-point values, all n on every rank."""
    mine = np.ascontiguousarray(mine, dtype=np.float64)
    if comm.Get_size() == 1:
        return mine.copy()
    off = block_offsets(n, comm.Get_size())
    out = np.empty(n)
    comm.Allgatherv(mine, [out, np.diff(off), off[:-1], MPI.DOUBLE])
    return out


# ------------------------------------------------------------------------------ estimator
class KMedoids:
    """k-medoids clustering with scikit-learn's estimator protocol, distributed over MPI.

    ``fit(X)`` clusters the rows of X (points, or a dissimilarity matrix with
    ``metric='precomputed'``). X is a global NumPy array given identically on every rank;
    each rank takes its block of rows and keeps its row block of the distance matrix (or
    recomputes tiles when that does not fit), every loss change is summed over the ranks, and
    the fitted attributes are the same on every rank.

    Parameters
    ----------
    n_clusters : int, default 8
        Number of medoids k.
    method : str, default 'fasterpam'
        FasterPAM (eager swaps; Schubert & Rousseeuw 2021), 'fastpam1', 'fastpam2' (Schubert &
        Rousseeuw 2019), 'pam' (Kaufman & Rousseeuw 1987), 'clara' (FasterPAM on random
        samples, the best kept), 'clarans' (randomised search; Schubert & Rousseeuw 2021, Ng &
        Han 2002), 'alternating' (Voronoi iteration), or the medoid silhouette methods
        'fastmsc', 'fastermsc', 'dynmsc', 'pammedsil' (Lenssen & Schubert 2022, 2024), and
        'onebatch' (OneBatchPAM: FasterPAM on a batch estimate of the loss, for large n).
    metric : {'euclidean', 'sqeuclidean', 'manhattan', 'cosine', 'precomputed'}
        Distance between points; 'precomputed': X is an (n, n) dissimilarity matrix.
    init : {'build', 'lab', 'random', 'first'}, default 'build'
        Initial medoids: PAM's BUILD (O(k n^2)), LAB (linear approximate BUILD), random, or
        the first k points.
    max_iter : int, default 100
        SWAP iterations at most (FasterPAM: sweeps).
    random_state : int, numpy Generator or RandomState, optional
        Seed of init 'random'/'lab' and of CLARA/CLARANS.
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.
    backend : {'native', 'numba', 'numpy', 'cupy'}, default 'native'
        Kernels for distances and loss changes.
    distances : {'auto', 'matrix', 'tiled'}, default 'auto'
        See :func:`distance_oracle`.
    method_params : dict, optional
        CLARA: ``samples`` (5), ``sample_size`` (80 + 4k), ``keep_medoids`` (True);
        CLARANS: ``restarts`` (2), ``neighbors`` (0.1); DynMSC: ``min_k`` (2); OneBatchPAM:
        ``batch_size`` (100 ln(k n)).
    dtype : {'float64', 'float32'}, default 'float64'
        Of the stored distances and tiles (float32: half the memory, float64 sums).

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n,)
        Cluster of every point (an index into ``medoid_indices_``).
    medoid_indices_ : ndarray of int64, shape (k,)
        Row indices of the medoids in X.
    cluster_centers_ : ndarray, shape (k, d), or None
        The medoid points (None with ``metric='precomputed'``).
    inertia_ : float
        The loss: sum over points of the distance to their medoid.
    n_iter_ : int
        Iterations performed.
    n_swap_ : int
        Swaps performed.

    Notes
    -----
    Cost per iteration: O(n^2) distance evaluations (PAM: O(k n^2)) over p ranks, one
    reduction of O(k) per block of candidates; memory 8 n^2/p bytes per rank for the matrix
    block, or O(n d) when tiled.
    """

    _estimator_type = "clusterer"

    def __init__(self, n_clusters: int = 8, *, method: str = "fasterpam",
                 metric: str = "euclidean", init: str = "build", max_iter: int = 100,
                 random_state=None, comm=None, backend: str = "native",
                 distances: str = "auto", method_params: dict | None = None,
                 dtype: str = "float64"):
        self.n_clusters = n_clusters
        self.method = method
        self.metric = metric
        self.init = init
        self.max_iter = max_iter
        self.random_state = random_state
        self.comm = comm
        self.backend = backend
        self.distances = distances
        self.method_params = method_params
        self.dtype = dtype

    # -- scikit-learn's parameter protocol ------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters, as scikit-learn's ``BaseEstimator.get_params``."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params) -> "KMedoids":
        """Set constructor parameters; an unknown name raises ValueError (as scikit-learn)."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {self!r}. Valid "
                                 f"parameters are: {valid!r}.")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__)
                    .parameters.values() if p.name != "self"}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (v is defaults.get(k) or (isinstance(v, (int, float, str))
                                                    and v == defaults.get(k)))]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- fit / predict --------------------------------------------------------------------
    def _check_params(self):
        comm = as_comm(self.comm)
        k = _positive_int("n_clusters", self.n_clusters)
        _choice("method", self.method, METHODS)
        _choice("metric", self.metric, METRICS + ("precomputed",))
        _choice("init", self.init, INITS)
        _choice("distances", self.distances, DISTANCES)
        max_iter = _positive_int("max_iter", self.max_iter)
        mp = dict(self.method_params or {})
        unknown = set(mp) - {"samples", "sample_size", "restarts", "neighbors", "min_k",
                             "keep_medoids", "batch_size"}
        if unknown:
            raise UsageError(f"method_params: unknown {', '.join(sorted(unknown))} (expected "
                             "samples, sample_size, restarts, neighbors, min_k, keep_medoids, "
                             "batch_size)")
        _choice("dtype", self.dtype, tuple(DTYPES))
        return comm, k, max_iter, mp

    def fit(self, X, y=None) -> "KMedoids":
        """Cluster X (collective over ``comm``).

        Parameters
        ----------
        X : array_like, shape (n, d), or (n, n) with ``metric='precomputed'``
            The same array on every rank.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, n_clusters > n, NaN/infinite values, a non-square or invalid
            dissimilarity matrix.
        TypeError
            X not numeric.
        """
        comm, k, max_iter, mp = self._check_params()
        precomputed = self.metric == "precomputed"
        X = _dissimilarity("X", X) if precomputed else _matrix("X", X)
        n = X.shape[0]
        if k > n:
            raise UsageError(f"n_clusters={k} is larger than the number of points ({n})")
        lo, hi = block_range(n, comm.Get_size(), comm.Get_rank())
        loc = data.Local(np.ascontiguousarray(X[lo:hi]), n, X.shape[1], lo, "array")
        mode = self.distances
        if self.method == "onebatch" and mode == "auto" and not precomputed:
            mode = "tiled"  # only the final assignment reads all-pairs distances: no matrix
        oracle = distance_oracle(loc, self.metric, distances=mode,
                                 backend=self.backend, comm=comm,
                                 X_all=None if precomputed else X, dtype=self.dtype)
        res, solver = cluster(oracle, k, method=self.method, init=self.init,
                              max_iter=max_iter, rng=_rng(self.random_state), **mp)
        self.labels_ = _gather_labels(solver, comm)
        self.medoid_indices_ = np.asarray(res.medoids, dtype=np.int64)
        self.cluster_centers_ = None if precomputed else X[self.medoid_indices_].copy()
        self.inertia_ = float(res.loss)
        self.n_iter_ = int(res.iterations)
        self.n_swap_ = int(res.swaps)
        self.n_features_in_ = X.shape[1]
        return self

    def _check_fitted(self):
        if not hasattr(self, "medoid_indices_"):
            raise UsageError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def transform(self, X) -> np.ndarray:
        """Distances from every row of X to every medoid, shape (n_query, k).

        With ``metric='precomputed'``, X holds dissimilarities to the fitted points, shape
        (n_query, n), and the medoids' columns are returned.
        """
        self._check_fitted()
        if self.metric == "precomputed":
            X = _matrix("X", X)
            if X.shape[1] != self.labels_.size:
                raise UsageError(f"X must have one column per fitted point ({self.labels_.size}), "
                                 f"got shape {X.shape}")
            return X[:, self.medoid_indices_]
        X = _matrix("X", X)
        if X.shape[1] != self.cluster_centers_.shape[1]:
            raise UsageError(f"X has {X.shape[1]} features, the fitted data had "
                             f"{self.cluster_centers_.shape[1]}")
        K = _kernels(self.backend)
        return np.asarray(K.to_host(K.dist(X, self.cluster_centers_, self.metric)))

    def predict(self, X) -> np.ndarray:
        """The nearest medoid of every row of X: labels in 0..k-1 (as ``labels_``).

        X as in :meth:`transform`. Cost O(n_query k d), computed on every rank.
        """
        return np.argmin(self.transform(X), axis=1).astype(np.int64)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X)`` and return ``labels_``."""
        return self.fit(X).labels_
