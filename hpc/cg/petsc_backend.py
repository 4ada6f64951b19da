"""--backend petsc: the same distributed system solved by petsc4py's KSP, for side-by-side runs.

The matrix is handed to PETSc as this rank's CSR rows (MatCreateAIJ with the same row
partition), so PETSc solves exactly our system. Settings that make the iteration counts
comparable with hpc.cg's: zero initial guess, convergence on the unpreconditioned residual
norm relative to ||b|| (KSP_NORM_UNPRECONDITIONED), absolute tolerance ``opts.atol`` (off
when 0). The operator and the preconditioner are set up once; :meth:`PetscSolver.solve` takes
the right-hand side.
Mapping: cg/pcg -> KSPCG, pipecg -> KSPPIPECG; none/jacobi/bjacobi/gamg -> PCNONE/PCJACOBI/
PCBJACOBI (sub-PC ICC(0) for --sub-pc icc, SOR with symmetric sweeps for sgs)/PCGAMG.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hpc.core.errors import UsageError

from .methods import Problem, SolveOptions, SolveResult

KSP_TYPES = {"cg": "cg", "pcg": "cg", "pipecg": "pipecg"}


class PetscSolver:
    def __init__(self, problem: Problem, opts: SolveOptions):
        if not hasattr(problem.A, "local"):
            raise UsageError("--backend petsc needs an assembled matrix (hpc.sparse.DistCSR)")
        import petsc4py  # optional dependency: imported only for --backend petsc

        petsc4py.init([])
        from petsc4py import PETSc

        self.PETSc = PETSc
        self.problem, self.opts = problem, opts
        A = problem.A
        comm = PETSc.Comm(problem.comm)
        L = A.local
        n_loc = A.local_rows
        N = A.shape[0]
        self.mat = PETSc.Mat().createAIJ(
            size=((n_loc, N), (A.local_cols, A.shape[1])),
            csr=(L.indptr.astype(PETSc.IntType), L.indices.astype(PETSc.IntType),
                 L.data.astype(PETSc.ScalarType)), comm=comm)
        self.mat.assemble()
        self.b = self.mat.createVecLeft()
        self.x = self.mat.createVecRight()
        ksp = PETSc.KSP().create(comm=comm)
        ksp.setOperators(self.mat)
        ksp.setType(KSP_TYPES[opts.method])
        pc = ksp.getPC()
        pcname = opts.pc or "none"
        pc.setType({"none": "none", "jacobi": "jacobi", "bjacobi": "bjacobi", "gamg": "gamg"}[pcname])
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        ksp.setTolerances(rtol=opts.rtol, atol=opts.atol if opts.atol > 0 else 1e-300,
                          max_it=opts.maxiter)
        ksp.setInitialGuessNonzero(False)
        ksp.setConvergenceHistory(length=opts.maxiter + 1)
        ksp.setUp()
        if pcname == "bjacobi":
            sub = (opts.pc_options or {}).get("sub_pc", "sgs")
            for k in pc.getBJacobiSubKSP():
                k.setType("preonly")
                spc = k.getPC()
                if sub == "icc":
                    spc.setType("icc")
                else:  # PCSOR's default: one local symmetric sweep, omega 1 (= our SGS)
                    spc.setType("sor")
                k.setUp()
        self.ksp = ksp
        self.pcname = pcname

    def solve(self, b=None) -> SolveResult:
        """Solve for ``b`` (this rank's rows; None: the problem's right-hand side) from x = 0."""
        self.b.setArray(np.asarray(self.problem.b if b is None else b, dtype=np.float64))
        self.x.set(0.0)
        self.ksp.solve(self.b, self.x)
        reason = int(self.ksp.getConvergedReason())
        its = int(self.ksp.getIterationNumber())
        hist = np.asarray(self.ksp.getConvergenceHistory(), dtype=np.float64)
        bn = self.b.norm()
        rel = (hist / bn).tolist() if bn > 0 else hist.tolist()
        x = np.array(self.x.getArray(), dtype=np.float64)
        breakdown = None
        if reason in (-3, -4, -5, -7, -8, -9, -11):   # indefinite or breakdown reasons
            breakdown = f"PETSc KSP diverged with reason {reason} ({self._reason_name(reason)})"
        return SolveResult(x, reason > 0, its, rel, breakdown, extra={"petsc_reason": reason})

    def _reason_name(self, reason: int) -> str:
        R = self.PETSc.KSP.ConvergedReason
        for k in dir(R):
            if not k.startswith("_") and getattr(R, k) == reason:
                return k
        return str(reason)

    def describe(self) -> dict[str, Any]:
        return {"ksp": self.ksp.getType(), "pc": self.ksp.getPC().getType(),
                "version": ".".join(str(v) for v in self.PETSc.Sys.getVersion())}
