"""Plan reuse: numeric-only products against full products, and the cached 1D plan.

Local (one process): for each matrix, C = A A by a full call (``hpc.spgemm.multiply``: the
native hash kernel's symbolic + numeric phases), by a numeric-only call from a plan made
once (``multiply(A, A, plan=symbolic(A, A))``) and by the same call writing into the last
product's values (``out=C``, PETSc's MAT_REUSE_MATRIX: no allocation, so no fresh pages), the
three interleaved in every round; the table gives the median of each and the full call's
ratio to each (target: >= 1.8 at 2 threads on bcsstk13, pushpull and R-MAT 15).

Distributed (``--dist``, under mpiexec): DistCSR C = A A on R-MAT 14, a fresh 1D product per
call against one from the cached plan (values exchanged only), interleaved (target: >= 1.5x
at 2 ranks).

    python scaling/compare/spgemm_reuse.py --threads 2 --rounds 7
    mpiexec -n 2 python scaling/compare/spgemm_reuse.py --dist --rmat 14 --threads 1

Every reused product is checked equal to the fresh one. The machine load (1-minute average)
is printed beside the figures: on a loaded machine single timings are noise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
from mpi4py import MPI

from hpc.sparse import DistCSR
from hpc.sparse.randgen import rmat_edges
from hpc.spgemm import local as L
from hpc.spgemm import multiply, symbolic

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "matrices"


def rmat(scale: int, ef: int = 16, seed: int = 1) -> sp.csr_matrix:
    s, d = rmat_edges(scale, ef, seed, None)
    A = sp.csr_matrix((np.ones(s.size), (s, d)), shape=(1 << scale, 1 << scale))
    A.sum_duplicates()
    A.data[:] = 1.0
    return L.canonical(A)


def timed(f, comm=None) -> float:
    if comm is not None:
        comm.Barrier()
    t0 = time.perf_counter()
    f()
    if comm is not None:
        comm.Barrier()
    return time.perf_counter() - t0


def local(names, threads, rounds) -> None:
    print(f"# local, {threads} thread(s), median of {rounds} interleaved rounds; "
          f"load {os.getloadavg()}")
    print(f"{'matrix':<16}{'nnz(C)':>11}{'full_s':>10}{'numeric_s':>11}{'into_out_s':>12}"
          f"{'full/numeric':>14}{'full/into_out':>15}")
    for name in names:
        A = rmat(int(name[4:])) if name.startswith("rmat") else L.canonical(
            scipy.io.mmread(DATA / name))
        plan = symbolic(A, A, threads=threads)
        full = multiply(A, A, threads=threads)
        again = multiply(A, A, plan=plan, threads=threads)
        np.testing.assert_array_equal(full.indices, again.indices)
        np.testing.assert_allclose(full.data, again.data, rtol=1e-13)
        into = multiply(A, A, plan=plan, threads=threads, out=again)
        np.testing.assert_allclose(into.data, full.data, rtol=1e-13)
        tf, tn, to = [], [], []
        for _ in range(rounds):
            tf.append(timed(lambda: multiply(A, A, threads=threads)))
            tn.append(timed(lambda: multiply(A, A, plan=plan, threads=threads)))
            to.append(timed(lambda: multiply(A, A, plan=plan, threads=threads, out=again)))
        mf, mn, mo = statistics.median(tf), statistics.median(tn), statistics.median(to)
        print(f"{name:<16}{full.nnz:>11}{mf:>10.5f}{mn:>11.5f}{mo:>12.5f}{mf / mn:>14.2f}"
              f"{mf / mo:>15.2f}", flush=True)
    print(f"# load after: {os.getloadavg()}")


def distributed(scale, threads, rounds) -> None:
    comm = MPI.COMM_WORLD
    A = DistCSR.from_scipy(rmat(scale), comm)
    plan = symbolic(A, A, threads=threads)
    fresh = multiply(A, A, threads=threads)
    reused = multiply(A, A, plan=plan, threads=threads)
    assert np.array_equal(fresh.local.indices, reused.local.indices)
    tf, tn = [], []
    for _ in range(rounds):
        tf.append(timed(lambda: multiply(A, A, threads=threads), comm))
        tn.append(timed(lambda: multiply(A, A, plan=plan, threads=threads), comm))
    if comm.Get_rank() == 0:
        mf, mn = statistics.median(tf), statistics.median(tn)
        print(f"# 1D R-MAT {scale}, {comm.Get_size()} ranks x {threads} thread(s), median of "
              f"{rounds}; load {os.getloadavg()}")
        print(f"fresh {mf:.5f} s, cached plan {mn:.5f} s, ratio {mf / mn:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--matrices", nargs="*", default=["bcsstk13.mtx", "pushpull.mtx", "rmat15"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--dist", action="store_true")
    p.add_argument("--rmat", type=int, default=14)
    a = p.parse_args()
    if a.dist:
        distributed(a.rmat, a.threads, a.rounds)
    else:
        local(a.matrices, a.threads, a.rounds)


if __name__ == "__main__":
    main()
