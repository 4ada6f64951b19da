"""Train a tiny GPT on Shakespeare with hpc.train, from a script.

    python examples/train.py                 # one process
    mpiexec -n 2 python examples/train.py    # the same script: tensor parallel over 2 ranks

The text is ../shared/data/text/tinyshakespeare.txt when present (else a few KB of generated
text); tokens are its bytes. Every rank gets the same loss each step, whatever the layout.
Half-way the run is checkpointed and continued by a new trainer, as a resumed job would be.
"""
import shutil
import tempfile
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hpc.train import GPTConfig, ParallelLayout, Trainer

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tinyshakespeare.txt"


def corpus() -> "str | bytes":
    """The path of the Shakespeare text, or generated sentences (the same on every rank)."""
    if TEXT.exists():
        return str(TEXT)
    rng = np.random.default_rng(0)
    words = "the king and queen of my lord shall speak to thee now good night sweet".split()
    return " ".join(rng.choice(words, size=2000)).encode()


world = MPI.COMM_WORLD
say = print if world.rank == 0 else (lambda *a, **k: None)
config = GPTConfig(layers=2, hidden=32, heads=4, seq_len=32, vocab=256)
layout = ParallelLayout(tp=2 if world.size % 2 == 0 else 1)   # dp: the rest of the ranks
# a real training loop: warm-up then cosine decay, AdamW, clipping, a held-out tenth
options = dict(data=corpus(), dtype="float32", lr=1e-2, lr_warmup_steps=4,
               lr_decay_style="cosine", lr_decay_steps=40, min_lr=1e-3, weight_decay=0.01,
               clip_grad=1.0, eval_fraction=0.1, global_batch=8, micro_batches=2, seed=0)
folder = world.bcast(tempfile.mkdtemp() if world.rank == 0 else None)
checkpoint = str(Path(folder) / "half.h5")

with Trainer(config, layout, **options) as trainer:
    say(f"GPT {config.n_params:,} parameters, layout tp {trainer.layout.tp} x pp "
        f"{trainer.layout.pp} x dp {trainer.layout.dp} on {world.size} rank(s)")
    losses = trainer.fit(20)
    say(f"step 20: eval loss {trainer.evaluate(2):.4f}; checkpoint -> {checkpoint}")
    trainer.save(checkpoint)   # everything: weights, Adam, step, schedule, loss history

# a new trainer (any layout) continues the same run from the checkpoint
with Trainer(config, ParallelLayout(), **options) as trainer:
    trainer.load(checkpoint)
    losses += trainer.fit(20)
    say(f"step 40: eval loss {trainer.evaluate(2):.4f} (lr now {trainer.lr_schedule(40):.1e})")
if world.rank == 0:
    shutil.rmtree(folder)

for step in range(0, len(losses), 8):
    say(f"step {step + 1:3d}  loss {losses[step]:.4f}")
first, last = losses[0], float(np.mean(losses[-5:]))
say(f"loss fell: {first:.3f} -> {last:.3f}" if last < first else
    f"loss did not fall: {first:.3f} -> {last:.3f}")
