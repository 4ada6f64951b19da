"""hpc.train tokens/s against PyTorch on the CPU: the same GPT (same parameters, batches and
Adam with global-norm clipping), float32, one rank, the same number of threads. Target:
hpc.train >= 1.0x PyTorch on the 2 x 128 and the 4 x 256 model.

    .venv/bin/python scaling/compare/train_torch_bench.py [--config small medium large] \
        [--rounds R] [--steps N] [--threads T]

Each side runs in its own process (OMP/MKL threads = T): PyTorch with torch.set_num_threads(T)
(F.scaled_dot_product_attention, autograd, torch.optim.AdamW; hpc.train.torch_ref), hpc.train
through its Trainer API (what `python -m hpc.train` runs). Rounds alternate the two sides, so
load drifts hit both alike. A run's tokens/s is over the median of its steps after the first;
the table gives each side's median over the rounds and their ratio, by wall time and by the
process's CPU time (time.process_time: less disturbed when other work shares the cores), and
the 1-minute load average before and after. "loss diff": the largest relative difference of
the two float32 loss curves.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CONFIGS = {  # layers, hidden, heads, seq_len, batch
    "small": (2, 128, 4, 64, 8),
    "medium": (4, 256, 8, 128, 8),
    "large": (6, 512, 8, 256, 4),
}
COMMON = r"""
import json, sys, time
import numpy as np
from hpc.train.model import GPTConfig
L, H, NH, S, B, steps = map(int, sys.argv[2:8])
cfg = GPTConfig(vocab=256, hidden=H, heads=NH, layers=L, seq_len=S)
def report(losses, wall, cpu):
    print(json.dumps({"wall": B * S / float(np.median(wall[1:])),
                      "cpu": B * S / float(np.median(cpu[1:])), "losses": losses}))
"""
TORCH = COMMON + r"""
import torch
torch.set_num_threads(int(sys.argv[1]))
from hpc.train.torch_ref import train
from hpc.train.data import synthetic
tokens = synthetic(0, 256)
losses, wall = train(cfg, tokens, 0, B, steps, 1e-3, "float32")
_, cpu = train(cfg, tokens, 0, B, steps, 1e-3, "float32", clock=time.process_time)
report(losses, wall, cpu)
"""
OURS = COMMON + r"""
from hpc.core.backends import set_threads
from hpc.train import Trainer
set_threads(int(sys.argv[1]))
def run(clock):
    tr = Trainer(cfg, dtype="float32", lr=1e-3, global_batch=B, micro_batches=1)
    times = []
    for _ in range(steps):
        t0 = clock()
        tr.step()
        times.append(clock() - t0)
    losses = list(tr.history["losses"])
    tr.close()
    return losses, times
losses, wall = run(time.perf_counter)
_, cpu = run(time.process_time)
report(losses, wall, cpu)
"""


def thread_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run(code: str, cfg, steps: int, threads: int) -> dict:
    r = subprocess.run([PY, "-c", code, str(threads), *map(str, cfg), str(steps)],
                       capture_output=True, text=True, check=True, env=thread_env(threads),
                       cwd=ROOT)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=CONFIGS, nargs="+", default=["small", "medium"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8, help="steps per run (the first is dropped)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    print(f"{'config':<8}{'model (l x h x heads, seq, batch)':<34}{'torch tok/s':>12}"
          f"{'ours tok/s':>11}{'ratio':>7}{'cpu ratio':>10}{'loss diff':>10}{'load':>11}")
    for name in a.config:
        cfg = CONFIGS[name]
        tor, ours, diff = [], [], 0.0
        load0 = os.getloadavg()[0]
        for _ in range(a.rounds):
            tor.append(run(TORCH, cfg, a.steps, a.threads))
            ours.append(run(OURS, cfg, a.steps, a.threads))
            diff = max(diff, max(abs(x - y) / abs(y)
                                 for x, y in zip(ours[-1]["losses"], tor[-1]["losses"])))
        med = {k: (statistics.median(t[k] for t in tor), statistics.median(o[k] for o in ours))
               for k in ("wall", "cpu")}
        L, H, NH, S, B = cfg
        desc = f"{L} x {H} x {NH}, {S}, {B}"
        load = f"{load0:.1f}-{os.getloadavg()[0]:.1f}"
        (mt, mo), (ct, co) = med["wall"], med["cpu"]
        print(f"{name:<8}{desc:<34}{mt:>12.1f}{mo:>11.1f}{mo / mt:>7.2f}{co / ct:>10.2f}"
              f"{diff:>10.1e}{load:>11}", flush=True)


if __name__ == "__main__":
    main()
