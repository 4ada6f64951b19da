"""Where a small SpGEMM's time goes: SciPy against the native kernel, split by layer.

For each case (default: the small products the issue names, ani4, dwt_992, 1138_bus, banded,
unsymmetric and rectangular at 2500 rows) the rounds ALTERNATE, per round:

    scipy      ``A @ B``
    wrap-t     ``hpc.spgemm.local.multiply_native(A, B, t)`` (Python wrapper, checks, output
               wrapping), for each thread count t of ``--threads``
    raw-t      the extension call alone (``hpc._core.spgemm.multiply_i32``), same t

and report each one's median (microseconds), the wrapper's cost (wrap - raw), the kernel's own
phase split of its last raw call (plan, symbolic, numeric: see the stats of ``multiply``,
output allocation included in the symbolic/numeric boundary), the thread count the measured
thread model chose (native/include/hpc/thread_model.hpp), and the ratios SciPy / wrap. The
case ``fixed`` (an 8 x 8 identity) gives each side's fixed cost per call. The
load average is printed before and after: on a loaded machine the 2-thread times are noise,
and the model then keeps one thread (that is its job).

    OMP_NUM_THREADS=2 python scaling/compare/spgemm_small_profile.py --rounds 41
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse

from hpc.spgemm import local as L
from spgemm_families import family

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "matrices"
CASES = ("fixed", "ani4.mtx", "dwt_992.mtx", "1138_bus.mtx", "banded-2500", "unsymmetric-2500",
         "rectangular-2500")


def load(name: str, seed: int):
    if name == "fixed":  # an 8 x 8 identity: what each side costs per call before any work
        A = L.canonical(scipy.sparse.identity(8, format="csr"))
        return A, A
    if name.endswith(".mtx"):
        A = L.canonical(scipy.io.mmread(DATA / name))
        return A, A
    fam, n = name.rsplit("-", 1)
    return family(fam, int(n), seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", default=list(CASES),
                   help="NAME.mtx in shared/data/matrices or FAMILY-N (spgemm_families.py)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=41)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    core = L._native_core()
    print(f"# {os.cpu_count()} cores; median of {a.rounds} alternating rounds, us; "
          f"load {os.getloadavg()}")
    for name in a.cases:
        A, B = load(name, a.seed)
        dt = L._index_dtype(A, B, B.shape[1])
        if dt != np.int32:
            raise SystemExit(f"{name}: int64 indices, not a small product")
        ops = L._operands(A, B, dt)

        def raw(t, A=A, B=B, ops=ops):
            return core.multiply_i32(*ops[:3], A.shape[0], A.shape[1], *ops[3:], B.shape[1], t)

        calls = {"scipy": lambda A=A, B=B: A @ B}
        for t in a.threads:
            calls[f"wrap-{t}"] = lambda t=t, A=A, B=B: L.multiply_native(A, B, t)
            calls[f"raw-{t}"] = lambda t=t: raw(t)
        times: dict[str, list[float]] = {k: [] for k in calls}
        last = {}
        for _ in range(a.rounds):
            for k, f in calls.items():
                t0 = time.perf_counter()
                r = f()
                times[k].append(time.perf_counter() - t0)
                if k.startswith("raw"):
                    last[k] = r[3]
        med = {k: 1e6 * statistics.median(v) for k, v in times.items()}
        line = f"{name:<18} products {last[f'raw-{a.threads[0]}']['products']:>9}  " \
               f"scipy {med['scipy']:8.1f}"
        for t in a.threads:
            st = last[f"raw-{t}"]
            line += (f" | t={t}: wrap {med[f'wrap-{t}']:8.1f} raw {med[f'raw-{t}']:8.1f}"
                     f" (wrapper {med[f'wrap-{t}'] - med[f'raw-{t}']:5.1f}) ran on"
                     f" {st['threads']} thr, plan/sym/num {1e6 * st['plan_s']:.0f}/"
                     f"{1e6 * st['symbolic_s']:.0f}/{1e6 * st['numeric_s']:.0f}"
                     f" sp/wrap {med['scipy'] / med[f'wrap-{t}']:.2f}")
        print(line, flush=True)
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
