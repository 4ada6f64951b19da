"""hpc.cg as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

import re
from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import (BETA, LAMBDA, LinearModel, ModelError, Term, factor, log2, num,
                               opt, root_scale)

_DIM = {"poisson2d": 2, "poisson3d": 3, "hpcg": 3}
_STENCIL = {"poisson2d": (5, 2), "poisson3d": (7, 3), "hpcg": (27, 3)}
#: allreduces on the critical path of one iteration
_ALLREDUCES = {"cg": 2.0, "pcg": 2.0, "cg1": 1.0, "pipecg": 1.0}


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--problem poisson2d:N: N x (p/p0)^(1/2); poisson3d:N | hpcg:N: N x (p/p0)^(1/3)."""
    f = factor(p, p0)
    prob = A.find(argv, "--problem")
    if A.find(argv, "--matrix") is not None or prob is None:
        raise StudyError("weak scaling hpc.cg needs a generated --problem "
                         "poisson2d:N|poisson3d:N|hpcg:N (a --matrix file cannot grow)")
    m = re.fullmatch(r"(poisson2d|poisson3d|hpcg):(\d+)", prob[0])
    if not m:
        raise StudyError(f"weak scaling hpc.cg: cannot grow --problem {prob[0]!r}")
    kind, n = m.group(1), int(m.group(2))
    return A.replace(argv, "--problem", f"{kind}:{root_scale(n, f, _DIM[kind])}")


# -- the model, per iteration: T = gamma nnz/p + beta halo(p) + lambda k log2 p -------------
def quantities(run: dict) -> dict:
    rec = run.get("record") or {}
    m = rec.get("metrics") or {}
    params = rec.get("params") or {}
    method = str(params.get("method") or (opt(run, "--method") or ["cg"])[0])
    prob = params.get("problem") or (opt(run, "--problem") or [None])[0]
    nnz = num(m, "nnz", "nnz_A")
    n = num(m, "n", "rows", "unknowns")
    plane, dim = None, 3.0
    mm = re.fullmatch(r"(poisson2d|poisson3d|hpcg):(\d+)", str(prob)) if prob else None
    if mm:
        pts, d = _STENCIL[mm.group(1)]
        side = int(mm.group(2))
        n = n or float(side ** d)
        nnz = nnz or float(pts * side ** d)
        plane = float(side ** (d - 1))
        dim = float(d)
    if nnz is None or n is None:
        raise ModelError("cg model needs nnz and n (metrics) or a generated --problem")
    return {"nnz": nnz, "n": n, "plane": plane if plane is not None else n ** (2 / 3),
            "dim": dim, "k": _ALLREDUCES.get(method, 2.0), "method": method}


def features(q: dict, p: int) -> dict:
    """The SpMV and vector work, the halo of two grid planes, k allreduces."""
    return {"gamma_s_per_nnz": q["nnz"] / p,
            "beta_s_per_B": (2 * q["plane"] * 8 if p > 1 else 0.0),
            "lambda_s": q["k"] * log2(p)}


def grow(q: dict, f: float) -> dict:
    """Weak scaling: unknowns and nonzeros grow by f, a grid plane by f^((dim-1)/dim)."""
    dim = q.get("dim", 3.0)
    return {**q, "nnz": q["nnz"] * f, "n": q["n"] * f,
            "plane": q["plane"] * f ** ((dim - 1) / dim)}


def predict_variant(theta: dict, f: dict, q: dict, p: int, method: str) -> float:
    """The fit's prediction for another method: pipelined CG (Ghysels-Vanroose) overlaps its
    one allreduce with the SpMV, T = max(gamma nnz/p, lambda log2 p) + beta halo(p); the
    others pay their allreduces, T = gamma nnz/p + beta halo(p) + lambda k log2 p."""
    if method == "pipecg":
        comp = theta["gamma_s_per_nnz"] * f["gamma_s_per_nnz"]
        lat = theta["lambda_s"] * log2(p)
        return max(comp, lat) + theta["beta_s_per_B"] * f["beta_s_per_B"]
    f = {**f, "lambda_s": {"cg": 2.0, "pcg": 2.0, "cg1": 1.0}.get(method, 2.0) * log2(p)}
    return float(sum(theta[n] * f[n] for n in theta))


SPEC = WorkloadSpec(
    name="cg",
    description="CG, PCG, single-reduction and pipelined CG, DCDM",
    order=60,
    suite=(SuiteRow("cg/pcg-mg", ("--problem", "hpcg:16", "--method", "pcg", "--pc", "mg"),
                    backend="native"),
           SuiteRow("cg/pipecg", ("--problem", "poisson3d:16", "--method", "pipecg"),
                    backend="native"),
           SuiteRow("cg/dcdm", ("--problem", "poisson3d:16", "--method", "dcdm", "--rtol", "1e-6",
                                "--backend", "numpy"))),
    headline=Metric("iterations", "iterations"),
    study_args=("--problem", "poisson3d:24", "--rtol", "1e-6"),
    time_sources=("timings.solve", "timings.cg", "metrics.solve_s", "metrics.time_s"),
    weak=weak,
    model=LinearModel("cg", (Term("gamma_s_per_nnz", "s", "SpMV + vector work per nonzero", 2e-9),
                             LAMBDA, BETA), quantities, features, grow, per_iteration=True,
                      label="time per iteration (s)",
                      variants=(("cg", "classic CG (2 allreduces)"),
                                ("pipecg", "pipelined CG (1 hidden allreduce)")),
                      predict_variant=predict_variant),
    iterations_key="iterations",
    gpu_args=("--backend", "cupy"),
    job_args=("--problem", "hpcg:192"),
)
