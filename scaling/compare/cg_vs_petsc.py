"""Time per CG iteration: hpc.cg (native back end) against PETSc KSPCG on the same matrix.

Both run through `python -m hpc.cg` (--backend native vs --backend petsc: petsc4py KSP on the
identical distributed CSR), same preconditioner, same rtol, alternated --rounds times (best
kept). Target: hpc.cg <= 1.2x PETSc's time per iteration.

    .venv/bin/python scaling/compare/cg_vs_petsc.py [--problems poisson3d:64,hpcg:64] [--ranks 1,2] [--pcs jacobi,none]
"""
from __future__ import annotations

import argparse
import sys

from cg_common import have_petsc, run_json, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="poisson3d:64,hpcg:64")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--pcs", default="jacobi,none")
    ap.add_argument("--rtol", default="1e-8")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if not have_petsc():
        print("petsc4py is not installed: pip install .[petsc] (or HPC_WITH_PETSC=1 make test)")
        return 2
    rows = []
    for spec in a.problems.split(","):
        for p in [int(v) for v in a.ranks.split(",")]:
            for pc in a.pcs.split(","):
                method = "cg" if pc == "none" else "pcg"
                best = {}
                for _ in range(a.rounds):
                    for be in ("native", "petsc"):
                        rec = run_json(p, ["--problem", spec, "--method", method, "--pc", pc, "--rtol",
                                           a.rtol, "--backend", be, "--quiet"])
                        m = rec["metrics"]
                        tpi = m["time_s"] / max(1, m["iterations"])
                        if be not in best or tpi < best[be][0]:
                            best[be] = (tpi, m["iterations"])
                (tn, itn), (tp, itp) = best["native"], best["petsc"]
                rows.append([spec, p, pc, itn, itp, round(1e3 * tn, 3), round(1e3 * tp, 3), round(tn / tp, 3)])
                print(" | ".join(str(v) for v in rows[-1]), file=sys.stderr, flush=True)
    print(table(["problem", "ranks", "pc", "its hpc.cg", "its PETSc", "ms/it hpc.cg", "ms/it PETSc",
                 "ratio"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
