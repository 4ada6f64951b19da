"""hpc.train as the suite, the scaling tools and the job generator see it (hpc.core.spec)."""
from __future__ import annotations

from typing import Sequence

from hpc.core.spec import Metric, StudyError, SuiteRow, WorkloadSpec
from hpc.scaling import argv as A
from hpc.scaling.rules import BETA, LAMBDA, LinearModel, Term, factor, log2, opt, scale_keys


def weak(argv: Sequence[str], p: int, p0: int) -> list[str]:
    """--global-batch B: B x p/p0 (the batch per data-parallel rank stays constant)."""
    f = factor(p, p0)
    gb = A.find(argv, "--global-batch")
    if gb is None:
        raise StudyError("weak scaling hpc.train needs --global-batch B (the batch at the "
                         "smallest rank count)")
    return A.replace(argv, "--global-batch", str(int(gb[0]) * f))


def layout(argv: Sequence[str], p: int) -> list[str]:
    """tp x pp x dp = ranks: keep the given tp and pp, give the rest to data parallelism."""
    tp = int((A.find(argv, "--tp") or ["1"])[0])
    pp = int((A.find(argv, "--pp") or ["1"])[0])
    if p % (tp * pp):
        raise StudyError(f"hpc.train: {p} ranks are not a multiple of tp x pp = {tp * pp}")
    return A.replace(argv, "--dp", str(p // (tp * pp)))


# -- the model, per step: T = gamma 6 N tokens/p + beta 2 N 8 (dp-1)/dp/(tp pp) + lambda log2 p
def quantities(run: dict) -> dict:
    prm = (run.get("record") or {}).get("params") or {}

    def val(name: str, default: float) -> float:
        v = prm.get(name.lstrip("-").replace("-", "_"))
        if v is None:
            v = (opt(run, name) or [default])[0]
        return float(v)

    L, h, V = val("--layers", 2), val("--hidden", 64), val("--vocab", 256)
    N = 12 * L * h * h + V * h
    tokens = val("--global-batch", 8) * val("--seq-len", 32)
    return {"N": N, "tokens": tokens, "tp": val("--tp", 1), "pp": val("--pp", 1)}


def features(q: dict, p: int) -> dict:
    """6 N flops per token, the data-parallel gradient allreduce, the latency tree."""
    dp = max(1.0, p / (q["tp"] * q["pp"]))
    return {"gamma_s_per_flop": 6 * q["N"] * q["tokens"] / p,
            "beta_s_per_B": 2 * q["N"] * 8 * (dp - 1) / dp / (q["tp"] * q["pp"]),
            "lambda_s": log2(p)}


_SMALL = ("--hidden", "32", "--heads", "4", "--seq-len", "32")

SPEC = WorkloadSpec(
    name="train",
    description="Megatron-style tensor x pipeline x data parallel GPT training",
    order=70,
    suite=(SuiteRow("train/dp", ("--layers", "2", *_SMALL, "--global-batch", "12",
                                 "--micro-batches", "1", "--steps", "3", "--dtype", "float64")),
           SuiteRow("train/tp2xpp2", ("--tp", "2", "--pp", "2", "--layers", "4", *_SMALL,
                                      "--global-batch", "8", "--micro-batches", "4", "--steps",
                                      "4", "--dtype", "float64"), ranks="multiple:4")),
    headline=Metric("tokens_per_s", "tokens/s"),
    study_args=("--layers", "2", "--hidden", "64", "--heads", "4", "--seq-len", "32",
                "--vocab", "256", "--global-batch", "8", "--micro-batches", "2", "--steps", "4"),
    time_sources=("metrics.step_time_s", "timings.step", "metrics.time_s"),
    weak=weak,
    layout=layout,
    model=LinearModel("train", (Term("gamma_s_per_flop", "s", "inverse FLOP rate", 1e-10),
                                BETA, LAMBDA), quantities, features, scale_keys(("tokens",)),
                      label="time per step (s)"),
    gpu_args=("--backend", "cupy"),
    # a cluster run survives its time limit: checkpoints every 50 steps, SIGUSR1 (the job
    # script's --signal) writes one and exits 0, and the same script resubmitted resumes
    job_args=("--layers", "12", "--hidden", "768", "--heads", "12", "--seq-len", "1024",
              "--global-batch", "64", "--steps", "100", "--save-dir", "checkpoints",
              "--save-every", "50", "--resume", "auto"),
)
