"""The same GPT in PyTorch (autograd, scaled_dot_product_attention, torch.optim.Adam): the
independent reference of the tests and the baseline of scaling/compare/train_torch_bench.py.

Parameters come from the same (seed, name) full tensors as hpc.train's, the batches from the
same (seed, step) draw, so in float64 the two loss curves agree to rounding.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .data import global_batch
from .model import GPTConfig, full_tensor, param_specs


def make_params(cfg: GPTConfig, seed: int, dtype):
    import torch

    return {s.name: torch.tensor(full_tensor(s, cfg, seed), dtype=dtype, requires_grad=True)
            for s in param_specs(cfg)}


def loss_fn(P, cfg: GPTConfig, tok, tgt):
    import torch
    import torch.nn.functional as F

    b, s = tok.shape
    h, nh = cfg.hidden, cfg.heads
    x = P["embed.wte"][tok] + P["embed.wpe"][:s]
    for i in range(cfg.layers):
        n = f"layers.{i}."
        a = F.layer_norm(x, (h,), P[n + "ln1.g"], P[n + "ln1.b"], eps=1e-5)
        qkv = (a @ P[n + "attn.qkv.w"] + P[n + "attn.qkv.b"]).view(b, s, 3, nh, h // nh)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        o = o.transpose(1, 2).reshape(b, s, h)
        x = x + o @ P[n + "attn.proj.w"] + P[n + "attn.proj.b"]
        m = F.layer_norm(x, (h,), P[n + "ln2.g"], P[n + "ln2.b"], eps=1e-5)
        u = F.gelu(m @ P[n + "mlp.fc1.w"] + P[n + "mlp.fc1.b"], approximate="tanh")
        x = x + u @ P[n + "mlp.fc2.w"] + P[n + "mlp.fc2.b"]
    y = F.layer_norm(x, (h,), P["head.lnf.g"], P["head.lnf.b"], eps=1e-5)
    logits = y @ P["embed.wte"].T
    if cfg.vocab_padded > cfg.vocab:
        mask = torch.zeros(cfg.vocab_padded, dtype=torch.bool)
        mask[cfg.vocab:] = True
        logits = logits.masked_fill(mask, -math.inf)
    return F.cross_entropy(logits.reshape(-1, cfg.vocab_padded), tgt.reshape(-1))


def scheduler(opt, warmup: int, decay_style: str, decay_steps: int | None, min_lr: float):
    """PyTorch's own schedulers for hpc.train's learning-rate schedules (an independent
    implementation: LinearLR warm-up, then CosineAnnealingLR or LinearLR decay); None for a
    constant rate without warm-up."""
    import torch.optim.lr_scheduler as S

    lr = opt.param_groups[0]["lr"]
    parts, milestones = [], []
    if warmup:
        parts.append(S.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0,
                                total_iters=max(1, warmup - 1)))
        milestones.append(warmup)
    if decay_style == "cosine":
        parts.append(S.CosineAnnealingLR(opt, T_max=decay_steps - warmup, eta_min=min_lr))
    elif decay_style == "linear":
        parts.append(S.LinearLR(opt, start_factor=1.0, end_factor=min_lr / lr,
                                total_iters=decay_steps - warmup))
    else:
        parts.append(S.ConstantLR(opt, factor=1.0, total_iters=0))
    if len(parts) == 1:
        return parts[0]
    return S.SequentialLR(opt, parts, milestones=milestones)


def train(cfg: GPTConfig, tokens: np.ndarray, seed: int, batch: int, steps: int, lr: float,
          dtype: str = "float32", clip: float = 1.0, start: int = 0, weight_decay: float = 0.0,
          warmup: int = 0, decay_style: str = "constant", decay_steps: int | None = None,
          min_lr: float = 0.0, clock=time.perf_counter):
    """Losses per step and seconds per step (steps start..start+steps-1; by ``clock``, e.g.
    time.process_time for CPU seconds), with AdamW's decoupled ``weight_decay`` and PyTorch's
    schedulers for the learning rate."""
    import torch

    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    P = make_params(cfg, seed, tdt)
    opt = torch.optim.AdamW(P.values(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=weight_decay)
    sched = scheduler(opt, warmup, decay_style, decay_steps, min_lr)
    for _ in range(start):
        sched.step()
    losses, times = [], []
    for k in range(steps):
        t0 = clock()
        bt = torch.from_numpy(global_batch(tokens, seed, start + k, batch, cfg.seq_len))
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(P, cfg, bt[:, :-1], bt[:, 1:])
        loss.backward()
        if clip > 0:  # Megatron's rule, as hpc.train applies it
            with torch.no_grad():
                norm = torch.sqrt(sum((p.grad * p.grad).sum() for p in P.values()))
                coef = clip / (float(norm) + 1e-6)
                if coef < 1.0:
                    for p in P.values():
                        p.grad.mul_(coef)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        times.append(clock() - t0)
    return losses, times
