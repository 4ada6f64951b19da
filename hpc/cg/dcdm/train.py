"""python -m hpc.cg train-dcdm: train the DCDM network on the 3D Poisson matrix (PyTorch).

As in Kaneda et al. (ICML 2023), section 3.3:
- the loss is unsupervised, mean over a batch of ||b - alpha A y||^2 with y = f(b) and
  alpha = y.b / y.Ay (the error of the best step along y, measured in the residual);
- the right-hand sides are random combinations of Lanczos Ritz vectors of A: m Lanczos steps
  from A times a random vector, Ritz pairs sorted by value, b = sum_i c_i q_i normalised with
  c_i ~ 9 N(0,1) for the m/2 + theta lowest (low frequencies dominate the error CG leaves)
  and c_i ~ N(0,1) for the rest.
Sized for a laptop: a 32^3 grid, m = 400 Ritz vectors (theta = m/20, the paper's 500 of
10000), fresh right-hand sides every step. The weights go to an HDF5 model file that the
numpy / numba / CuPy inference reads (solving never needs torch).
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from hpc.core import UsageError, positive_float, positive_int
from hpc.core.cli import AppParser, Formatter, add_common, nonneg_int


def parser() -> AppParser:
    p = AppParser(prog="python -m hpc.cg train-dcdm", description=__doc__, formatter_class=Formatter)
    p.add_argument("--grid", type=positive_int, default=32, help="training grid n (n^3 cells, even)")
    p.add_argument("--ritz", type=positive_int, default=400, help="Lanczos steps / Ritz vectors m")
    p.add_argument("--theta", type=nonneg_int, default=None,
                   help="extra low-frequency Ritz vectors weighted 9x beyond m/2 [default: m/20]")
    p.add_argument("--channels", type=positive_int, default=16, help="network channels")
    p.add_argument("--batch", type=positive_int, default=4, help="right-hand sides per step")
    p.add_argument("--steps", type=positive_int, default=400, help="optimizer steps")
    p.add_argument("--lr", type=positive_float, default=1e-3,
                   help="Adam learning rate (cosine decay to lr/100 over --steps)")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="S",
                   help="stop after S seconds of training (the record says so)")
    p.add_argument("--ritz-cache", metavar="PATH",
                   help="reuse the Ritz vectors stored here (.npz) when they match grid, m and "
                        "seed; else compute and store them")
    p.add_argument("--init", metavar="PATH", help="start from this model file's weights")
    p.add_argument("--save", metavar="PATH", required=True, help="model file to write (HDF5)")
    p.add_argument("--checkpoint-every", type=nonneg_int, default=0, metavar="K",
                   help="also write --save every K steps (0: only at the end)")
    p.add_argument("--log-every", type=positive_int, default=10, help="steps between log lines")
    add_common(p)
    return p


def poisson3d_csr(n: int):
    """The 7-point Dirichlet Poisson matrix on an n^3 grid, x fastest (diagonal 6, off -1)."""
    import scipy.sparse as sp

    one = sp.identity(n, format="csr")
    t = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")
    return (sp.kron(sp.kron(one, one), t) + sp.kron(sp.kron(one, t), one)
            + sp.kron(sp.kron(t, one), one)).tocsr()


def lanczos_ritz(A, m: int, rng: np.random.Generator, log=print) -> tuple[np.ndarray, np.ndarray]:
    """m Lanczos steps with full reorthogonalisation from A @ random; Ritz values ascending and
    Ritz vectors (m, n) as float32 rows."""
    from scipy.linalg import eigh_tridiagonal

    n = A.shape[0]
    if m > n:
        raise UsageError(f"--ritz {m} exceeds the matrix size {n}")
    V = np.zeros((m, n))
    alpha = np.zeros(m)
    beta = np.zeros(max(m - 1, 0))
    q = A @ rng.standard_normal(n)
    q /= np.linalg.norm(q)
    t0 = time.perf_counter()
    for k in range(m):
        V[k] = q
        w = A @ q
        alpha[k] = q @ w
        # Full reorthogonalisation, classical Gram-Schmidt twice: one pass lets the loss of
        # orthogonality double every step ("twice is enough").
        w -= V[:k + 1].T @ (V[:k + 1] @ w)
        w -= V[:k + 1].T @ (V[:k + 1] @ w)
        if k + 1 < m:
            beta[k] = np.linalg.norm(w)
            if beta[k] < 1e-12:
                raise RuntimeError(f"Lanczos broke down at step {k} (invariant subspace)")
            q = w / beta[k]
        if (k + 1) % 200 == 0:
            log(f"lanczos step {k + 1}/{m} ({time.perf_counter() - t0:.0f}s)")
    vals, Q = eigh_tridiagonal(alpha, beta)
    ritz = (Q.T @ V).astype(np.float32)
    return vals, ritz


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from hpc.core.runtime import world

    comm = world()
    if comm.Get_size() != 1:
        raise UsageError("train-dcdm runs on one rank (PyTorch uses --threads threads)")
    try:
        import torch
    except ImportError:
        raise UsageError("train-dcdm needs PyTorch: pip install '.[ml]'") from None
    from . import weights as W
    from .torch_net import DCDMNet, dcdm_loss

    W.check_grid((args.grid,) * 3)
    n, m = args.grid, args.ritz
    theta = args.theta if args.theta is not None else m // 20
    cut = min(m, m // 2 + theta)
    threads = args.threads or 2
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))

    t_start = time.perf_counter()
    A = poisson3d_csr(n)
    say(f"train-dcdm: {n}^3 Poisson, {m} Lanczos steps, theta {theta}, {args.channels} channels, "
        f"batch {args.batch}, {args.steps} steps, lr {args.lr}, {threads} threads")
    vals = ritz = None
    if args.ritz_cache:
        try:
            with np.load(args.ritz_cache) as z:
                if (int(z["n"]), int(z["m"]), int(z["seed"])) == (n, m, args.seed):
                    vals, ritz = z["vals"], z["ritz"]
                    say(f"Ritz vectors from {args.ritz_cache}")
        except (OSError, KeyError, ValueError):
            pass
    if ritz is None:
        vals, ritz = lanczos_ritz(A, m, rng, log=say)
        if args.ritz_cache:
            np.savez(args.ritz_cache, n=n, m=m, seed=args.seed, vals=vals, ritz=ritz)
    else:
        rng.standard_normal(n)  # the draw Lanczos makes, so the stream matches a fresh run
    t_lanczos = time.perf_counter() - t_start
    say(f"Ritz values {vals[0]:.4g} .. {vals[-1]:.4g} ({t_lanczos:.0f}s)")
    ritz_t = torch.from_numpy(ritz)  # (m, n^3) float32

    def batch(size: int) -> torch.Tensor:
        c = rng.standard_normal((size, m)).astype(np.float32)
        c[:, :cut] *= 9.0
        b = torch.from_numpy(c) @ ritz_t
        b /= torch.linalg.vector_norm(b, dim=1, keepdim=True)
        return b.reshape(size, 1, n, n, n)

    net = DCDMNet(args.channels, seed=args.seed)
    init_note = ""
    if args.init:
        init = W.load(args.init)
        if init.channels != args.channels:
            raise UsageError(f"--init {args.init} has {init.channels} channels, --channels is {args.channels}")
        net.load(init.weights)
        init_note = (f"{args.init}: trained on {init.trained_grid}^3, {init.attrs.get('steps')} steps, "
                     f"validation loss {init.attrs.get('validation_loss')}")
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    val_b = batch(8)
    losses: list[float] = []
    stopped_early = False
    t_train = time.perf_counter()
    for step in range(args.steps):
        b = batch(args.batch)
        loss = dcdm_loss(b, net(b))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % args.log_every == 0 or step == 0:
            with torch.no_grad():
                vl = float(dcdm_loss(val_b, net(val_b)))
            el = time.perf_counter() - t_train
            say(f"step {step + 1}/{args.steps} loss {np.mean(losses[-args.log_every:]):.5f} "
                f"val {vl:.5f} lr {sched.get_last_lr()[0]:.2e} ({el:.0f}s)")
        if args.checkpoint_every and (step + 1) % args.checkpoint_every == 0:
            W.save(args.save, net.export(), args.channels, "poisson3d", n,
                   {"checkpoint_step": step + 1, "steps": step + 1, "validation_loss": float("nan")},
                   np.array(losses))
        if args.time_limit and time.perf_counter() - t_train > args.time_limit:
            stopped_early = True
            say(f"time limit reached after {step + 1} steps")
            break
    with torch.no_grad():
        val = float(dcdm_loss(val_b, net(val_b)))
    meta = {"loss": "||b - alpha A y||^2, alpha = y.b/y.Ay (Kaneda et al. 2023)",
            "rhs": f"Lanczos Ritz vectors, m={m}, 9x weight on the {cut} lowest",
            "steps": len(losses), "steps_planned": args.steps, "batch": args.batch,
            "lr": args.lr, "seed": args.seed, "stopped_early": stopped_early,
            "validation_loss": val, "lanczos_s": t_lanczos,
            "train_s": time.perf_counter() - t_train, "torch": torch.__version__,
            "init": init_note}
    W.save(args.save, net.export(), args.channels, "poisson3d", n, meta, np.array(losses))
    say(f"saved {args.save}: validation loss {val:.5f} after {len(losses)} steps "
        f"({time.perf_counter() - t_start:.0f}s in all)")
    return 0


if __name__ == "__main__":
    from hpc.core import run

    run(main)
