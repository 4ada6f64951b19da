"""Iterations and time per method and preconditioner on one problem (default hpcg:64).

    .venv/bin/python scaling/compare/cg_methods.py [--problem hpcg:64] [--ranks 2] [--rtol 1e-8]
"""
from __future__ import annotations

import argparse
import sys

from cg_common import run_json, table

CASES = [("cg", "none", []), ("pcg", "jacobi", []), ("pcg", "bjacobi", ["--sub-pc", "sgs"]),
         ("pcg", "bjacobi", ["--sub-pc", "icc"]), ("pcg", "chebyshev", ["--cheb-degree", "3"]),
         ("pcg", "mg", []), ("cg1", "jacobi", []), ("pipecg", "jacobi", []), ("pipecg", "mg", [])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="hpcg:64")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rtol", default="1e-8")
    ap.add_argument("--repeat", default="2", help="solves per case (best time kept)")
    a = ap.parse_args()
    rows = []
    for method, pc, extra in CASES:
        rec = run_json(a.ranks, ["--problem", a.problem, "--method", method, "--pc", pc, "--rtol", a.rtol,
                                 "--repeat", a.repeat, "--quiet"] + extra)
        m, t = rec["metrics"], rec["timings"]
        label = pc + (f" ({extra[1]})" if extra and pc == "bjacobi" else "")
        rows.append([method, label, m["iterations"], m["converged"], f"{m['final_relres']:.2e}",
                     round(t["pc_setup"]["min"], 3), round(m["time_s"], 3),
                     round(1e3 * m["time_s"] / max(1, m["iterations"]), 2)])
        print(" | ".join(str(v) for v in rows[-1]), file=sys.stderr, flush=True)
    print(f"{a.problem}, {a.ranks} rank(s), rtol {a.rtol}, native back end\n")
    print(table(["method", "pc", "iterations", "converged", "true relres", "pc setup s", "solve s",
                 "ms/iteration"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
