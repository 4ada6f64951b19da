"""Continue training a DCDM model on 32^3 and keep the best weights by validation loss.

    nice -n 5 .venv/bin/python scaling/results/dcdm_continue_train.py \
        --init hpc/cg/models/dcdm_poisson3d_n32.h5 --save /tmp/dcdm_best.h5 --time-limit 1260

The same data and loss as `python -m hpc.cg train-dcdm` (it reuses that module's Poisson
matrix, Lanczos Ritz vectors and right-hand-side recipe, and hpc.cg.nn's network and loss),
with two differences that suit a run cut by wall time rather than a step count:
- the cosine learning-rate decay runs over the wall-time budget (fraction of --time-limit
  elapsed), so the decay completes however fast the shared machine is;
- validation every --val-every steps on 16 fixed right-hand sides (the first 8 are
  train-dcdm's own validation set for seed 0, so the numbers compare with the shipped
  model's recorded validation loss), and the best weights so far are written to --save.
Training right-hand sides use --data-seed (new data, not the stream the model already saw).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True)
    ap.add_argument("--save", required=True)
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--ritz", type=int, default=400)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--time-limit", type=float, default=1260.0, help="seconds of training")
    ap.add_argument("--val-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="Lanczos and validation seed (as train-dcdm)")
    ap.add_argument("--data-seed", type=int, default=1, help="training right-hand sides")
    ap.add_argument("--ritz-cache", default=None)
    args = ap.parse_args()

    import torch

    from hpc.cg.dcdm_train import lanczos_ritz, poisson3d_csr
    from hpc.cg.nn import weights as W
    from hpc.cg.nn.torch_net import DCDMNet, dcdm_loss

    torch.set_num_threads(args.threads)
    n, m = args.grid, args.ritz
    cut = min(m, m // 2 + m // 20)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    ritz = None
    if args.ritz_cache and Path(args.ritz_cache).exists():
        with np.load(args.ritz_cache) as z:
            if (int(z["n"]), int(z["m"]), int(z["seed"])) == (n, m, args.seed):
                ritz = z["ritz"]
                rng.standard_normal(n ** 3)  # the draw Lanczos makes
    if ritz is None:
        _, ritz = lanczos_ritz(poisson3d_csr(n), m, rng)
        if args.ritz_cache:
            np.savez(args.ritz_cache, n=n, m=m, seed=args.seed, vals=np.zeros(m), ritz=ritz)
    t_lanczos = time.perf_counter() - t0
    ritz_t = torch.from_numpy(ritz)

    def batch(size: int, g: np.random.Generator) -> torch.Tensor:
        c = g.standard_normal((size, m)).astype(np.float32)
        c[:, :cut] *= 9.0
        b = torch.from_numpy(c) @ ritz_t
        b /= torch.linalg.vector_norm(b, dim=1, keepdim=True)
        return b.reshape(size, 1, n, n, n)

    val_old = batch(8, rng)            # train-dcdm's validation set (seed 0)
    val_new = batch(8, rng)
    data_rng = np.random.default_rng(args.data_seed)

    init = W.load(args.init)
    net = DCDMNet(init.channels, seed=args.seed)
    net.load(init.weights)

    def validate() -> tuple[float, float]:
        with torch.no_grad():
            a = float(dcdm_loss(val_old, net(val_old)))
            b = float(dcdm_loss(val_new, net(val_new)))
        return a, 0.5 * (a + b)

    v_old, v16 = validate()
    print(f"init {args.init}: val(train-dcdm set) {v_old:.5f} val16 {v16:.5f} "
          f"(lanczos {t_lanczos:.0f}s)", flush=True)
    best = (v16, 0, v_old)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    losses: list[float] = []
    t_train = time.perf_counter()
    step = 0

    def save_best(v16_: float, step_: int, v_old_: float) -> None:
        meta = dict(init.attrs)
        for k in ("format", "arch", "channels", "problem", "trained_grid"):
            meta.pop(k, None)
        prev = (f"{init.attrs.get('recipe', '')} [validation loss {init.attrs.get('validation_loss')}]")
        meta.update({
            "continued": (f"continued from the model above for {step_} Adam steps on {n}^3, batch "
                          f"{args.batch}, lr {args.lr} with cosine decay over {args.time_limit:.0f} s, "
                          f"{args.threads} torch threads, right-hand-side seed {args.data_seed}; best of "
                          f"the run by validation loss (scaling/results/dcdm_continue_train.py)"),
            "previous_recipe": prev,
            "steps": int(init.attrs.get("steps", 0)) + step_, "continued_steps": step_,
            "validation_loss": v_old_, "validation_loss_16": v16_,
            "continued_train_s": time.perf_counter() - t_train, "batch": args.batch, "lr": args.lr,
        })
        W.save(args.save, net.export(), init.channels, "poisson3d", n, meta, np.array(losses))

    while True:
        el = time.perf_counter() - t_train
        if el > args.time_limit:
            break
        frac = min(el / args.time_limit, 1.0)
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
        b = batch(args.batch, data_rng)
        loss = dcdm_loss(b, net(b))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % args.val_every == 0:
            v_old, v16 = validate()
            mark = ""
            if v16 < best[0]:
                best = (v16, step, v_old)
                save_best(v16, step, v_old)
                mark = " *best, saved"
            print(f"step {step} loss {np.mean(losses[-args.val_every:]):.5f} val {v_old:.5f} "
                  f"val16 {v16:.5f} lr {opt.param_groups[0]['lr']:.2e} ({el:.0f}s){mark}", flush=True)
    v_old, v16 = validate()
    if v16 < best[0]:
        best = (v16, step, v_old)
        save_best(v16, step, v_old)
    print(f"done: {step} steps in {time.perf_counter() - t_train:.0f}s; best val16 {best[0]:.5f} "
          f"(train-dcdm set {best[2]:.5f}) at step {best[1]} -> {args.save}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
