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

Adam with a cosine learning-rate decay to lr/100 over the budget: the fraction of --steps
done or, with --time-limit, of the wall time elapsed, whichever is larger (so a run cut by
wall time still completes its decay however fast the machine is). --val-every N validates
every N steps on fixed right-hand sides (the first 8 are the default run's validation set
for --seed) and keeps the best weights by validation loss in --save. --init continues from a
model, --data-seed draws the training right-hand sides from a stream of their own (new data,
not the one the model already saw).

From a script: ``train(TrainOptions(save="model.h5", steps=100))``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hpc.core import UsageError, positive_float, positive_int, run
from hpc.core import checks
from hpc.core.atomic import atomic_path
from hpc.core.cli import AppParser, Formatter, add_common, mark_outputs, nonneg_int
from hpc.core.runtime import world

from . import weights as W


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
                   help="Adam learning rate (cosine decay to lr/100 over the budget: --steps, "
                        "or --time-limit's wall time when that runs out first)")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="S",
                   help="wall-time budget in seconds: stop after S seconds of training, the "
                        "learning-rate decay following the fraction of S elapsed (give a large "
                        "--steps for a run cut by time only)")
    p.add_argument("--val-every", type=nonneg_int, default=0, metavar="N",
                   help="validate every N steps and keep the best weights by validation loss "
                        "in --save (0: --save gets the last weights)")
    p.add_argument("--val-size", type=positive_int, default=8, metavar="K",
                   help="fixed validation right-hand sides (the first 8: the default run's)")
    p.add_argument("--data-seed", type=checks.SEED, default=None, metavar="S",
                   help="seed of the training right-hand sides [default: they continue --seed's "
                        "stream after the validation set]")
    p.add_argument("--ritz-cache", metavar="PATH",
                   help="reuse the Ritz vectors stored here (.npz) when they match grid, m and "
                        "seed and have the right shapes; else compute and store them (written "
                        "atomically; the folder must be writable)")
    p.add_argument("--init", metavar="PATH", help="start from this model file's weights")
    p.add_argument("--save", metavar="PATH", required=True, help="model file to write (HDF5)")
    p.add_argument("--checkpoint-every", type=nonneg_int, default=0, metavar="K",
                   help="also write --save every K steps (0: only at the end; not with "
                        "--val-every, which writes --save on every new best)")
    p.add_argument("--log-every", type=positive_int, default=10, help="steps between log lines")
    add_common(p)
    mark_outputs(p, "--save", "--ritz-cache")  # checked before any work (atomic.check_output)
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


@dataclass
class TrainOptions:
    """One training run (the command line's options; see the module docstring)."""

    save: str
    grid: int = 32
    ritz: int = 400
    theta: int | None = None          # None: ritz // 20
    channels: int = 16
    batch: int = 4
    steps: int = 400
    lr: float = 1e-3
    time_limit: float | None = None   # seconds of training
    val_every: int = 0                # 0: no keep-best, --save gets the last weights
    val_size: int = 8
    data_seed: int | None = None      # None: continue --seed's stream
    ritz_cache: str | None = None
    init: str | None = None
    checkpoint_every: int = 0
    log_every: int = 10
    seed: int = 0
    threads: int = 2


def lr_factor(frac: float) -> float:
    """The cosine decay from 1 to 1/100 over a budget fraction in [0, 1]."""
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(max(frac, 0.0), 1.0)))


def _ritz(opts: TrainOptions, rng: np.random.Generator, say) -> tuple[np.ndarray, np.ndarray]:
    """The Ritz pairs: from --ritz-cache when it matches grid, m and seed, else computed."""
    n, m = opts.grid, opts.ritz
    if opts.ritz_cache:
        try:
            with np.load(opts.ritz_cache) as z:
                if (int(z["n"]), int(z["m"]), int(z["seed"])) == (n, m, opts.seed):
                    vals, ritz = z["vals"], z["ritz"]
                    # A cache of the right key but the wrong contents is recomputed, not used.
                    if (vals.shape == (m,) and ritz.shape == (m, n ** 3)
                            and np.isfinite(vals).all() and np.isfinite(ritz).all()):
                        say(f"Ritz vectors from {opts.ritz_cache}")
                        rng.standard_normal(n ** 3)  # the draw Lanczos makes: stream matches
                        return vals, ritz
                    say(f"{opts.ritz_cache}: wrong shapes or non-finite values; recomputing")
        except (OSError, KeyError, ValueError, EOFError):
            pass
    vals, ritz = lanczos_ritz(poisson3d_csr(n), m, rng, log=say)
    if opts.ritz_cache:
        with atomic_path(opts.ritz_cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, n=n, m=m, seed=opts.seed, vals=vals, ritz=ritz)
    return vals, ritz


def train(opts: TrainOptions, say: Callable[..., None] = print,
          progress: bool = True) -> dict[str, Any]:
    """Train the network (one process, PyTorch) and write opts.save; returns its metadata.
    ``progress``: a bounded-rate progress line (hpc.core.progress) over the steps."""
    W.check_grid((opts.grid,) * 3)
    init = W.load(opts.init) if opts.init else None
    if init is not None and init.channels != opts.channels:
        raise UsageError(f"--init {opts.init} has {init.channels} channels, --channels is {opts.channels}")
    if opts.val_every and opts.checkpoint_every:
        raise UsageError("--val-every keeps the best weights in --save; --checkpoint-every would "
                         "overwrite them: use one of the two")
    if opts.ritz > opts.grid ** 3:
        raise UsageError(f"--ritz {opts.ritz} exceeds the matrix size {opts.grid ** 3}")
    try:
        import torch  # optional dependency (the ml extra): only training needs it
    except ImportError:
        raise UsageError("train-dcdm needs PyTorch: pip install '.[ml]'") from None
    from .torch_net import DCDMNet, dcdm_loss

    n, m = opts.grid, opts.ritz
    theta = opts.theta if opts.theta is not None else m // 20
    cut = min(m, m // 2 + theta)
    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)

    t_start = time.perf_counter()
    say(f"train-dcdm: {n}^3 Poisson, {m} Lanczos steps, theta {theta}, {opts.channels} channels, "
        f"batch {opts.batch}, {opts.steps} steps, lr {opts.lr}, {opts.threads} threads")
    vals, ritz = _ritz(opts, rng, say)
    t_lanczos = time.perf_counter() - t_start
    say(f"Ritz values {vals[0]:.4g} .. {vals[-1]:.4g} ({t_lanczos:.0f}s)")
    ritz_t = torch.from_numpy(ritz)  # (m, n^3) float32

    def batch(size: int, g: np.random.Generator) -> torch.Tensor:
        c = g.standard_normal((size, m)).astype(np.float32)
        c[:, :cut] *= 9.0
        b = torch.from_numpy(c) @ ritz_t
        b /= torch.linalg.vector_norm(b, dim=1, keepdim=True)
        return b.reshape(size, 1, n, n, n)

    val_b = batch(opts.val_size, rng)
    data_rng = rng if opts.data_seed is None else np.random.default_rng(opts.data_seed)

    net = DCDMNet(opts.channels, seed=opts.seed)
    init_note = ""
    if init is not None:
        net.load(init.weights)
        init_note = (f"{opts.init}: trained on {init.trained_grid}^3, {init.attrs.get('steps')} steps, "
                     f"validation loss {init.attrs.get('validation_loss')}")
    opt = torch.optim.Adam(net.parameters(), lr=opts.lr)

    def validate() -> float:
        with torch.no_grad():
            return float(dcdm_loss(val_b, net(val_b)))

    def meta(steps: int, val: float, **more) -> dict[str, Any]:
        return {"loss": "||b - alpha A y||^2, alpha = y.b/y.Ay (Kaneda et al. 2023)",
                "rhs": f"Lanczos Ritz vectors, m={m}, 9x weight on the {cut} lowest",
                "steps": steps, "steps_planned": opts.steps, "batch": opts.batch, "lr": opts.lr,
                "seed": opts.seed, "validation_loss": val, "validation_size": opts.val_size,
                "data_seed": -1 if opts.data_seed is None else opts.data_seed,
                "schedule": ("cosine to lr/100 over max(step / steps, elapsed / time_limit)"
                             if opts.time_limit else "cosine to lr/100 over steps"),
                "time_limit_s": opts.time_limit or 0.0, "lanczos_s": t_lanczos,
                "train_s": time.perf_counter() - t_train, "torch": torch.__version__,
                "init": init_note,
                "previous_steps": int(init.attrs.get("steps", 0)) if init is not None else 0,
                **more}

    losses: list[float] = []
    best = (validate(), 0, net.export()) if opts.val_every else None
    if best is not None:
        say(f"step 0 val {best[0]:.5f} (the starting weights)")
    stopped_early = False
    t_train = time.perf_counter()
    step = 0
    from hpc.core.progress import Progress

    prog = Progress(opts.steps, "train-dcdm", quiet=not progress, unit="step")
    while step < opts.steps:
        elapsed = time.perf_counter() - t_train
        frac = step / opts.steps
        if opts.time_limit:
            frac = max(frac, elapsed / opts.time_limit)
        for g in opt.param_groups:
            g["lr"] = opts.lr * lr_factor(frac)
        b = batch(opts.batch, data_rng)
        loss = dcdm_loss(b, net(b))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        prog.update(loss=losses[-1])
        lr_now = opt.param_groups[0]["lr"]
        el = time.perf_counter() - t_train
        if best is not None and step % opts.val_every == 0:
            vl = validate()
            mark = ""
            if vl < best[0]:
                best = (vl, step, net.export())
                W.save(opts.save, best[2], opts.channels, "poisson3d", n,
                       meta(step, vl, best_step=step), np.array(losses))
                mark = " *best, saved"
            say(f"step {step}/{opts.steps} loss {np.mean(losses[-opts.val_every:]):.5f} "
                f"val {vl:.5f} lr {lr_now:.2e} ({el:.0f}s){mark}")
        elif step % opts.log_every == 0 or step == 1:
            vl = validate()
            say(f"step {step}/{opts.steps} loss {np.mean(losses[-opts.log_every:]):.5f} "
                f"val {vl:.5f} lr {lr_now:.2e} ({el:.0f}s)")
        if opts.checkpoint_every and step % opts.checkpoint_every == 0:
            W.save(opts.save, net.export(), opts.channels, "poisson3d", n,
                   {"checkpoint_step": step, "steps": step, "validation_loss": float("nan")},
                   np.array(losses))
        if opts.time_limit and el > opts.time_limit:
            stopped_early = step < opts.steps
            say(f"time limit reached after {step} steps")
            break
    prog.close()
    val = validate()
    if best is None:
        weights, info = net.export(), meta(len(losses), val, stopped_early=stopped_early)
    else:
        if val < best[0]:
            best = (val, step, net.export())
        weights = best[2]
        info = meta(len(losses), best[0], best_step=best[1], last_validation_loss=val,
                    stopped_early=stopped_early)
    W.save(opts.save, weights, opts.channels, "poisson3d", n, info, np.array(losses))
    what = (f"best validation loss {best[0]:.5f} (step {best[1]})" if best is not None
            else f"validation loss {val:.5f}")
    say(f"saved {opts.save}: {what} after {len(losses)} steps "
        f"({time.perf_counter() - t_start:.0f}s in all)")
    return info


def options(args) -> TrainOptions:
    """The parsed command line as TrainOptions."""
    fields = TrainOptions.__dataclass_fields__
    kw = {k: v for k, v in vars(args).items() if k in fields}
    kw["threads"] = args.threads or 2
    return TrainOptions(**kw)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m hpc.cg train-dcdm: parse, check, train, save."""
    args = parser().parse_args(argv)
    if world().Get_size() != 1:
        raise UsageError("train-dcdm runs on one rank (PyTorch uses --threads threads)")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    train(options(args), say, progress=not args.quiet)
    return 0


if __name__ == "__main__":
    run(main)
