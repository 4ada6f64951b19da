"""Type stubs of ``hpc._core``, the C++17/OpenMP extension built from ``native/src/*.cpp``.

Each submodule (``hpc._core.<name>``, registered by ``native/src/<name>.cpp``) is written as a
``ModuleType`` subclass ``_<name>`` whose static methods are its functions and whose nested
classes are its classes; ``<name>: _<name>`` is the module attribute. Parameters the binding
leaves unnamed are positional-only here. ``stream_stdpar`` exists only in a build with TBB
(``has_stdpar``). tests/test_stubs.py checks this file against the built module: every name,
and every function's parameters. Drafted with pybind11-stubgen.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Sequence, overload

import numpy as np
import numpy.typing as npt

def omp_max_threads() -> int: ...
def omp_set_threads(n: int, /) -> None: ...
has_stdpar: bool
def build_info() -> dict[str, Any]: ...


class _amg_colour(ModuleType):
    """Multicolour Gauss-Seidel for hpc.amg: hashed-priority colouring, colour sweeps"""
    class MultiColourGS_i32:
        """Gauss-Seidel colour by colour on a rank's rows (columns own then ghost)"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray, colour: np.ndarray, boundary: np.ndarray, n_ext: int, ncolours: int) -> None: ...
        def colours(self) -> int: ...
        def counts(self) -> np.ndarray:
            """rows per colour: (colours, 2) boundary, interior"""
        def sweep(self, b: np.ndarray, x: np.ndarray, colour: int, part: int) -> None:
            """Gauss-Seidel on the rows of one colour: part 0 boundary, 1 interior, 2 both"""
        def symmetric(self, b: np.ndarray, x: np.ndarray, sweeps: int) -> None:
            """symmetric sweeps, colours forward then backward, ghost values held fixed"""
    class MultiColourGS_i64:
        """Gauss-Seidel colour by colour on a rank's rows (columns own then ghost)"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray, colour: np.ndarray, boundary: np.ndarray, n_ext: int, ncolours: int) -> None: ...
        def colours(self) -> int: ...
        def counts(self) -> np.ndarray:
            """rows per colour: (colours, 2) boundary, interior"""
        def sweep(self, b: np.ndarray, x: np.ndarray, colour: int, part: int) -> None:
            """Gauss-Seidel on the rows of one colour: part 0 boundary, 1 interior, 2 both"""
        def symmetric(self, b: np.ndarray, x: np.ndarray, sweeps: int) -> None:
            """symmetric sweeps, colours forward then backward, ghost values held fixed"""
    @staticmethod
    def colour_i32(indptr: np.ndarray, indices: np.ndarray, key: np.ndarray, gid: np.ndarray, colour: np.ndarray) -> tuple[Any, ...]:
        """colour(indptr, indices, key, gid, colour) -> (coloured now, left uncoloured): greedy colouring in decreasing (key, gid) order of every own row whose higher-priority neighbours are coloured (all rows without ghost columns; call again after exchanging the ghosts' colours). colour (int32, own then ghost, -1: none) is updated in place."""
    @staticmethod
    def colour_i64(indptr: np.ndarray, indices: np.ndarray, key: np.ndarray, gid: np.ndarray, colour: np.ndarray) -> tuple[Any, ...]:
        """colour(indptr, indices, key, gid, colour) -> (coloured now, left uncoloured): greedy colouring in decreasing (key, gid) order of every own row whose higher-priority neighbours are coloured (all rows without ghost columns; call again after exchanging the ghosts' colours). colour (int32, own then ghost, -1: none) is updated in place."""
amg_colour: _amg_colour


class _buildinfo(ModuleType):
    """how the extensions were built (also hpc._core.build_info())"""
    @staticmethod
    def build_info() -> dict[str, Any]: ...
buildinfo: _buildinfo


class _hpcg(ModuleType):
    """HPCG kernels: problem generation, ELLPACK 27-point operator, SYMGS, MG transfers"""
    class Ell:
        """One rank's rows of HPCG's matrix (split ELLPACK, int16 column offsets)"""
        def __init__(self, cols: np.ndarray, vals: np.ndarray, nnz: np.ndarray, ncol: int) -> None: ...
        def build_levels(self) -> int:
            """level schedule of the forward sweep; returns levels"""
        def diagonal(self) -> npt.NDArray[np.float64]: ...
        def nnz(self) -> int: ...
        def residual_restrict(self, r: np.ndarray, x: np.ndarray, f2c: np.ndarray, rc: np.ndarray) -> None:
            """rc = (r - A x)[f2c]"""
        def row(self, i: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]:
            """(columns, values) of local row i as stored"""
        def rows_touching_ghosts(self, touching: bool) -> npt.NDArray[np.int32]:
            """local rows with (True) or without (False) an entry in a ghost column"""
        def set_diagonal(self, d: np.ndarray) -> None: ...
        def side_entries(self) -> int:
            """entries stored in the side table (column offsets beyond int16)"""
        def spmv(self, x: np.ndarray, y: np.ndarray) -> None:
            """y = A x"""
        def spmv_dot(self, x: np.ndarray, y: np.ndarray) -> float:
            """y = A x; return x[:nrow].y"""
        def spmv_rows(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> None:
            """y[rows] = (A x)[rows]"""
        def symgs(self, r: np.ndarray, x: np.ndarray, zero_init: bool) -> None:
            """optimised SYMGS (level-scheduled with threads; zero_init skips zero products)"""
        def symgs_ref(self, r: np.ndarray, x: np.ndarray) -> None:
            """reference SYMGS: sequential forward and backward sweeps"""
        min_rows_per_level: int
        @property
        def ncol(self) -> int: ...
        @property
        def nrow(self) -> int: ...
    class VCycle:
        """HPCG's V-cycle with the optimised kernels in one call"""
        def __init__(self, mats: list, f2cs: list, xs: list, rcs: list) -> None: ...
        def run(self, r: np.ndarray, x: np.ndarray, halo: object, post_smooth: bool = True) -> None:
            """x = M^-1 r; halo(level, x) fills the ghosts (None on one rank)"""
    @staticmethod
    def cg_update(x: np.ndarray, r: np.ndarray, p: np.ndarray, Ap: np.ndarray, alpha: float) -> float: ...
    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray) -> float: ...
    @staticmethod
    def f2c_map(nxf: int, nyf: int, nzf: int) -> npt.NDArray[np.int32]: ...
    @staticmethod
    def generate(nx: int, ny: int, nz: int, npx: int, npy: int, npz: int, ipx: int, ipy: int, ipz: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        """HPCG's rows on one box: (rank-major cols int64, vals, nnz int32, b)"""
    @staticmethod
    def prolong(xf: np.ndarray, xc: np.ndarray, f2c: np.ndarray) -> None: ...
    @staticmethod
    def restrict_ref(rf: np.ndarray, Axf: np.ndarray, f2c: np.ndarray, rc: np.ndarray) -> None: ...
    @staticmethod
    def waxpby(alpha: float, x: np.ndarray, beta: float, y: np.ndarray, w: np.ndarray) -> None: ...
hpcg: _hpcg


class _kmedoids(ModuleType):
    """k-medoids kernels (OpenMP): distance tiles, BUILD gains, PAM/FastPAM ΔTD"""
    @staticmethod
    def build_gain(D: np.ndarray, near_d: np.ndarray, /) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def colsum(D: np.ndarray, /) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def dist(A: np.ndarray, B: np.ndarray, metric: str, dtype: str = 'float64') -> np.ndarray: ...
    @staticmethod
    def fastpam_delta(D: np.ndarray, near_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, k: int, /) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def pam_delta(D: np.ndarray, near_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, k: int, /) -> npt.NDArray[np.float64]: ...
kmedoids: _kmedoids


class _kmedoids_msc(ModuleType):
    """medoid silhouette kernels (OpenMP): FastMSC/FasterMSC gains, the k = 2 loss"""
    @staticmethod
    def msc2_loss(D: np.ndarray, d0: np.ndarray, d1: np.ndarray) -> npt.NDArray[np.float64]: ...
    @staticmethod
    def msc_delta(D: np.ndarray, near_i: np.ndarray, seco_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, third_d: np.ndarray, k: int) -> npt.NDArray[np.float64]: ...
kmedoids_msc: _kmedoids_msc


class _kmedoids_swap(ModuleType):
    """FasterPAM/FasterMSC eager SWAP loops on one rank's full matrix (in place)"""
    @staticmethod
    def fastermsc_sweep(D: np.ndarray, DM: np.ndarray, med: np.ndarray, is_med: np.ndarray, rl: np.ndarray, near_i: np.ndarray, seco_i: np.ndarray, third_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, third_d: np.ndarray, loss: float, j: int, lastswap: int, budget: int, slot2: bool, par_rows: int = 16384) -> tuple[int, int, int, float]: ...
    @staticmethod
    def fasterpam_sweep(D: np.ndarray, DM: np.ndarray, med: np.ndarray, is_med: np.ndarray, rl: np.ndarray, near_i: np.ndarray, seco_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, loss: float, j: int, lastswap: int, budget: int, par_rows: int = 16384) -> tuple[int, int, int, float]: ...
    @staticmethod
    def gather(D: np.ndarray, j0: int, j1: int) -> np.ndarray: ...
    @staticmethod
    def fasterpam_partials(X: np.ndarray, near_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, k: int) -> np.ndarray: ...
    @staticmethod
    def fasterpam_correct(X: np.ndarray, S: np.ndarray, old_i: np.ndarray, old_nd: np.ndarray, old_sd: np.ndarray, near_i: np.ndarray, near_d: np.ndarray, seco_d: np.ndarray, part: np.ndarray) -> None: ...
kmedoids_swap: _kmedoids_swap


class _mmio(ModuleType):
    """Strict one-pass parser of Matrix Market coordinate entry lines."""
    @staticmethod
    def csr_from_packed(packed: np.ndarray, lo: int, nrows: int, ncols: int) -> tuple[Any, ...]:
        """(indptr, indices, data): canonical CSR (columns sorted, duplicates summed in order, explicit zeros kept) of packed rows (i, j, bits of v) with lo <= i < lo + nrows; int32 indices where they fit. ValueError on an index out of range."""
    @staticmethod
    def parse_coo(text: Any, k: int, field: str, rows: int, cols: int, skew: bool, threads: int = 1) -> tuple[Any, ...] | None:
        """(i, j, v): 0-based int64 indices and float64 values of the entry lines in `text` (a bytes-like object), or None when any line is not exactly k numerals of the field with indices in 1..rows, 1..cols (no diagonal when skew) and finite values."""
    @staticmethod
    def parse_route(text: Any, k: int, field: str, rows: int, cols: int, symmetry: str, row_offsets: np.ndarray, threads: int = 1, out: Any = None) -> tuple[Any, ...] | None:
        """(packed, counts, lines, order): parse_coo's entries, plus the mirror of every off-diagonal entry of symmetric (negated: skew-symmetric) storage, as rows (i, j, bits of v) of an (n, 3) int64 array grouped by the rank owning row i under `row_offsets` (counts: how many each), the number of entry lines, and what their order proves: (flags, first/last row-major key, first/last column-major key), flags 1 row-major strictly increasing, 2 column-major strictly increasing, 4 all i >= j, 8 all i <= j, 16 not empty; None where parse_coo gives None. With `out`, an (m, 3) int64 array with m >= the rows needed, packed is the view out[:n] (a buffer reused from call to call)."""
mmio: _mmio


class _pack(ModuleType):
    """Pack/unpack TEMPI canonical strided blocks (start, counts[], strides[] in bytes)"""
    class FastCall:
        """hpc.halo.datatype.FastType's one native call: plans by element count; pack/unpack hand what they do not serve to owner._pack_py/_unpack_py (owner: weakly held)"""
        def __init__(self, extent: int, threads: int, owner: object) -> None: ...
        def __len__(self) -> int: ...
        def add(self, count: int, plan: object) -> None:
            """serve `count` elements with this Plan (kept alive)"""
        def remove(self, count: int) -> None: ...
        @property
        def pack(self) -> Any:
            """pack(inbuf, outbuf, position=0, comm=None, count=None) -> int"""
        @property
        def unpack(self) -> Any:
            """unpack(inbuf, position, outbuf, comm=None, count=None) -> int"""
    class Plan:
        """Blocks validated once against a strided buffer size; packed one by one or all into one buffer at offsets(). sweep=True: pack_all/unpack_all run every block's pieces in one pass in source-address order (same bytes); False: block after block"""
        def __init__(self, blocks: Sequence[tuple[int, Sequence[int], Sequence[int]]], strided_bytes: int, sweep: bool = True) -> None: ...
        def __len__(self) -> int: ...
        def block_bytes(self, i: int, /) -> int: ...
        def pack_all(self, src: np.ndarray, dst: np.ndarray, threads: int = 0) -> int: ...
        def pack_at(self, src: np.ndarray, dst: np.ndarray, position: int, threads: int = 0) -> int:
            """pack_all into dst at byte position; the new position"""
        def pack_one(self, i: int, src: np.ndarray, dst: np.ndarray, threads: int = 0) -> int: ...
        def unpack_all(self, src: np.ndarray, dst: np.ndarray, threads: int = 0) -> int: ...
        def unpack_at(self, src: np.ndarray, position: int, dst: np.ndarray, threads: int = 0) -> int:
            """unpack_all from src at byte position; the new position"""
        def unpack_one(self, i: int, src: np.ndarray, dst: np.ndarray, threads: int = 0) -> int: ...
        @property
        def offsets(self) -> list[int]: ...
        @property
        def pieces(self) -> int: ...
        @property
        def run_copy(self) -> int:
            """run list copy: L > 0 every run L bytes (compile-time gather), else -W: chunks of up to W bytes where runs vary; 0 without a run list"""
        @property
        def run_offset_bits(self) -> int:
            """bits of the run list's offsets as the gathers read them (32 where every offset fits, else 64; 0 without a run list)"""
        @property
        def run_prefetch(self) -> bool:
            """the run list's gathers prefetch (its runs span more than the last-level cache)"""
        @property
        def run_segments(self) -> int:
            """segments of the run list (one copy kernel each)"""
        @property
        def runs(self) -> int:
            """runs of the flat run list (block lists of short runs); 0: pieces"""
        @property
        def sweep(self) -> bool: ...
        @property
        def total(self) -> int: ...
    @staticmethod
    def pack(src: np.ndarray, dst: np.ndarray, start: int, counts: Sequence[int], strides: Sequence[int], threads: int = 0) -> int:
        """Gather the strided block of src (any C-contiguous array, addressed in bytes) into the contiguous dst; returns the packed byte count. threads=0: OpenMP's default."""
    @staticmethod
    def unpack(src: np.ndarray, dst: np.ndarray, start: int, counts: Sequence[int], strides: Sequence[int], threads: int = 0) -> int:
        """Scatter the contiguous src into the strided block of dst; returns the byte count."""
pack: _pack


class _pagerank(ModuleType):
    """hpc.pagerank kernels: SNAP parser, pull-based PageRank sweep (OpenMP)"""
    class Pull:
        """Validated pattern CSR for the pull sweep (copied once)"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, ncols: int) -> None: ...
        def spmv(self, x: np.ndarray, y: np.ndarray, accumulate: bool = False) -> None: ...
        def spmv_update(self, xg: np.ndarray, y: np.ndarray, x: np.ndarray, xs: np.ndarray, inv_deg: np.ndarray, d: float, base: float) -> tuple[float, float]: ...
        @property
        def cols(self) -> int: ...
        @property
        def nnz(self) -> int: ...
        @property
        def rows(self) -> int: ...
    class ExchangeLayout:
        """Where every value of the 1D exchange sits (exchange_layout's result)"""
        @property
        def dests(self) -> npt.NDArray[np.int64]:
            """neighbour ranks sent to, ascending"""
        @property
        def ghost_pos(self) -> npt.NDArray[np.int64]:
            """receive position of each ghost slot"""
        @property
        def n_recv(self) -> int:
            """length of the receive buffer"""
        @property
        def n_send(self) -> int:
            """length of the send buffer"""
        @property
        def nl(self) -> int:
            """rows this rank owns"""
        @property
        def own_block(self) -> int:
            """this rank's place among the partial blocks (0 without piggyback)"""
        @property
        def pack_pos(self) -> npt.NDArray[np.int64]:
            """send-buffer position of each value sent"""
        @property
        def part_pos(self) -> npt.NDArray[np.int64]:
            """partial blocks in the send buffer"""
        @property
        def piggyback(self) -> bool: ...
        @property
        def rank(self) -> int: ...
        @property
        def recv_counts(self) -> npt.NDArray[np.int64]:
            """values per source (+2 piggyback)"""
        @property
        def recv_displs(self) -> npt.NDArray[np.int64]:
            """start of each source's values"""
        @property
        def rpart_pos(self) -> npt.NDArray[np.int64]:
            """partial blocks received, in xg"""
        @property
        def send_counts(self) -> npt.NDArray[np.int64]:
            """values per destination"""
        @property
        def send_displs(self) -> npt.NDArray[np.int64]:
            """start of each destination's"""
        @property
        def send_idx(self) -> npt.NDArray[np.int64]:
            """local row of each value sent"""
        @property
        def sources(self) -> npt.NDArray[np.int64]:
            """neighbour ranks received from, ascending"""
    class LocalOrder:
        """The sweep's row order (local_order's result)"""
        @property
        def indices(self) -> npt.NDArray[np.int32]:
            """int32 columns in the sweep's numbering"""
        @property
        def indptr(self) -> npt.NDArray[np.int64]: ...
        @property
        def inv_deg(self) -> npt.NDArray[np.float64]:
            """1/outdeg in internal order (0: dangling)"""
        @property
        def pack_idx(self) -> npt.NDArray[np.int32]:
            """internal row of each value sent (int32)"""
        @property
        def perm(self) -> npt.NDArray[np.int64]:
            """original row of each internal row"""
        @property
        def pos(self) -> npt.NDArray[np.int64]:
            """internal row of each original row"""
    class PeriodicRelax:
        """The relaxed-step policy of the PageRank loops (native/include/hpc/pagerank_relax.hpp): fed each step's global L1 change, it says whether the next step is relaxed, x' = (d x + G(x)) / (1 + d), which removes the rate-d tail of periodic components"""
        def __init__(self, d: float = 0.85, enabled: bool = True) -> None: ...
        def next(self, change: float) -> bool:
            """the step just done changed x by change (L1); returns whether the next is relaxed"""
        @property
        def relaxed(self) -> int:
            """steps relaxed so far"""
        @property
        def enabled(self) -> bool:
            """False once a relaxed step did not pay (or made disabled)"""
    class Sweep:
        """SELL-4 pull sweep with bound buffers (rows in-degree descending), fused update, send-buffer packing and rank-ordered partial sums"""
        def __init__(self, order: _pagerank.LocalOrder, layout: _pagerank.ExchangeLayout, *, xg: np.ndarray, x: np.ndarray, send: np.ndarray, part_out: np.ndarray, columns: str = "as-given") -> None:
            """columns: 'as-given', 'sorted' (each row by column), 'delta16' (sorted, 16-bit column deltas) or 'auto' (sorted; both kept where delta16 saves bytes, for the caller to time: column_choice)"""
        @property
        def column_layout(self) -> str:
            """'int32' (the order's entry order), 'sorted32' (each row sorted by column) or 'delta16' (sorted, 16-bit column deltas); settable to either of the last two while column_choice (the same bits)"""
        @column_layout.setter
        def column_layout(self, value: str) -> None: ...
        @property
        def column_choice(self) -> bool:
            """both sorted32 and delta16 kept (columns 'auto') until keep_column_layout"""
        def keep_column_layout(self) -> None:
            """keep the column layout set now and free the other"""
        @property
        def column_bytes(self) -> int:
            """bytes of the column indices a sweep reads"""
        def global_prev(self) -> tuple[float, float]: ...
        def run_local(self, d: float, n: float, tol: float, max_iter: int) -> tuple[Any, ...]:
            """up to max_iter steps of a rank alone, stopping at L1 change < tol: (steps, change, converged)"""
        def start(self, x0: np.ndarray) -> None: ...
        def set_weights(self, indptr: np.ndarray, values: np.ndarray, indices: np.ndarray | None = None) -> None:
            """edge weights per entry of the order's CSR (internal row order), laid out as the SELL-4 columns"""
        def set_teleport(self, p: np.ndarray, q: np.ndarray) -> None:
            """personalization p and dangling distribution q (owned rows, internal order; empty arrays: uniform)"""
        def step(self, d: float, base: float) -> None: ...
        def step_dm(self, d: float, dm: float, n: float) -> None:
            """one step from the global dangling mass dm (n vertices)"""
        def set_segments(self, starts: np.ndarray, rows: np.ndarray) -> None:
            """iterate as ranks with these row blocks would, bit for bit (segmented_order's layout: block q from row starts[q], rows[q] rows, padded to a multiple of 4)"""
        @property
        def segments(self) -> int: ...
        @property
        def threads(self) -> str:
            """'auto' (the first run_local times steps on the thread team and on one thread, and the sweep keeps the faster; default), 'team' or 'one': the same bits"""
        @threads.setter
        def threads(self, value: str) -> None: ...
        @property
        def team_used(self) -> bool:
            """whether the last step ran on the thread team"""
        @property
        def probe_steps(self) -> int:
            """steps the next run_local times to choose its threads (threads 'auto', not yet measured; 0: nothing to choose)"""
        def step_pb(self, d: float, n: float, tol: float, check: bool) -> tuple[Any, ...]: ...
        def step_relax(self, d: float, dm: float, n: float, relax: bool) -> None:
            """step_dm, the step relaxed where relax (see PeriodicRelax)"""
        @property
        def relax(self) -> bool:
            """whether run_local and step_pb relax a step where PeriodicRelax says so (default False)"""
        @relax.setter
        def relax(self, value: bool) -> None: ...
        @property
        def relaxed_steps(self) -> int:
            """steps relaxed since start"""
        @property
        def padded(self) -> int: ...
        @property
        def pieces(self) -> int:
            """chunk ranges of equal work the threads take dynamically"""
        @property
        def schedule(self) -> str:
            """'dynamic' (pieces taken by the free thread; default) or 'static' (one contiguous share of equal work a thread)"""
        @schedule.setter
        def schedule(self, value: str) -> None: ...
        @property
        def weight_layout(self) -> str:
            """'none', 'int16' (integers below 2^16 times one scale beside the columns), 'values32' (floats: every weight exactly a float), 'scaled32' (floats times one scale), 'coded' (at most 256 distinct weights, coded into the columns) or 'values' (doubles)"""
        @property
        def rows(self) -> int: ...
        @property
        def refine(self) -> str:
            """narrow weights of the cheap sweeps of a refined 'values' layout (mixed precision with defect correction): 'int16', 'float32' or 'none'"""
        @property
        def refine_counts(self) -> tuple[int, int]:
            """(exact, cheap) sweeps of this rank since start (solves that follow the schedule; exact: with the exact weights)"""
        @property
        def refine_schedule(self) -> bool:
            """whether run_local follows the exact/cheap sweep schedule (refined weights on a rank alone; with several ranks every sweep is exact)"""
        @property
        def weight_packing(self) -> str:
            """'deltaD': 16-bit weights packed with D-bit column deltas in one 4-byte word an entry (rows sorted by column; D = 32 less the largest weight's bits), else 'none'"""
        @property
        def packed_entries(self) -> int:
            """entries of the packed layout, jumps and padding included (0: none)"""
    @staticmethod
    def exchange_layout(recv_counts: np.ndarray, send_counts: np.ndarray, send_idx: np.ndarray, rank: int, nl: int, piggyback: bool) -> _pagerank.ExchangeLayout:
        """Positions of every exchanged value (an ExchangeLayout) from the ghost plan's counts per rank and requested local rows"""
    @staticmethod
    def ghost_columns(indices: np.ndarray, nlo: int, nhi: int, n: int, offsets: np.ndarray) -> tuple[Any, ...]:
        """Sorted distinct columns outside [nlo, nhi), each entry's slot among them, counts per owner"""
    @staticmethod
    def local_order(indptr: np.ndarray, indices: np.ndarray, nlo: int, nhi: int, slot: np.ndarray, ghost_pos: np.ndarray, send_idx: np.ndarray, outdeg: np.ndarray) -> _pagerank.LocalOrder:
        """Rows by in-degree descending, columns to the sweep's numbering (a LocalOrder)"""
    @staticmethod
    def segmented_order(indptr: np.ndarray, indices: np.ndarray, outdeg: np.ndarray, offsets: np.ndarray, sort_rows: bool = False) -> tuple[_pagerank.LocalOrder, npt.NDArray[np.int64]]:
        """The whole graph laid out as p ranks' local orders (blocks offsets), each block padded to a multiple of 4 rows: (LocalOrder, starts) for Sweep.set_segments; sort_rows: each row's entries as its rank's Sweep(columns='sorted') orders them"""
    @staticmethod
    def parse_edges(data: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int, int]:
        """Parse SNAP text: (src, dst, bad_line, code 0 ok/1 malformed/2 overflow)"""
    @staticmethod
    def update(y: np.ndarray, x: np.ndarray, xs: np.ndarray, inv_deg: np.ndarray, d: float, base: float) -> tuple[float, float]: ...
pagerank: _pagerank


class _pagerank_ppr(ModuleType):
    """hpc.pagerank PowerWalk queries: push, fingerprint combination and top-K per query"""
    class Engine:
        """Validated copy of a graph's out-edge CSR and its fingerprint index (CSR by vertex, with each fingerprint's full mass)"""
        def __init__(self, out_indptr: np.ndarray, out_indices: np.ndarray, fp_indptr: np.ndarray, fp_ids: np.ndarray, fp_vals: np.ndarray, fp_mass: np.ndarray, damping: float) -> None: ...
        def query(self, sources: np.ndarray, iterations: int, threshold: float, per_edge: bool = False, topk: int = 20, want_full: bool = False, threads: int = 1, rel: float = 0.0) -> tuple[Any, ...]:
            """Answer a batch: (topk_ids, topk_scores, stats[, (indptr, ids, values)])"""
        def residual_support(self, sources: np.ndarray, iterations: int, threshold: float, per_edge: bool = False) -> npt.NDArray[np.int64]:
            """Sorted vertices whose fingerprints the batch's residual needs"""
        def nbytes(self) -> dict[str, int]:
            """Bytes held: {'graph': ..., 'index': ...}"""
        @property
        def n(self) -> int: ...
pagerank_ppr: _pagerank_ppr


class _pagerank_ppr_part(ModuleType):
    """hpc.pagerank partitioned PowerWalk queries: owned rows of graph and index, batched push rounds and partial vectors routed between ranks"""
    class PartEngine:
        """Validated out-edge rows and fingerprints of one rank's vertex block, and the state of a batch"""
        def __init__(self, offsets: np.ndarray, rank: int, out_indptr: np.ndarray, out_indices: np.ndarray, damping: float) -> None: ...
        def set_index(self, fp_indptr: np.ndarray, fp_ids: np.ndarray, fp_vals: np.ndarray, fp_mass: np.ndarray) -> None:
            """Replace the fingerprints of the owned vertices"""
        def nbytes(self) -> dict[str, int]:
            """Bytes held: {'graph': ..., 'index': ...}"""
        def begin(self, sources: np.ndarray) -> None:
            """Start a batch (sources: every query's global vertex, the same on every rank)"""
        def push(self, threshold: float, per_edge: bool = False, threads: int = 1) -> tuple[Any, ...]:
            """One push iteration: (counts per rank, keys, values, pushes)"""
        def receive(self, keys: np.ndarray, vals: np.ndarray, threads: int = 1) -> None:
            """Add arrived shares to the residuals"""
        def support(self) -> npt.NDArray[np.int64]:
            """Sorted owned vertices with residual left in some query"""
        def combine(self, rel: float = 0.0, topk: int = 20, threads: int = 1) -> tuple[Any, ...]:
            """Keep each query's partial vector on this rank, its top K first: (norm, missing)"""
        def tails(self, eps: np.ndarray, thr: np.ndarray | None = None, threads: int = 1) -> None:
            """Add the residual rows past their head, contributions >= eps, to the partial vectors"""
        def partial(self, qoff: np.ndarray) -> tuple[Any, ...]:
            """Every partial vector for the asking ranks: (counts, keys, values)"""
        def top(self, qoff: np.ndarray, topk: int = 20, threads: int = 1) -> tuple[Any, ...]:
            """Each partial vector's K largest entries: (counts, keys, values)"""
        def more(self, qoff: np.ndarray, thr: np.ndarray, threads: int = 1) -> tuple[Any, ...]:
            """Unsent entries >= thr per query: (counts, keys, values, floor)"""
        def values(self, keys: np.ndarray, threads: int = 1) -> npt.NDArray[np.float64]:
            """This rank's partial-vector entries of the asked keys (0 where none)"""
        def ask_begin(self, keys: np.ndarray, vals: np.ndarray, src: np.ndarray, qlo: int, qhi: int, topk: int = 20, threads: int = 1) -> npt.NDArray[np.float64]:
            """At the asking rank: merge the top entries, return tau1 per query"""
        def ask_more(self, keys: np.ndarray, vals: np.ndarray, src: np.ndarray, lower: np.ndarray, topk: int = 20, threads: int = 1) -> tuple[Any, ...]:
            """Merge the entries >= thr and the floors, keep the candidates: requests (counts, keys)"""
        def ask_finish(self, vals: np.ndarray, norm: np.ndarray, topk: int = 20, kth_only: bool = False, threads: int = 1) -> tuple[Any, ...]:
            """The requested values in: (ids, scores) of the exact top K"""
        def answer(self, keys: np.ndarray, vals: np.ndarray, norm: np.ndarray, qlo: int, qhi: int, topk: int = 20, want_full: bool = False, kth_only: bool = False, threads: int = 1) -> tuple[Any, ...]:
            """Sum partial vectors of queries [qlo, qhi): (ids, scores[, (indptr, ids, values)])"""
        def stats(self) -> dict[str, Any]:
            """The batch's totals on this rank"""
        @property
        def n(self) -> int: ...
        @property
        def lo(self) -> int: ...
        @property
        def nlocal(self) -> int: ...
pagerank_ppr_part: _pagerank_ppr_part


class _pagerank_walk(ModuleType):
    """hpc.pagerank random-walk superstep (counter-based splitmix64, as the NumPy path)"""
    class Walker:
        """Validated out-edge CSR of the vertices a rank owns"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, lo: int, n: int) -> None: ...
        def step(self, src: np.ndarray, wid: np.ndarray, cur: np.ndarray, seed: int, step: int, c: float) -> tuple[Any, ...]: ...
pagerank_walk: _pagerank_walk


class _pagerank_gs(ModuleType):
    """hpc.pagerank Gauss-Seidel sweep inside a rank's block (as GAP's pr)"""
    class GaussSeidel:
        """Validated owned-column CSR block of a rank"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> None: ...
        def sweep(self, xs: np.ndarray, yg: np.ndarray, x: np.ndarray, inv: np.ndarray, d: float, dm: float, p: np.ndarray, q: np.ndarray) -> tuple[Any, ...]: ...
pagerank_gs: _pagerank_gs


class _pagerank_2d(ModuleType):
    """hpc.pagerank 2D layout: SELL-4 block product and the teleport-vector update"""
    class Block:
        """Validated CSR block of a 2D rank in SELL-4, bound to xc and y"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, ncols: int, *, xc: np.ndarray, y: np.ndarray) -> None: ...
        def spmv(self) -> None:
            """y = A xc (the bound buffers)"""
        @property
        def cols(self) -> int: ...
        @property
        def padded(self) -> int: ...
        @property
        def rows(self) -> int: ...
        @property
        def used(self) -> int:
            """columns that occur in the block"""
        @property
        def weighted(self) -> bool: ...
    @staticmethod
    def update_teleport(y: np.ndarray, x: np.ndarray, xs: np.ndarray, inv: np.ndarray, d: float, ddm: float, c: float, p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
        """x_new = d*y + ddm*q + c*p; sets x, xs = x_new*inv; returns (L1 change, dangling sum)"""
pagerank_2d: _pagerank_2d


class _sparse(ModuleType):
    """CSR kernels (OpenMP): SpMV, Gauss-Seidel sweeps, fused CG vector updates"""
    class Csr:
        """A CSR block copied and validated once; matvec checks only the vectors"""
        # the binding gives rows a default (None) ahead of the required nout: pass both
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, ncols: int, rows: np.ndarray | None, nout: int) -> None:
            """indptr int64, indices int32/int64 in [0, ncols), data float64; rows (int64, strictly increasing, < nout): stored row i is output row rows[i] (None: nout == rows)"""
        def matvec(self, x: np.ndarray, y: np.ndarray, accumulate: bool = False, w: np.ndarray | None = None) -> float:
            """y = A x (or y += A x); returns w . (A x) over the stored rows when w is given, else 0"""
        @property
        def index_itemsize(self) -> int: ...
        @property
        def indptr_itemsize(self) -> int: ...
        @property
        def ncols(self) -> int: ...
        @property
        def nnz(self) -> int: ...
        @property
        def nout(self) -> int: ...
        @property
        def nrows(self) -> int: ...
    @staticmethod
    def axpy(a: float, x: np.ndarray, y: np.ndarray) -> None:
        """y += a x (in place)"""
    @staticmethod
    def aypx(a: float, x: np.ndarray, y: np.ndarray) -> None:
        """y = x + a y (in place)"""
    @staticmethod
    def cg_update(a: float, p: np.ndarray, q: np.ndarray, x: np.ndarray, r: np.ndarray, dinv: np.ndarray | None = None, z: np.ndarray | None = None) -> tuple[float, float]:
        """x += a p; r -= a q; z = dinv r; returns local (r.r, r.z)"""
    @staticmethod
    def gs_sweep(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray, b: np.ndarray, x: np.ndarray, forward: bool = True) -> None:
        """one Gauss-Seidel sweep on a square local CSR block, x updated in place"""
    @staticmethod
    def jacobi_dots(dinv: np.ndarray, r: np.ndarray, z: np.ndarray) -> tuple[float, float]:
        """z = dinv r; returns local (r.r, r.z)"""
    @staticmethod
    def spmv(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray, y: np.ndarray, accumulate: bool = False, check: bool = True) -> None:
        """y = A x (or y += A x); A in CSR with int64 indptr, column indices < len(x)"""
sparse: _sparse


class _spgemm(ModuleType):
    """SMASH-style two-phase hash SpGEMM (OpenMP)"""
    @staticmethod
    def multiply_i32(a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray | None, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray | None, m: int, threads: int, shared_at: int = 0, dense_at: int = 0, fused_max: int = -1, interleave: int = -1) -> tuple[Any, ...]:
        """multiply(a_indptr, a_indices, a_data|None, n, k, b_indptr, b_indices, b_data|None, m, threads) -> (indptr int64, indices, data float64, stats). A is n x k, B is k x m, CSR with unique column indices per row; data None means all ones. Output columns ascending. shared_at / dense_at > 0 override the product counts from which a row goes to the shared (SMASH, all threads) table or the dense accumulator (0: automatic). fused_max: largest product count for the one-region small-product path (-1: automatic, 0: never). interleave: the one-region path's phases row by row (1; -1 automatic and 0: not)."""
    @staticmethod
    def multiply_i64(a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray | None, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray | None, m: int, threads: int, shared_at: int = 0, dense_at: int = 0, fused_max: int = -1, interleave: int = -1) -> tuple[Any, ...]:
        """multiply(a_indptr, a_indices, a_data|None, n, k, b_indptr, b_indices, b_data|None, m, threads) -> (indptr int64, indices, data float64, stats). A is n x k, B is k x m, CSR with unique column indices per row; data None means all ones. Output columns ascending. shared_at / dense_at > 0 override the product counts from which a row goes to the shared (SMASH, all threads) table or the dense accumulator (0: automatic). fused_max: largest product count for the one-region small-product path (-1: automatic, 0: never). interleave: the one-region path's phases row by row (1; -1 automatic and 0: not)."""
spgemm: _spgemm


class _spgemm_onepass(ModuleType):
    """One-pass SpGEMM for products of short rows (row buffers, rank-sorted columns; OpenMP)"""
    @staticmethod
    def multiply_i32(a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, threads: int, fixed_threads: bool = False, rank_max: int = -1, stream: int = -1) -> tuple[Any, ...]:
        """multiply(a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, threads, fixed_threads=False, rank_max=-1, stream=-1) -> (indptr, indices, data float64, stats). A is n x k, B is k x m, CSR with unique column indices per row, float64 data. Output columns ascending, summed in the order of A's entries. fixed_threads: run on exactly `threads` (else the measured thread model picks up to it). rank_max: longest row list sorted by rank (-1: automatic). stream: 1 writes C with non-temporal stores (rows staged in L1), 0 with plain stores, -1 where the working set and C exceed L2 and C's pages are in memory already (stats['streamed'])."""
    @staticmethod
    def multiply_i64(a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, threads: int, fixed_threads: bool = False, rank_max: int = -1, stream: int = -1) -> tuple[Any, ...]:
        """multiply(a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, threads, fixed_threads=False, rank_max=-1, stream=-1) -> (indptr, indices, data float64, stats). A is n x k, B is k x m, CSR with unique column indices per row, float64 data. Output columns ascending, summed in the order of A's entries. fixed_threads: run on exactly `threads` (else the measured thread model picks up to it). rank_max: longest row list sorted by rank (-1: automatic). stream: 1 writes C with non-temporal stores (rows staged in L1), 0 with plain stores, -1 where the working set and C exceed L2 and C's pages are in memory already (stats['streamed'])."""
    @staticmethod
    def suits_i32(a_indptr: np.ndarray, a_indices: np.ndarray, b_indptr: np.ndarray, b_indices: np.ndarray, n: int, k: int, rank_max: int = -1) -> tuple[Any, ...]:
        """suits(a_indptr, a_indices, b_indptr, b_indices, n, k, rank_max=-1) -> (chosen, products estimate, share): whether the one-pass kernel suits A @ B, from a sample of A's rows: the share of their products in rows whose output is short enough for the rank sort (at most rank_max products, or a column span of at most rank_max where under half the products come from B rows that are one run of columns); chosen where >= 0.5."""
    @staticmethod
    def suits_i64(a_indptr: np.ndarray, a_indices: np.ndarray, b_indptr: np.ndarray, b_indices: np.ndarray, n: int, k: int, rank_max: int = -1) -> tuple[Any, ...]:
        """suits(a_indptr, a_indices, b_indptr, b_indices, n, k, rank_max=-1) -> (chosen, products estimate, share): whether the one-pass kernel suits A @ B, from a sample of A's rows: the share of their products in rows whose output is short enough for the rank sort (at most rank_max products, or a column span of at most rank_max where under half the products come from B rows that are one run of columns); chosen where >= 0.5."""
    @staticmethod
    def thread_model_replay(ops: list) -> list:
        """thread_model_replay(ops) -> list of choices: a fresh thread model (as the kernels use, native/include/hpc/thread_model.hpp) driven by ops, each ("choose", est, threads, key, now) or ("record", seconds, threads, units, key, now); now: wall seconds. For tests of the model's logic."""
spgemm_onepass: _spgemm_onepass


class _spgemm_amg(ModuleType):
    """Smoothed-aggregation AMG kernels: aggregation, smoothed prolongator, Gauss-Seidel"""
    class GaussSeidel_i32:
        """Gauss-Seidel on a square CSR block, checked and copied once"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray) -> None: ...
        def rows(self) -> int: ...
        def sweep(self, b: np.ndarray, x: np.ndarray, rows: np.ndarray) -> None:
            """x_i = (b_i - sum_{j != i} a_ij x_j) / diag_i for the rows `rows` (int64), in order"""
    class GaussSeidel_i64:
        """Gauss-Seidel on a square CSR block, checked and copied once"""
        def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray) -> None: ...
        def rows(self) -> int: ...
        def sweep(self, b: np.ndarray, x: np.ndarray, rows: np.ndarray) -> None:
            """x_i = (b_i - sum_{j != i} a_ij x_j) / diag_i for the rows `rows` (int64), in order"""
    @staticmethod
    def aggregate_i32(indptr: np.ndarray, indices: np.ndarray, n: int) -> tuple[Any, ...]:
        """aggregate(indptr, indices, n) -> (aggregate of every node int64 (-1: none), count): standard three-pass aggregation of a symmetric strength graph (pyamg's standard_aggregation)."""
    @staticmethod
    def aggregate_i64(indptr: np.ndarray, indices: np.ndarray, n: int) -> tuple[Any, ...]:
        """aggregate(indptr, indices, n) -> (aggregate of every node int64 (-1: none), count): standard three-pass aggregation of a symmetric strength graph (pyamg's standard_aggregation)."""
    @staticmethod
    def aggregate_pass_i32(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray, theta: float, state: np.ndarray, pass_: int, first_code: int) -> int:
        """aggregate_pass(indptr, indices, data, diag, theta, state, pass, first_code) -> int: one pass (1, 2 or 3) of the standard aggregation over own rows, columns numbered own then ghost; state (int64, own + ghost) updated in place; returns the aggregates made."""
    @staticmethod
    def aggregate_pass_i64(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, diag: np.ndarray, theta: float, state: np.ndarray, pass_: int, first_code: int) -> int:
        """aggregate_pass(indptr, indices, data, diag, theta, state, pass, first_code) -> int: one pass (1, 2 or 3) of the standard aggregation over own rows, columns numbered own then ghost; state (int64, own + ghost) updated in place; returns the aggregates made."""
    @staticmethod
    def smoothed_prolongator_i32(own_indptr: np.ndarray, own_indices: np.ndarray, own_data: np.ndarray, gh_indptr: np.ndarray, gh_indices: np.ndarray, gh_data: np.ndarray, agg: np.ndarray, t: np.ndarray, gagg: np.ndarray, gt: np.ndarray, colid: np.ndarray, dinv: np.ndarray, w: float) -> tuple[Any, ...]:
        """smoothed_prolongator(own_indptr, own_indices, own_data, gh_indptr, gh_indices, gh_data, agg, t, gagg, gt, colid, dinv, w) -> (indptr, indices, data) int64/int64/float64: rows of P = T - w D^-1 A T, T(i, agg_i) = t_i; compact aggregate ids map to columns colid."""
    @staticmethod
    def smoothed_prolongator_i64(own_indptr: np.ndarray, own_indices: np.ndarray, own_data: np.ndarray, gh_indptr: np.ndarray, gh_indices: np.ndarray, gh_data: np.ndarray, agg: np.ndarray, t: np.ndarray, gagg: np.ndarray, gt: np.ndarray, colid: np.ndarray, dinv: np.ndarray, w: float) -> tuple[Any, ...]:
        """smoothed_prolongator(own_indptr, own_indices, own_data, gh_indptr, gh_indices, gh_data, agg, t, gagg, gt, colid, dinv, w) -> (indptr, indices, data) int64/int64/float64: rows of P = T - w D^-1 A T, T(i, agg_i) = t_i; compact aggregate ids map to columns colid."""
spgemm_amg: _spgemm_amg


class _spgemm_renumber(ModuleType):
    """Column renumbering for the distributed SpGEMM: a marker array, O(nnz + ncols)"""
    @staticmethod
    def renumber_i32(indices: np.ndarray, ncols: int) -> tuple[Any, ...]:
        """renumber(indices, ncols) -> (used int64, positions): the sorted distinct values of indices (each in [0, ncols)) and every index replaced by its position among them (same dtype); what np.unique + np.searchsorted give, without sorting."""
    @staticmethod
    def renumber_i64(indices: np.ndarray, ncols: int) -> tuple[Any, ...]:
        """renumber(indices, ncols) -> (used int64, positions): the sorted distinct values of indices (each in [0, ncols)) and every index replaced by its position among them (same dtype); what np.unique + np.searchsorted give, without sorting."""
spgemm_renumber: _spgemm_renumber


class _spgemm_semiring(ModuleType):
    """Masked semiring SpGEMM: symbolic pattern, numeric values, masked counts (OpenMP)"""
    @staticmethod
    def mask_count_i32(a_indptr: np.ndarray, a_indices: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, m: int, mask_indptr: np.ndarray, mask_indices: np.ndarray, threads: int) -> int:
        """mask_count(a_indptr, a_indices, n, k, b_indptr, b_indices, m, mask_indptr, mask_indices, threads) -> int: sum of C<M> = A B over the plus_pair semiring."""
    @staticmethod
    def mask_count_i64(a_indptr: np.ndarray, a_indices: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, m: int, mask_indptr: np.ndarray, mask_indices: np.ndarray, threads: int) -> int:
        """mask_count(a_indptr, a_indices, n, k, b_indptr, b_indices, m, mask_indptr, mask_indices, threads) -> int: sum of C<M> = A B over the plus_pair semiring."""
    @staticmethod
    def numeric_i32_bool(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i32_float32(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i32_float64(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i32_int32(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i32_int64(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i64_bool(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i64_float32(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i64_float64(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i64_int32(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def numeric_i64_int64(semiring: int, a_indptr: np.ndarray, a_indices: np.ndarray, a_data: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, b_data: np.ndarray, m: int, c_indptr: np.ndarray, c_indices: np.ndarray, threads: int, complete: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, 4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so every product accumulates without a lookup; with a pattern that misses a product's column that product is dropped only when complete is false. out: a C-contiguous array of C's type and length nnz(C) written in place and returned (no allocation)."""
    @staticmethod
    def symbolic_i32(a_indptr: np.ndarray, a_indices: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, m: int, mask_indptr: np.ndarray | None, mask_indices: np.ndarray | None, complement: bool, threads: int) -> tuple[Any, ...]:
        """symbolic(a_indptr, a_indices, n, k, b_indptr, b_indices, m, mask_indptr|None, mask_indices|None, complement, threads) -> (indptr, indices): the pattern of C<M> = A B, columns ascending per row."""
    @staticmethod
    def symbolic_i64(a_indptr: np.ndarray, a_indices: np.ndarray, n: int, k: int, b_indptr: np.ndarray, b_indices: np.ndarray, m: int, mask_indptr: np.ndarray | None, mask_indices: np.ndarray | None, complement: bool, threads: int) -> tuple[Any, ...]:
        """symbolic(a_indptr, a_indices, n, k, b_indptr, b_indices, m, mask_indptr|None, mask_indices|None, complement, threads) -> (indptr, indices): the pattern of C<M> = A B, columns ascending per row."""
spgemm_semiring: _spgemm_semiring


class _stream(ModuleType):
    """BabelStream kernels (OpenMP)"""
    @staticmethod
    def add(a: np.ndarray, b: np.ndarray, c: np.ndarray, /) -> None: ...
    @staticmethod
    def copy(a: np.ndarray, b: np.ndarray, c: np.ndarray, /) -> None: ...
    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray, c: np.ndarray, /) -> float: ...
    @staticmethod
    def init(a: np.ndarray, b: np.ndarray, c: np.ndarray, va: float, vb: float, vc: float, /) -> None: ...
    @staticmethod
    def mul(a: np.ndarray, b: np.ndarray, c: np.ndarray, scalar: float, /) -> None: ...
    @staticmethod
    def nstream(a: np.ndarray, b: np.ndarray, c: np.ndarray, scalar: float, /) -> None: ...
    @staticmethod
    def triad(a: np.ndarray, b: np.ndarray, c: np.ndarray, scalar: float, /) -> None: ...
stream: _stream


class _stream_stdpar(ModuleType):
    """BabelStream kernels (C++17 std::execution::par_unseq); only in a build with TBB (has_stdpar). Each kernel takes three float64 or three float32 arrays, never converted."""
    @staticmethod
    def set_threads(n: int, /) -> None: ...
    @overload
    @staticmethod
    def add(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64]) -> None: ...
    @overload
    @staticmethod
    def add(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32]) -> None: ...
    @overload
    @staticmethod
    def copy(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64]) -> None: ...
    @overload
    @staticmethod
    def copy(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32]) -> None: ...
    @overload
    @staticmethod
    def dot(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64]) -> float: ...
    @overload
    @staticmethod
    def dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32]) -> float: ...
    @overload
    @staticmethod
    def init(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], va: float, vb: float, vc: float) -> None: ...
    @overload
    @staticmethod
    def init(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32], va: float, vb: float, vc: float) -> None: ...
    @overload
    @staticmethod
    def mul(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], scalar: float) -> None: ...
    @overload
    @staticmethod
    def mul(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32], scalar: float) -> None: ...
    @overload
    @staticmethod
    def nstream(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], scalar: float) -> None: ...
    @overload
    @staticmethod
    def nstream(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32], scalar: float) -> None: ...
    @overload
    @staticmethod
    def triad(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], c: npt.NDArray[np.float64], scalar: float) -> None: ...
    @overload
    @staticmethod
    def triad(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], c: npt.NDArray[np.float32], scalar: float) -> None: ...
stream_stdpar: _stream_stdpar


class _train(ModuleType):
    """hpc.train's fused float32 element-wise kernels (GeLU, causal softmax)."""
    @staticmethod
    def causal_softmax(s: npt.NDArray[np.float32], scale: float) -> None:
        """In place: softmax(scale * s) over keys j <= i of each row i of float32 (..., n, n) score matrices, 0 above the diagonal."""
    @staticmethod
    def exp(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]) -> None:
        """exp of float32 x into y by the kernels' vectorised exp (for its accuracy test)."""
    @staticmethod
    def gelu_fwd(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], t: npt.NDArray[np.float32]) -> None:
        """Tanh-approximate GeLU of float32 x into y, tanh(u) into t (C-contiguous, one size)."""
train: _train
