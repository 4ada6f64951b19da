"""hpc.pagerank as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

import re
from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import (ALPHA, BETA, LinearModel, ModelError, Term, factor, log2,
                               log2_exact, num, opt, scale_keys)


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--generate kron:SCALE:EF: SCALE + log2(p/p0) (rank ratios powers of 2)."""
    f = factor(p, p0)
    gen = A.find(argv, "--generate")
    m = re.fullmatch(r"kron:(\d+):(\d+)", gen[0]) if gen else None
    if not m:
        raise StudyError("weak scaling hpc.pagerank needs --generate kron:SCALE:EDGEFACTOR "
                         "(a --graph file cannot grow)")
    scale = int(m.group(1)) + log2_exact(f, "kron")
    return A.replace(argv, "--generate", f"kron:{scale}:{m.group(2)}")


# -- the model, per iteration: T = gamma E/p + beta 8V(p-1)/p + alpha log2 p ------------------
def quantities(run: dict) -> dict:
    m = (run.get("record") or {}).get("metrics") or {}
    v = num(m, "vertices", "num_vertices", "n", "nodes")
    e = num(m, "edges", "num_edges", "nnz", "arcs")
    if v is None or e is None:
        gen = opt(run, "--generate")
        mm = re.fullmatch(r"kron:(\d+):(\d+)", gen[0]) if gen else None
        if not mm:
            raise ModelError("pagerank model needs vertex/edge counts (metrics) or kron:S:EF")
        v = float(2 ** int(mm.group(1)))
        e = v * int(mm.group(2))
    return {"V": v, "E": e}


def features(q: dict, p: int) -> dict:
    """The SpMV, the allgather of the rank vector, the allreduce of the residual."""
    return {"gamma_s_per_edge": q["E"] / p, "beta_s_per_B": 8 * q["V"] * (p - 1) / p,
            "alpha_s": log2(p)}


SPEC = WorkloadSpec(
    name="pagerank",
    description="distributed PageRank and PowerWalk personalized PageRank",
    order=30,
    suite=(SuiteRow("pagerank", ("--generate", "kron:12:8", "--check"), backend="native"),
           SuiteRow("pagerank/2d", ("--generate", "kron:12:8", "--layout", "2d", "--check"),
                    backend="native"),
           SuiteRow("pagerank/ppr", ("ppr", "--generate", "kron:10:8", "--sources", "random:50",
                                     "--check"), backend="native")),
    headline=Metric("iterations", "iterations"),
    study_args=("--generate", "kron:12:8"),
    time_sources=("timings.pagerank", "timings.iterate", "timings.solve", "metrics.time_s"),
    weak=weak,
    model=LinearModel("pagerank", (Term("gamma_s_per_edge", "s", "SpMV per edge", 2e-9),
                                   BETA, ALPHA), quantities, features, scale_keys(("V", "E")),
                      per_iteration=True, label="time per iteration (s)"),
    iterations_key="iterations",
    gpu_args=("--backend", "cupy"),
    job_args=("--generate", "kron:22:16"),
)
