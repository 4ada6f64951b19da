"""hpc.kmedoids as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

import re
from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import (LAMBDA, LinearModel, ModelError, Term, factor, log2, num, opt,
                               root_scale, scale_keys)


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--data blobs:N:D:K | uniform:N:D: N x (p/p0)^(1/2) (the O(N^2) distance work)."""
    f = factor(p, p0)
    for name in ("--data", "--generate"):
        val = A.find(argv, name)
        m = re.fullmatch(r"(blobs|uniform):(\d+)(:.*)?", val[0]) if val else None
        if m:
            n = root_scale(int(m.group(2)), f, 2)
            return A.replace(argv, name, f"{m.group(1)}:{n}{m.group(3) or ''}")
    raise StudyError("weak scaling hpc.kmedoids needs a generated data set "
                     "(--data blobs:N:D:K or uniform:N:D; a data file cannot grow)")


# -- the model: T = gamma n^2/p + lambda log2 p ----------------------------------------------
def quantities(run: dict) -> dict:
    m = (run.get("record") or {}).get("metrics") or {}
    n = num(m, "n", "rows", "points")
    if n is None:
        for name in ("--data", "--generate"):
            val = opt(run, name)
            mm = re.fullmatch(r"(?:blobs|uniform):(\d+).*", val[0]) if val else None
            if mm:
                n = float(mm.group(1))
    if n is None:
        raise ModelError("kmedoids model needs the number of rows (metric n, or a generator)")
    return {"n2": n * n}


def features(q: dict, p: int) -> dict:
    return {"gamma_s_per_pair": q["n2"] / p, "lambda_s": log2(p)}


SPEC = WorkloadSpec(
    name="kmedoids",
    description="PAM, FastPAM1/2, FasterPAM, CLARA, CLARANS, OneBatchPAM, medoid silhouette "
                "(FastMSC, FasterMSC, DynMSC), distributed",
    order=40,
    suite=(SuiteRow("kmedoids", ("--data", "blobs:2000:8:10", "--k", "10", "--method",
                                 "fasterpam")),),
    headline=Metric("loss", "loss"),
    study_args=("--data", "blobs:1500:8:5", "--k", "5", "--method", "fasterpam"),
    time_sources=("timings.distances+timings.cluster", "timings.fit",
                  "timings.build+timings.swap", "metrics.time_s"),
    weak=weak,
    model=LinearModel("kmedoids", (Term("gamma_s_per_pair", "s", "per distance pair", 1e-8),
                                   LAMBDA), quantities, features, scale_keys(("n2",))),
    gpu_args=("--backend", "cupy"),
    job_args=("--data", "blobs:100000:16:10", "--k", "10"),
)
