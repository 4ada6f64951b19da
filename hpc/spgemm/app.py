"""hpc.spgemm: sparse matrix times sparse matrix, C = A B, SMASH-style hash kernels over MPI.

Row-wise (Gustavson) products whose partial sums are merged in hash tables as they are made:
a symbolic phase sizes every row of C exactly, a numeric phase fills it; rows are binned by
their count of scalar products and split across threads by a prefix sum of products; heavy
rows use a dense accumulator, or one table shared by all threads with atomic CAS (SMASH).

Distributed (--layout): 1d = A and C by row blocks, the rows of B each rank needs fetched in
one Alltoallv; 2d = Sparse SUMMA on a sqrt(p) x sqrt(p) grid (p must be a square number).
The timed phase `multiply` is local compute (symbolic + numeric, and SUMMA's merge);
`communicate` is the exchange of B rows / the SUMMA broadcasts, reported with its volume.

Every run checks ||C x - A (B x)|| / ||A (B x)|| for a random x, without gathering C.

Inputs: --a PATH.mtx [--b PATH.mtx] (default B = A), or --generate rmat:SCALE:EDGEFACTOR
(Graph500 R-MAT, a,b,c = 0.57,0.19,0.19, 0/1 entries, A*A), er:N:DEG (Erdos-Renyi, N rows,
DEG entries per row on average) or poisson3d:N (7-point Laplacian on an N^3 grid).

This is the command line over the Python API (hpc.spgemm.multiply, hpc.spgemm.Product).
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from mpi4py import MPI

from hpc.core import App, UsageError, checks, make_parser, run
from hpc.core.cli import Subcommand, dispatch, subcommand_epilog
from hpc.core import backends as registry
from hpc.core.exchange import exscan
from hpc.core.memory import require_memory
from hpc.core.partition import block_offsets, exchange_by_owner
from hpc.core.runtime import collective
from hpc.sparse import DistCSR, read_matrix

from . import dist
from .api import Product
from .local import BACKENDS

VALID_TOL = 1e-10


def parser():
    p = make_parser(
        "spgemm", __doc__, backends=list(BACKENDS), default_backend="native",
        epilog="Back ends: native (C++/OpenMP hash), numba (same algorithm), scipy (reference), "
               "cuda (CUDA hash kernel, shared-memory tables by row bin), cusparse (cuSPARSE "
               "through cupyx).\n\n" + subcommand_epilog(COMMANDS))
    g = p.add_argument_group("input (one of --a or --generate)")
    g.add_argument("--a", metavar="PATH", help="A as a Matrix Market file")
    g.add_argument("--b", metavar="PATH", help="B as a Matrix Market file [default: B = A]")
    g.add_argument("--generate", metavar="SPEC",
                   help="generated A (and B = A): rmat:SCALE:EDGEFACTOR, er:N:DEG, poisson3d:N")
    p.add_argument("--phases", type=checks.integer(1, 1 << 20), default=1,
                   help="memory-bounded phases (1d): C made in K chunks of A's rows of equal "
                        "work, each validated and dropped, so at most about 1/K of C is held "
                        "at a time (not with --output)")
    p.add_argument("--layout", choices=("1d", "2d"), default="1d",
                   help="1d row blocks with one Alltoallv of B rows, or 2d Sparse SUMMA "
                        "(needs a square number of ranks)")
    return p


# ------------------------------------------------------------------------------ inputs
def _edges_to_dist(comm, src: np.ndarray, dst: np.ndarray, n: int) -> DistCSR:
    """A 0/1 n x n DistCSR from this rank's share of an edge list (duplicates collapse)."""
    p, r = comm.Get_size(), comm.Get_rank()
    off = block_offsets(n, p)
    dest = np.searchsorted(off, src, side="right") - 1
    ri, rj = exchange_by_owner(comm, dest, [np.asarray(src, np.int64), np.asarray(dst, np.int64)])
    m = ri.size
    lo, hi = int(off[r]), int(off[r + 1])
    loc = sp.csr_matrix((np.ones(m), (ri - lo, rj)), shape=(hi - lo, n))
    loc.sum_duplicates()
    loc.data[:] = 1.0
    return DistCSR(comm, loc, (n, n), row_offsets=off)


def parse_generate(spec: str) -> tuple[str, list]:
    """'rmat:14:16' -> ('rmat', [14, 16]); raises UsageError naming the option."""
    parts = spec.split(":")
    kind = parts[0]
    try:
        if kind == "rmat" and len(parts) == 3:
            scale, ef = int(parts[1]), int(parts[2])
            if not (1 <= scale <= 30 and ef >= 1):
                raise ValueError
            return kind, [scale, ef]
        if kind == "er" and len(parts) == 3:
            n, deg = int(parts[1]), float(parts[2])
            if n < 1 or deg < 0:
                raise ValueError
            return kind, [n, deg]
        if kind == "poisson3d" and len(parts) == 2:
            n = int(parts[1])
            if n < 1:
                raise ValueError
            return kind, [n]
    except ValueError:
        pass
    raise UsageError(f"--generate {spec!r}: expected rmat:SCALE:EDGEFACTOR (SCALE 1..30, "
                     "EDGEFACTOR >= 1), er:N:DEG or poisson3d:N")


def load_inputs(args, comm) -> tuple[DistCSR, DistCSR, str]:
    """A and B as DistCSR (collective); every input error is a UsageError on all ranks."""
    if bool(args.a) == bool(args.generate):
        raise UsageError("give exactly one of --a PATH or --generate SPEC")
    if args.b and not args.a:
        raise UsageError("--b needs --a (a generated A is multiplied by itself)")
    if args.generate:
        kind, prm = parse_generate(args.generate)
        if kind == "rmat":
            from hpc.sparse.randgen import rmat_edges

            scale, ef = prm
            require_memory(3 * 16 * (ef << scale) / comm.Get_size(), f"--generate {args.generate}", comm)
            s, d = rmat_edges(scale, ef, args.seed, comm)
            A = _edges_to_dist(comm, s, d, 1 << scale)
        elif kind == "er":
            from hpc.sparse.randgen import er_edges

            n, deg = prm
            require_memory(3 * 16 * n * deg / comm.Get_size(), f"--generate {args.generate}", comm)
            s, d = er_edges(n, deg, args.seed, comm)
            A = _edges_to_dist(comm, s, d, n)
        else:
            from hpc.sparse.generators import poisson3d

            require_memory(7 * 12 * prm[0] ** 3 / comm.Get_size(), f"--generate {args.generate}", comm)
            A = poisson3d(prm[0], comm)
        return A, A, args.generate
    A = read_matrix(args.a, comm)
    B = read_matrix(args.b, comm) if args.b else A
    if A.shape[1] != B.shape[0]:
        raise UsageError(f"incompatible shapes: --a {args.a} is {A.shape[0]} x {A.shape[1]} but "
                         f"--b {args.b} is {B.shape[0]} x {B.shape[1]} (inner dimensions differ)")
    return A, B, args.a + (f" x {args.b}" if args.b else " squared")


# ------------------------------------------------------------------------------ checks
class Validator:
    """||C x - A (B x)|| / ||A (B x)|| for x uniform in [0.5, 1.5), and C's columns ascending
    and in range, accumulated over C's local rows as they come (whole, or phase by phase:
    the same rows give the same bits either way). Collective construction and :meth:`finish`.
    """

    def __init__(self, A: DistCSR, B: DistCSR, seed: int):
        comm = self.comm = A.comm
        self.ncols = B.shape[1]
        self.x = np.random.default_rng([seed, 0x5A]).random(B.shape[1]) + 0.5
        bx = B.local @ self.x
        bx_all = np.empty(B.shape[0], dtype=np.float64)
        comm.Allgatherv(np.ascontiguousarray(bx), [bx_all, np.diff(B.row_offsets),
                                                   B.row_offsets[:-1], MPI.DOUBLE])
        self.ref = A.local @ bx_all
        self.y = np.zeros_like(self.ref)
        self.ok_struct = True
        self.nnz = 0

    def add(self, r0: int, Cl: sp.csr_matrix) -> None:
        """Rows r0, r0 + 1, ... of this rank's block of C."""
        self.y[r0:r0 + Cl.shape[0]] = Cl @ self.x
        self.nnz += int(Cl.indptr[-1])
        ok = bool(Cl.indices.size == 0 or (Cl.indices.min() >= 0
                                            and Cl.indices.max() < self.ncols))
        d = np.diff(Cl.indices.astype(np.int64))
        starts = Cl.indptr[1:-1]
        mask = np.ones(d.size, dtype=bool)
        mask[starts[(starts > 0) & (starts <= d.size)] - 1] = False
        self.ok_struct &= ok and bool(np.all(d[mask] > 0))

    def finish(self) -> tuple[bool, dict]:
        comm, y, ref = self.comm, self.y, self.ref
        num = comm.allreduce(float(np.sum((y - ref) ** 2)))
        den = comm.allreduce(float(np.sum(ref ** 2)))
        yy = comm.allreduce(float(np.sum(y ** 2)))
        err = float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(yy))
        ok_struct = bool(comm.allreduce(self.ok_struct, op=MPI.LAND))
        return err <= VALID_TOL and ok_struct, {"rel_err": err, "tolerance": VALID_TOL,
                                                "columns_sorted": ok_struct}


def validate(A: DistCSR, B: DistCSR, C: DistCSR, seed: int) -> tuple[bool, dict]:
    """||C x - A (B x)|| / ||A (B x)|| for x uniform in [0.5, 1.5) (collective, C not gathered)."""
    v = Validator(A, B, seed)
    v.add(0, C.local)
    return v.finish()


def write_output(path: str, C: DistCSR) -> None:
    """HDF5 /C/indptr, /C/indices, /C/data (global CSR), attribute shape on /C (collective)."""
    from hpc.core import h5io

    comm = C.comm
    Cl = C.local
    off = exscan(comm, int(Cl.nnz))
    ip = Cl.indptr.astype(np.int64) + off
    piece = ip if comm.Get_rank() == 0 else ip[1:]
    h5io.write(path, comm, {"/C/indptr": h5io.Distributed(piece),
                            "/C/indices": h5io.Distributed(Cl.indices.astype(np.int64)),
                            "/C/data": h5io.Distributed(np.ascontiguousarray(Cl.data, np.float64))},
               attrs={"/C": {"shape": np.array(C.shape, dtype=np.int64)}})


# ------------------------------------------------------------------------------ main
COMMANDS = (
    Subcommand("multiply", "hpc.spgemm.app:multiply_main",
               "C = A B (the default: python -m hpc.spgemm [options])"),
    Subcommand("triangles", "hpc.spgemm.triangles:main",
               "count triangles as the masked product L Lᵀ<L> (--graph PATH | --generate SPEC)"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m hpc.spgemm [triangles] ...: the product unless the first argument names a
    verb."""
    return dispatch("python -m hpc.spgemm", COMMANDS, argv, default="multiply")


def multiply_main(argv: Sequence[str] | None = None) -> int:
    """python -m hpc.spgemm [multiply] [options]: time C = A B."""
    args = parser().parse_args(argv)
    why = registry.why_unavailable(BACKENDS[args.backend][1])
    if why:
        raise UsageError(f"--backend {args.backend} is not available here: {why}")
    app = App("spgemm", args)
    comm = app.comm
    if args.layout == "2d" and dist.square_grid(app.size) is None:
        raise UsageError(f"--layout 2d needs a square number of ranks (1, 4, 9, ...), got "
                         f"{app.size}; use --layout 1d")
    if args.phases > 1 and (args.layout != "1d" or args.output):
        raise UsageError("--phases K > 1 runs with --layout 1d and without --output (each "
                         "chunk of C is validated and dropped)")
    with collective(comm):
        A, B, what = load_inputs(args, comm)
    app.say(f"hpc.spgemm: {what}: A {A.shape[0]} x {A.shape[1]} ({A.nnz} nnz), "
            f"B {B.shape[0]} x {B.shape[1]} ({B.nnz} nnz); layout {args.layout}, back end "
            f"{args.backend}, {app.size} rank(s) x {app.threads} thread(s)")

    if args.phases > 1:  # (checked before the inputs are read, below)
        return _phased(app, args, A, B)
    prod = Product(A, B, layout=args.layout, backend=args.backend, threads=app.threads)
    per_rep = []
    with app.track(args.repeat, "spgemm", unit="product") as prog:  # rank 0, bounded rate
        for _ in range(args.repeat):
            comm.Barrier()
            t0 = time.perf_counter()
            costs = prod.run()
            comm.Barrier()
            app.timer.add("spgemm", time.perf_counter() - t0)
            app.timer.add("communicate", costs.comm_s)
            app.timer.add("multiply", costs.compute_s)
            per_rep.append(costs)
            prog.update(multiply_s=costs.compute_s, communicate_s=costs.comm_s)
    if args.layout == "2d":
        with app.timer.phase("collect"):
            C = prod.result()
    else:
        C = prod.result()
    prod.free()

    passed, validation = validate(A, B, C, args.seed)
    if args.output:
        with app.timer.phase("write"):
            write_output(args.output, C)
    timings = app.timer.summary()
    _record(app, A, B, C, prod, per_rep[-1], timings)
    return app.finish(passed, validation, timings)


def _phased(app, args, A: DistCSR, B: DistCSR) -> int:
    """--phases K: the 1d product made and validated chunk by chunk (C never held whole)."""
    comm = app.comm
    costs = dist.Costs()
    check = None
    peak = 0
    for _ in range(args.repeat):
        check = Validator(A, B, args.seed)
        comm.Barrier()
        t0 = time.perf_counter()
        costs = dist.Costs()
        # the validation of each chunk is inside the timed loop (it is what drops the chunk)
        peak = dist.multiply_1d_phased(A, B, args.backend, app.threads, costs, args.phases,
                                       check.add)
        comm.Barrier()
        app.timer.add("spgemm", time.perf_counter() - t0)
        app.timer.add("communicate", costs.comm_s)
        app.timer.add("multiply", costs.compute_s)
    passed, validation = check.finish()
    timings = app.timer.summary()
    nnz_c = int(comm.allreduce(check.nnz, op=MPI.SUM))
    _metrics(app, A, B, nnz_c, costs, timings, 0, "1d")
    app.metrics["phases"] = args.phases
    app.metrics["c_peak_bytes"] = int(comm.allreduce(peak, op=MPI.MAX))
    return app.finish(passed, validation, timings)


def _record(app, A: DistCSR, B: DistCSR, C: DistCSR, prod: Product, costs: dist.Costs,
            timings: dict) -> None:
    """The record's metrics of an unphased run (collective)."""
    Cl = C.local
    _metrics(app, A, B, int(C.nnz), costs, timings,
             int(app.comm.allreduce(prod.setup.comm_bytes, op=MPI.SUM)), prod.layout)
    app.metrics["phases"] = 1
    app.metrics["c_peak_bytes"] = int(app.comm.allreduce(
        Cl.indptr.nbytes + Cl.indices.nbytes + Cl.data.nbytes, op=MPI.MAX))


def _metrics(app, A: DistCSR, B: DistCSR, nnz_c: int, costs: dist.Costs, timings: dict,
             setup_bytes: int, layout: str) -> None:
    """The record's metrics (collective): products, nnz, GFLOP/s, communication volume."""
    comm = app.comm
    stats: dict = {}
    for st in comm.allgather(costs.stats):  # keys may differ between ranks
        for k, v in st.items():
            if not k.endswith("_s"):
                stats[k] = stats.get(k, 0) + v
    products = int(stats.get("products", 0))
    # Products of the multiplication proper (SUMMA's merge products are reported apart).
    t_mul = timings["multiply"]["min"]
    m = app.metrics
    m["products"] = products
    m["nnz_C"] = int(nnz_c)
    m["compression_ratio"] = products / nnz_c if nnz_c else 0.0
    m["gflops"] = 2.0 * products / t_mul / 1e9 if t_mul > 0 else 0.0
    m["multiply_s"] = t_mul
    m["communicate_s"] = timings["communicate"]["min"]
    m["spgemm_s"] = timings["spgemm"]["min"]
    m["comm_bytes"] = int(comm.allreduce(costs.comm_bytes, op=MPI.SUM))
    m["setup_comm_bytes"] = int(setup_bytes)
    m["nnz_A"], m["nnz_B"] = int(A.nnz), int(B.nnz)
    m["shape_C"] = [A.shape[0], B.shape[1]]
    m["kernel_stats"] = {k: int(v) for k, v in stats.items()}
    app.extra["layout"] = layout
    if layout == "2d":
        q = dist.square_grid(app.size)
        app.extra["grid"] = [q, q]
    app.say(f"products {products}, nnz(C) {nnz_c} (compression {m['compression_ratio']:.2f}); "
            f"multiply {t_mul:.4f} s = {m['gflops']:.3f} GFLOP/s; communicate "
            f"{m['communicate_s']:.4f} s, {m['comm_bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    run(main)
