"""hpc.train tokens/s against PyTorch on the CPU: the same GPT (same parameters, batches and
Adam), float32, one rank, the same number of threads; rounds alternate the two and the best
round of each counts. Target: hpc.train >= 0.7x PyTorch.

    .venv/bin/python scaling/compare/train_torch_bench.py [--config small|medium] [--rounds R] \
        [--threads T]

PyTorch runs in its own process with torch.set_num_threads(T) (F.scaled_dot_product_attention,
autograd, torch.optim.Adam); hpc.train as `python -m hpc.train --threads T`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from hpc.core.launch import run_record

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CONFIGS = {  # layers, hidden, heads, seq_len, batch
    "small": (2, 128, 4, 64, 8),
    "medium": (4, 256, 8, 128, 8),
    "large": (6, 512, 8, 256, 4),
}
TORCH = r"""
import json, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from hpc.train.torch_ref import train
from hpc.train.model import GPTConfig
from hpc.train.data import synthetic
L, H, NH, S, B, steps = map(int, sys.argv[2:8])
cfg = GPTConfig(vocab=256, hidden=H, heads=NH, layers=L, seq_len=S)
losses, times = train(cfg, synthetic(0, 256), 0, B, steps, 1e-3, "float32")
print(json.dumps({"tokens_per_s": B * S / float(np.mean(times[1:])), "losses": losses}))
"""


def thread_env(threads: int) -> dict:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_torch(cfg, steps, threads) -> dict:
    r = subprocess.run([PY, "-c", TORCH, str(threads), *map(str, cfg), str(steps)],
                       capture_output=True, text=True, check=True,
                       env={**os.environ, **thread_env(threads)}, cwd=ROOT)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_ours(cfg, steps, threads) -> dict:
    L, H, NH, S, B = cfg
    rec = run_record(1, "hpc.train", ["--layers", L, "--hidden", H, "--heads", NH, "--seq-len", S,
                                      "--global-batch", B, "--micro-batches", "1", "--steps",
                                      steps, "--lr", "1e-3", "--threads", threads, "--reference",
                                      "off", "--quiet"], env=thread_env(threads), cwd=ROOT)
    return rec["metrics"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=CONFIGS, nargs="+", default=["small", "medium"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6, help="steps per run (the first is dropped)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    print(f"{'config':<8}{'layers x hidden x heads, seq, batch':<38}{'torch tok/s':>12}"
          f"{'hpc.train tok/s':>17}{'ratio':>8}{'loss diff':>11}")
    for name in a.config:
        cfg = CONFIGS[name]
        best_t, best_o, diff = 0.0, 0.0, 0.0
        for _ in range(a.rounds):
            t = run_torch(cfg, a.steps, a.threads)
            o = run_ours(cfg, a.steps, a.threads)
            best_t = max(best_t, t["tokens_per_s"])
            best_o = max(best_o, o["tokens_per_s"])
            diff = max(abs(x - y) / abs(y) for x, y in zip(o["losses"], t["losses"]))
        L, H, NH, S, B = cfg
        desc = f"{L} x {H} x {NH}, {S}, {B}"
        print(f"{name:<8}{desc:<38}{best_t:>12.1f}{best_o:>17.1f}{best_o / best_t:>8.2f}"
              f"{diff:>11.2e}", flush=True)


if __name__ == "__main__":
    main()
