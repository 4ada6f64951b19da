"""One training step: run this pipeline rank's schedule action by action, then the optimizer.

Activations and gradients between virtual stages go point to point over the pipeline group,
tagged by (direction, destination virtual stage, micro-batch) so every message is unambiguous.
Every receive of the step is posted (Irecv) when the step starts and waited for at its
``recv_*`` action; sends are Isend, completed at the end of the step. After each action the
pending requests are tested, which lets MPI progress large (rendezvous) transfers while this
rank computes instead of at its next blocking call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import comm as C
from . import schedules
from .data import global_batch
from .model import GPT


@dataclass
class StepStats:
    loss: float
    grad_norm: float
    wall_s: float            # the schedule, start to last send completed
    busy_s: float            # forward + backward compute inside it
    step_s: float            # whole step including the optimizer
    extra: dict = field(default_factory=dict)


class Trainer:
    def __init__(self, model: GPT, opt, tokens, seed: int, global_batch_size: int,
                 micro_batches: int, schedule: str):
        self.model, self.opt, self.ps = model, opt, model.ps
        self.tokens, self.seed = tokens, seed
        self.G, self.m = global_batch_size, micro_batches
        ps = self.ps
        self.mbs = self.G // (ps.dp * self.m)
        kind = schedule if ps.pp > 1 or ps.vpp > 1 else "gpipe"
        self.kind = kind
        self.actions = schedules.build(kind, ps.pp, self.m, ps.vpp)[ps.pp_rank]
        self.scale = 1.0 / (self.G * model.cfg.seq_len)  # loss = mean over the global batch

    def _tag(self, direction: int, dest_vs: int, mb: int) -> int:
        return (direction * self.ps.n_virtual + dest_vs) * self.m + mb

    def step(self, step: int) -> StepStats:
        from mpi4py import MPI

        model, ps, xp = self.model, self.ps, self.model.xp
        t0 = time.perf_counter()
        batch = global_batch(self.tokens, self.seed, step, self.G, model.cfg.seq_len)
        share = batch[ps.dp_rank * self.m * self.mbs:(ps.dp_rank + 1) * self.m * self.mbs]
        inputs = [xp.asarray(share[i * self.mbs:(i + 1) * self.mbs, :-1]) for i in range(self.m)]
        targets = [xp.asarray(share[i * self.mbs:(i + 1) * self.mbs, 1:]) for i in range(self.m)]
        model.store.zero_grads()
        nv = ps.n_virtual
        act_shape = (self.mbs, model.s_local, model.cfg.hidden)
        pending: dict = {}
        caches: dict = {}
        outs: dict = {}
        reqs: list = []
        keep: list = []
        loss_sum = 0.0
        busy = 0.0
        tw = time.perf_counter()
        posted: dict = {}
        for a in self.actions:  # every receive of the step, posted up front
            if a.kind in ("recv_fwd", "recv_bwd"):
                vs = model.chunks[a.chunk]
                src, _ = ps.stage_rank(vs - 1 if a.kind == "recv_fwd" else vs + 1)
                buf = np.empty(act_shape, dtype=model.dtype)
                req = ps.pp_group.Irecv(buf, source=src,
                                        tag=self._tag(a.kind == "recv_bwd", vs, a.mb))
                posted[(a.kind, (a.chunk, a.mb))] = (req, buf)
        for a in self.actions:
            vs = model.chunks[a.chunk]
            key = (a.chunk, a.mb)
            if a.kind in ("recv_fwd", "recv_bwd"):
                req, buf = posted.pop((a.kind, key))
                req.Wait()
                pending[(a.kind, key)] = xp.asarray(buf)
            elif a.kind in ("send_fwd", "send_bwd"):
                dst_vs = vs + 1 if a.kind == "send_fwd" else vs - 1
                dst, _ = ps.stage_rank(dst_vs)
                h = np.ascontiguousarray(C.to_host(outs.pop((a.kind, key))))
                keep.append(h)
                reqs.append(ps.pp_group.Isend(h, dest=dst, tag=self._tag(a.kind == "send_bwd",
                                                                         dst_vs, a.mb)))
            elif a.kind == "F":
                tc = time.perf_counter()
                inp = inputs[a.mb] if vs == 0 else pending.pop(("recv_fwd", key))
                out, caches[key] = model.forward(a.chunk, inp, targets[a.mb])
                if vs == nv - 1:
                    loss_sum += out
                else:
                    outs[("send_fwd", key)] = out
                busy += time.perf_counter() - tc
            elif a.kind == "B":
                tc = time.perf_counter()
                dout = None if vs == nv - 1 else pending.pop(("recv_bwd", key))
                din = model.backward(a.chunk, dout, caches.pop(key), self.scale)
                if vs > 0:
                    outs[("send_bwd", key)] = din
                busy += time.perf_counter() - tc
            if reqs or posted:  # drive outstanding transfers forward
                MPI.Request.Testall(reqs + [r for r, _ in posted.values()])
        MPI.Request.Waitall(reqs)
        wall = time.perf_counter() - tw
        assert not caches and not pending and not outs, "schedule left work behind"
        norm = self.opt.step()
        # the loss: last-stage, tp-rank-0 ranks hold their dp share's token-loss sums
        mine = loss_sum if (ps.is_last_stage and ps.tp_rank == 0) else 0.0
        loss = ps.world.allreduce(mine, op=MPI.SUM) * self.scale
        return StepStats(loss, norm, wall, busy, time.perf_counter() - t0)
