"""hpc.halo as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

import itertools
from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import (ALPHA, BETA, LinearModel, ModelError, Term, dims_create, factor,
                               opt, spread_factors)


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--grid NX NY NZ (global): p/p0's prime factors multiply the dimension that has grown
    least (the volume grows by p/p0 exactly)."""
    f = factor(p, p0)
    grid = A.find(argv, "--grid", 3)
    if grid is None:
        raise StudyError("weak scaling hpc.halo needs --grid NX NY NZ (the grid at the "
                         "smallest rank count) in the app options")
    return A.replace(argv, "--grid", [str(d) for d in spread_factors([int(g) for g in grid], f)])


# -- the model: T = alpha msgs(p) + beta bytes(p) + gamma cells(p) ---------------------------
def quantities(run: dict) -> dict:
    rec = run.get("record") or {}
    params = rec.get("params") or {}
    grid = params.get("grid") or opt(run, "--grid", 3)
    if not grid or len(grid) != 3:
        raise ModelError("halo model needs the global --grid")
    radius = params.get("radius") or (opt(run, "--radius") or [1])[0]
    qn = params.get("quantities") or (opt(run, "--quantities") or [1])[0]
    return {"nx": float(grid[0]), "ny": float(grid[1]), "nz": float(grid[2]),
            "radius": float(radius), "q": float(qn), "itemsize": 8.0}


def features(q: dict, p: int) -> dict:
    """One rank's exchange with its 26 neighbours (faces, edges, corners) on the process grid
    MPI_Dims_create would choose.

    A direction is a message when every axis it crosses is split over ranks (otherwise the
    neighbour is the rank itself, a local copy); its size is R per crossed axis times the
    local extent along the others. Packing work is the local block.
    """
    dims = dims_create(p, 3)
    g = sorted([q["nx"], q["ny"], q["nz"]], reverse=True)
    loc = [gi / di for gi, di in zip(g, dims)]
    msgs = 0.0
    nbytes = 0.0
    for d in itertools.product((-1, 0, 1), repeat=3):
        if d == (0, 0, 0) or any(c != 0 and dims[i] == 1 for i, c in enumerate(d)):
            continue
        cells = 1.0
        for i, c in enumerate(d):
            cells *= q["radius"] if c else loc[i]
        msgs += 1
        nbytes += cells * q["q"] * q["itemsize"]
    return {"alpha_s": msgs, "beta_s_per_B": nbytes,
            "gamma_s_per_cell": loc[0] * loc[1] * loc[2] * q["q"]}


def grow(q: dict, f: float) -> dict:
    """Weak scaling: the grid grows as :func:`weak` grows it."""
    nx, ny, nz = spread_factors([q["nx"], q["ny"], q["nz"]], int(round(f)))
    return {**q, "nx": nx, "ny": ny, "nz": nz}


SPEC = WorkloadSpec(
    name="halo",
    description="3D halo exchange with TEMPI-style canonical datatypes and packers",
    order=20,
    suite=(SuiteRow("halo", ("--grid", "16", "12", "10", "--radius", "2", "--quantities", "2",
                             "--iterations", "5", "--repeat", "2")),),
    headline=Metric("exchange_us", "us/exchange"),
    study_args=("--grid", "48", "48", "48", "--radius", "2", "--quantities", "2"),
    time_sources=("metrics.exchange_us*1e-6", "timings.exchange", "metrics.time_s"),
    weak=weak,
    model=LinearModel("halo", (Term("gamma_s_per_cell", "s", "packing per local cell", 0.0),
                               BETA, ALPHA), quantities, features, grow,
                      label="time per exchange (s)"),
    gpu_args=("--method", "gpu-staged"),
    job_args=("--grid", "512", "512", "512"),
)
