"""hpc.spgemm as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

import re
from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import (ALPHA, BETA, LinearModel, ModelError, Term, factor, log2_exact,
                               num, root_scale, scale_keys)


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--generate rmat:SCALE:EF: SCALE + log2(p/p0); poisson3d:N: N x (p/p0)^(1/3)."""
    f = factor(p, p0)
    gen = A.find(argv, "--generate")
    if gen is None:
        raise StudyError("weak scaling hpc.spgemm needs --generate rmat:SCALE:EF or "
                         "poisson3d:N (matrix files cannot grow)")
    m = re.fullmatch(r"rmat:(\d+):(\d+)", gen[0])
    if m:
        scale = int(m.group(1)) + log2_exact(f, "rmat")
        return A.replace(argv, "--generate", f"rmat:{scale}:{m.group(2)}")
    m = re.fullmatch(r"poisson3d:(\d+)", gen[0])
    if m:
        return A.replace(argv, "--generate", f"poisson3d:{root_scale(int(m.group(1)), f, 3)}")
    raise StudyError(f"weak scaling hpc.spgemm: cannot grow --generate {gen[0]!r}")


# -- the model: T = gamma products/p + beta 12 nnz(B)(p-1)/p + alpha (p-1) ------------------
def quantities(run: dict) -> dict:
    m = (run.get("record") or {}).get("metrics") or {}
    prod = num(m, "products")
    nnzb = num(m, "nnz_B", "nnz_b", "nnz_A", "nnz_a", "nnz")
    if prod is None:
        raise ModelError("spgemm model needs the metric 'products'")
    if nnzb is None:
        nnzc = num(m, "nnz_C")
        nnzb = nnzc if nnzc is not None else prod
    return {"products": prod, "nnzB": nnzb}


def features(q: dict, p: int) -> dict:
    """The multiply, and fetching B's rows from every peer in the 1D layout."""
    return {"gamma_s_per_product": q["products"] / p,
            "beta_s_per_B": 12 * q["nnzB"] * (p - 1) / p, "alpha_s": float(p - 1)}


SPEC = WorkloadSpec(
    name="spgemm",
    description="SMASH-style hash SpGEMM, 1D and 2D distributed",
    order=50,
    suite=(SuiteRow("spgemm/1d", ("--generate", "rmat:10:8", "--layout", "1d"),
                    backend="native"),
           SuiteRow("spgemm/2d", ("--generate", "rmat:10:8", "--layout", "2d"),
                    backend="native", ranks="square")),
    headline=Metric("gflops", "GFLOP/s"),
    study_args=("--generate", "rmat:11:8"),
    time_sources=("timings.spgemm", "timings.multiply", "metrics.time_s"),
    weak=weak,
    model=LinearModel("spgemm", (Term("gamma_s_per_product", "s", "per scalar product", 1e-8),
                                 BETA, ALPHA), quantities, features,
                      scale_keys(("products", "nnzB"))),
    gpu_args=("--backend", "cuda"),
    job_args=("--generate", "rmat:20:16"),
)
