"""SpGEMM on a set of structure families, native against SciPy and SuiteSparse:GraphBLAS.

Families (each at the sizes ``--sizes``, seeded): banded (bandwidth 5), uniform (8 random
columns per row), powerlaw (row lengths from a Zipf law, mean ~8), block (dense 16 x 16
diagonal blocks), denserows (uniform with a few rows of n/8 entries), unsymmetric (A B, B
another uniform matrix), rectangular (n x n/2 times n/2 x 2n), rmat (Graph500, edge factor
8); plus the Matrix Market files in ../shared/data/matrices (C = A A).

Rounds interleave the kernels, each round starting one kernel later; GraphBLAS's rounds run
after the others' (see main). The kernels: SciPy ``A @ B``; ``native-Nt``:
``hpc.spgemm.local.multiply_native``, the two-phase kernel, at each thread count; GraphBLAS
``mxm`` at each thread count, conversion excluded. The table gives
each kernel's median time and the ratios of medians the issue sets targets for: native at 2
threads over SciPy (>= 2) and over GraphBLAS at 2 threads (>= 1), native at 1 thread over
SciPy (>= 1). SciPy's ``A @ B`` leaves each row's columns unsorted while the native product is
canonical (sorted): the column ``scipy+sort`` times SciPy's product followed by
``sort_indices()``, and ``n1/ss`` is native at 1 thread over it, a second reference beside the
headline (the targets stay against plain ``A @ B``). ``onepass-Nt`` forces the one-pass kernel
on exactly N threads (native/src/spgemm_onepass.cpp, ``fixed_threads``: its own scaling, apart
from its thread model's choice; ``o2/sp``, ``o1/sp`` its ratios over SciPy); ``auto-Nt`` times
``multiply(A, B, "native", N)``, what the API runs (the dispatch between the two kernels and
the measured thread model: ``a2/sp``, ``a1/sp``, ``a2/gb2`` are the issue's targets for it);
the column ``auto`` names the kernel it chose and the last how many of its N-thread calls ran
on N threads. The load average is printed: on a loaded machine these are noise.

    python scaling/compare/spgemm_families.py --sizes 2500 13000 100000 --rounds 5
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

from hpc.sparse.randgen import rmat_edges
from hpc.spgemm import local as L

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "matrices"


def _uniform(rng, m, n, per_row):
    rows = np.repeat(np.arange(m), per_row)
    return L.canonical(sp.csr_matrix((rng.random(rows.size), (rows, rng.integers(0, n, rows.size))),
                                     shape=(m, n)))


def family(name: str, n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng([seed, n])
    if name == "banded":
        A = sp.diags([rng.random(n - abs(k)) for k in range(-5, 6)], list(range(-5, 6)))
        A = L.canonical(A)
        return A, A
    if name == "uniform":
        A = _uniform(rng, n, n, 8)
        return A, A
    if name == "powerlaw":
        lens = np.minimum(rng.zipf(2.0, n) * 4, n // 4)
        rows = np.repeat(np.arange(n), lens)
        A = L.canonical(sp.csr_matrix((rng.random(rows.size), (rows, rng.integers(0, n, rows.size))),
                                      shape=(n, n)))
        return A, A
    if name == "block":
        b = 16
        nb = n // b
        blocks = [sp.csr_matrix(rng.random((b, b))) for _ in range(nb)]
        A = L.canonical(sp.block_diag(blocks))
        return A, A
    if name == "denserows":
        A = _uniform(rng, n, n, 4).tolil()
        for i in rng.choice(n, size=4, replace=False):
            A[i, rng.choice(n, size=n // 8, replace=False)] = 1.0
        A = L.canonical(A)
        return A, A
    if name == "unsymmetric":
        return _uniform(rng, n, n, 7), _uniform(rng, n, n, 7)
    if name == "rectangular":
        return _uniform(rng, n, n // 2, 6), _uniform(rng, n // 2, 2 * n, 6)
    if name == "rmat":
        scale = max(4, int(round(np.log2(n))))
        s, d = rmat_edges(scale, 8, seed, None)
        A = sp.csr_matrix((np.ones(s.size), (s, d)), shape=(1 << scale, 1 << scale))
        A.sum_duplicates()
        A.data[:] = 1.0
        A = L.canonical(A)
        return A, A
    raise ValueError(name)


FAMILIES = ("banded", "uniform", "powerlaw", "block", "denserows", "unsymmetric",
            "rectangular", "rmat")


def _scipy_sorted(A, B):
    C = A @ B
    C.sort_indices()  # SciPy's SMMP leaves each row's columns unsorted; the native output is sorted
    return C


def memory_needed(A, B) -> int:
    """Bytes a matrix's rounds may need, with C bounded by the products (12 bytes an entry:
    column and value): the check holds the native and SciPy products, their difference and
    its absolute value; a timed kernel its output and temporaries sized by the products (the
    one-pass kernel's room, the two-phase symbolic lists), GraphBLAS its own; so 8 such.
    (rmat at --sizes 100000, scale 17: 0.33 G products, 29 GiB by this bound; the OOM killer
    stopped the benchmark there on a 24 GB machine before this check.)"""
    return 8 * 12 * L.products(A, B)


def kernels(threads, clock=time.perf_counter):
    # "scipy" (plain A @ B) is the reference the targets are stated against; "scipy+sort" (the
    # same product brought to sorted columns, as every native result is) is a second,
    # labelled reference only.
    ks = {"scipy": lambda A, B: A @ B, "scipy+sort": _scipy_sorted}
    for t in threads:
        ks[f"native-{t}t"] = (lambda t: lambda A, B: L.multiply_native(A, B, t))(t)
    for t in threads:  # the one-pass kernel, forced, on exactly t threads (no thread model)
        ks[f"onepass-{t}t"] = (lambda t: lambda A, B: L.multiply_native(
            A, B, t, onepass=1, fixed_threads=True))(t)
    for t in threads:  # what the API runs: multiply(A, B, "native") and its dispatch
        ks[f"auto-{t}t"] = (lambda t: lambda A, B: L.multiply(A, B, "native", t))(t)
    try:
        import graphblas as gb

        gb.init("suitesparse", blocking=True)
        for t in threads:
            def g(A, B, t=t, cache={}):
                key = (id(A), id(B))
                if key not in cache:
                    cache.clear()
                    cache[key] = (gb.io.from_scipy_sparse(A), gb.io.from_scipy_sparse(B))
                GA, GB = cache[key]
                gb.ss.config["nthreads"] = t
                t0 = clock()
                C = GA.mxm(GB, gb.semiring.plus_times).new()
                C.wait()
                return clock() - t0
            ks[f"graphblas-{t}t"] = g
    except ImportError:
        print("# python-graphblas not installed: GraphBLAS skipped")
    return ks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="*", default=list(FAMILIES))
    p.add_argument("--sizes", type=int, nargs="+", default=[2500, 13000])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--mtx", action="store_true", help="also the files in shared/data/matrices")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--clock", choices=("wall", "thread"), default="wall",
                   help="thread: CPU time of the calling thread (time.thread_time), which a "
                        "loaded machine inflates far less than wall time; only meaningful "
                        "with --threads 1 (every 1-thread kernel runs on the calling thread)")
    a = p.parse_args()
    if a.clock == "thread" and a.threads != [1]:
        p.error("--clock thread needs --threads 1")
    clock = time.thread_time if a.clock == "thread" else time.perf_counter
    ks = kernels(a.threads, clock)
    cases = [(f"{f}-{n}", lambda f=f, n=n: family(f, n, a.seed)) for f in a.families
             for n in a.sizes]
    if a.mtx:
        for f in sorted(DATA.glob("*.mtx")):
            cases.append((f.name, lambda f=f: (lambda M: (M, M))(L.canonical(scipy.io.mmread(f)))))
    print(f"# {os.cpu_count()} cores; median of {a.rounds} interleaved rounds; {a.clock} clock; "
          f"load {os.getloadavg()}")
    print(f"{'matrix':<20}{'products':>11}{'nnz(C)':>10}" + "".join(f"{k:>14}" for k in ks)
          + f"{'n2/sp':>7}{'n1/sp':>7}{'n2/gb2':>7}{'n1/ss':>7}{'o2/sp':>7}{'o1/sp':>7}"
          + f"{'a2/sp':>7}{'a1/sp':>7}{'a2/gb2':>7}  auto  a2 calls on {max(a.threads)}t")
    for name, make in cases:
        A, B = make()
        need = memory_needed(A, B)
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if need > free:  # a product this machine cannot hold: said, not killed by the OOM killer
            print(f"{name:<20}{L.products(A, B):>11}  skipped: may need up to "
                  f"{need / 2**30:.1f} GiB (memory_needed), {free / 2**30:.1f} GiB free", flush=True)
            continue
        C, st = L.multiply_native(A, B, 1)
        _, path = L.multiply(A, B, "native", 1)  # the path the dispatch takes (column "auto")
        R = (A @ B).tocsr()
        assert C.nnz >= R.nnz and abs(C - R).max() <= 1e-9 * max(1.0, abs(R).max())
        times = {k: [] for k in ks}
        t2 = max(a.threads)
        ran = []  # the thread counts the dispatched t2-thread calls ran on (the thread model's)
        # GraphBLAS's rounds after the others': a SciPy product right after GraphBLAS ones
        # spent 110-135 ms in the kernel (system time, faulting its NumPy arrays) against
        # 0-24 ms otherwise (powerlaw-13000: 160-200 against 47-58 ms; denserows-100000 up to
        # 104 against 36-38), for a call or two. Within each block a round starts one kernel
        # later than the last, so no kernel always follows the same one.
        blocks = [[kv for kv in ks.items() if not kv[0].startswith("graphblas")],
                  [kv for kv in ks.items() if kv[0].startswith("graphblas")]]
        order = [(rnd, blk) for blk in blocks if blk for rnd in range(a.rounds)]
        for rnd, blk in order:
            for k, f in blk[rnd % len(blk):] + blk[:rnd % len(blk)]:
                t0 = clock()
                r = f(A, B)
                dt = r if isinstance(r, float) else clock() - t0
                times[k].append(dt)
                if k == f"auto-{t2}t":
                    ran.append(r[1].get("threads", t2))
                del r
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = lambda x, y: med[x] / med[y] if x in med and y in med else float("nan")  # noqa
        print(f"{name:<20}{st['products']:>11}{C.nnz:>10}" + "".join(f"{med[k]:>14.5f}" for k in ks)
              + f"{ratio('scipy', f'native-{t2}t'):>7.2f}{ratio('scipy', 'native-1t'):>7.2f}"
              + f"{ratio(f'graphblas-{t2}t', f'native-{t2}t'):>7.2f}"
              + f"{ratio('scipy+sort', 'native-1t'):>7.2f}"
              + f"{ratio('scipy', f'onepass-{t2}t'):>7.2f}{ratio('scipy', 'onepass-1t'):>7.2f}"
              + f"{ratio('scipy', f'auto-{t2}t'):>7.2f}{ratio('scipy', 'auto-1t'):>7.2f}"
              + f"{ratio(f'graphblas-{t2}t', f'auto-{t2}t'):>7.2f}"
              + f"  {'onepass' if path['onepass'] else 'two-phase'}"
              + f"  {sum(x == t2 for x in ran)}/{len(ran)}", flush=True)
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
