"""hpc.train against PyTorch autograd (the `compare` extra): the same GPT from the same
(seed, name) tensors on the same (seed, step) batches gives the same float64 loss curve, on one
rank and in a tensor x pipeline x data parallel layout."""
from __future__ import annotations

import pytest

from conftest import load_json, run_app

torch = pytest.importorskip("torch")

ARGS = ["--layers", "4", "--hidden", "24", "--heads", "4", "--seq-len", "12", "--vocab", "250",
        "--global-batch", "8", "--dtype", "float64", "--lr", "5e-3", "--seed", "11",
        "--steps", "4", "--clip-grad", "0.5"]


@pytest.fixture(scope="module")
def torch_losses():
    from hpc.train.data import synthetic
    from hpc.train.model import GPTConfig
    from hpc.train.torch_ref import train

    cfg = GPTConfig(vocab=250, hidden=24, heads=4, layers=4, seq_len=12)
    losses, _ = train(cfg, synthetic(11, 250), 11, 8, 4, 5e-3, "float64", clip=0.5)
    return losses


@pytest.mark.parametrize("n,layout", [(1, []), (4, ["--tp", "1", "--pp", "2", "--dp", "2",
                                                     "--micro-batches", "2", "--zero1"]),
                                      (4, ["--tp", "2", "--pp", "2", "--sequence-parallel"])])
def test_matches_torch_autograd(tmp_path, torch_losses, n, layout):
    out = tmp_path / "r.json"
    r = run_app("train", n, *ARGS, *layout, "--json", str(out), "--reference", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    losses = load_json(out)["metrics"]["losses"]
    for a, b in zip(losses, torch_losses):
        assert abs(a - b) <= 1e-10 * abs(b), (losses, torch_losses)


# AdamW weight decay, warm-up and cosine decay, clipping that is active every step: PyTorch's
# AdamW and schedulers are the reference, at 1, 3 (odd: data parallel, ZeRO-1) and 4 ranks.
FULL = ["--layers", "4", "--hidden", "24", "--heads", "4", "--seq-len", "12", "--vocab", "250",
        "--global-batch", "12", "--dtype", "float64", "--lr", "5e-3", "--seed", "11",
        "--steps", "6", "--clip-grad", "0.05", "--weight-decay", "0.1",
        "--lr-warmup-steps", "2", "--lr-decay-style", "cosine", "--lr-decay-steps", "6",
        "--min-lr", "5e-4"]


@pytest.fixture(scope="module")
def torch_adamw_losses():
    from hpc.train.data import synthetic
    from hpc.train.model import GPTConfig
    from hpc.train.torch_ref import train

    cfg = GPTConfig(vocab=250, hidden=24, heads=4, layers=4, seq_len=12)
    losses, _ = train(cfg, synthetic(11, 250), 11, 12, 6, 5e-3, "float64", clip=0.05,
                      weight_decay=0.1, warmup=2, decay_style="cosine", decay_steps=6,
                      min_lr=5e-4)
    return losses


@pytest.mark.parametrize("n,layout", [(1, []), (3, ["--dp", "3", "--micro-batches", "2",
                                                     "--zero1"]),
                                      (4, ["--tp", "2", "--pp", "2", "--dp", "1"])])
def test_adamw_schedule_clipping_match_torch(tmp_path, torch_adamw_losses, n, layout):
    out = tmp_path / "r.json"
    r = run_app("train", n, *FULL, *layout, "--json", str(out), "--reference", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    m = load_json(out)["metrics"]
    assert min(m["grad_norms"]) > 0.05  # clipping acted at every step
    assert m["lrs"][0] == pytest.approx(2.5e-3) and m["lrs"][-1] < 5e-3
    for a, b in zip(m["losses"], torch_adamw_losses):
        assert abs(a - b) <= 1e-10 * abs(b), (m["losses"], torch_adamw_losses)
