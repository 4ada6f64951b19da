"""Pipeline schedules as pure data: for each pipeline rank, the ordered list of its actions.

A schedule is built without MPI and executed action by action by the one executor that
:func:`get_forward_backward_func` returns, so its order, deadlock freedom, bubble and
activation memory are unit-tested on plain lists (:func:`simulate`).

Actions (``Action(kind, chunk, mb)``; chunk is the model chunk on this rank, virtual stage
``chunk * p + rank`` as in Megatron's interleaved schedule):

- ``F`` / ``B``: forward / backward of micro-batch ``mb`` through the chunk;
- ``recv_fwd`` / ``send_fwd``: the chunk's input activation from, its output to, the
  neighbouring virtual stage;
- ``recv_bwd`` / ``send_bwd``: the gradient of the chunk's output from the next stage, of its
  input to the previous stage;
- ``W`` (zero-bubble schedules only): the weight gradients of micro-batch ``mb``'s linear
  layers, whose ``B`` then computes only the input gradient (and the cheap bias and norm
  gradients) the previous stage waits for.

Sends are non-blocking (MPI Isend; completed at the end of the step) and receives block, which
is the semantics :func:`simulate` models.

Schedules (p pipeline ranks, m micro-batches, v chunks per rank):

- ``gpipe``: all forwards, then all backwards; m activations in flight; bubble (p-1)/m.
- ``1f1b`` (PipeDream-Flush, Megatron's default): p-r-1 warm-up forwards, then alternate one
  forward and one backward; at most p-r activations in flight; bubble (p-1)/m.
- ``interleaved``: Megatron's interleaved 1F1B over v model chunks per rank (needs m a
  multiple of p); bubble (p-1)/(v m).
- ``zbh1``: ZB-H1 (Qi et al. 2023, zero-bubble pipeline parallelism): 1F1B's warm-up and
  its peak of p-r activations in flight on rank r, with each backward split into B and W
  and the W passes put off to fill the time a rank would wait; with equal F, B and W times
  the bubble is a third of 1F1B's. Its order is built by :func:`_zbh1_order`, a greedy
  simulation of the ranks.

(GPipe: Huang et al. 2019; 1F1B and the interleaved schedule: Narayanan et al. 2021.)

:func:`get_forward_backward_func` picks a schedule as Megatron's function of the same name
does and returns the one executor that runs any action list over MPI.
"""
from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from mpi4py import MPI

from . import comm as C

SCHEDULES = ("gpipe", "1f1b", "interleaved", "zbh1")


class Action(NamedTuple):
    kind: str
    chunk: int
    mb: int


def _zbh1_order(p: int, m: int) -> list[list[tuple[str, int, int]]]:
    """ZB-H1's compute order of every rank: a simulation with unit F, B and W times in which
    a free rank does, in this order of preference, the backward B whose gradient has
    arrived, the next forward F (when it has fewer than 1F1B's p-r micro-batches in flight:
    forwarded, not yet backwarded), or a pending W; when it can do none it waits for the next
    message; and it does a W first when p of them are pending. So the activations of the
    layers (freed at B) peak as 1F1B's, and what pending W's keep (each linear layer's input
    and output gradient, a fraction of that) is bounded by p micro-batches."""
    clock = [0.0] * p
    next_f = [0] * p
    next_b = [0] * p
    f_ready = [[0.0] * m] + [[None] * m for _ in range(p - 1)]   # input activation arrival
    b_ready: list[list] = [[None] * m for _ in range(p)]          # output gradient arrival
    pending: list[list[int]] = [[] for _ in range(p)]             # W to do, oldest first
    live = [0] * p
    order: list[list[tuple[str, int, int]]] = [[] for _ in range(p)]
    cap = [min(p - r, m) for r in range(p)]
    while any(next_b[r] < m or pending[r] for r in range(p)):
        r = min((r for r in range(p) if next_b[r] < m or pending[r]), key=lambda q: clock[q])
        t = clock[r]
        b, f = next_b[r], next_f[r]
        if len(pending[r]) >= p:  # W's kept inputs: at most p micro-batches
            clock[r] = t + 1
            order[r].append(("W", 0, pending[r].pop(0)))
        elif b < f and b_ready[r][b] is not None and b_ready[r][b] <= t:
            clock[r] = t + 1
            if r > 0:
                b_ready[r - 1][b] = clock[r]
            order[r].append(("B", 0, b))
            pending[r].append(b)
            live[r] -= 1
            next_b[r] += 1
        elif f < m and f_ready[r][f] is not None and f_ready[r][f] <= t and live[r] < cap[r]:
            clock[r] = t + 1
            if r < p - 1:
                f_ready[r + 1][f] = clock[r]
            else:
                b_ready[r][f] = clock[r]  # the last stage's loss gradient: at once
            order[r].append(("F", 0, f))
            live[r] += 1
            next_f[r] += 1
        elif pending[r]:
            clock[r] = t + 1
            order[r].append(("W", 0, pending[r].pop(0)))
        else:  # wait for the next message this rank can use
            times = [x for x in (b_ready[r][b] if b < f else None,
                                 f_ready[r][f] if f < m and live[r] < cap[r] else None)
                     if x is not None and x > t]
            if not times:  # another rank must move first: let it (it has a smaller clock)
                others = [clock[q] for q in range(p) if q != r and (next_b[q] < m or pending[q])]
                clock[r] = min(x for x in others if x > t) if any(x > t for x in others) \
                    else t + 1
            else:
                clock[r] = min(times)
    return order


def _compute_order(kind: str, p: int, m: int, v: int, r: int) -> list[tuple[str, int, int]]:
    if kind == "zbh1":
        return _zbh1_order(p, m)[r]
    if kind == "gpipe":
        return [("F", 0, i) for i in range(m)] + [("B", 0, i) for i in range(m)]
    if kind == "1f1b":
        warm = min(p - r - 1, m)
        out = [("F", 0, i) for i in range(warm)]
        for i in range(m - warm):
            out += [("F", 0, warm + i), ("B", 0, i)]
        out += [("B", 0, i) for i in range(m - warm, m)]
        return out
    if kind == "interleaved":
        if m % p:
            raise ValueError(f"interleaved schedule needs micro-batches ({m}) % pp ({p}) == 0")
        total = m * v
        warm = total if m == p else min((p - r - 1) * 2 + (v - 1) * p, total)

        def mb(k: int) -> int:
            return (k // (p * v)) * p + k % p

        def chunk_f(k: int) -> int:
            return (k % (p * v)) // p

        out = [("F", chunk_f(k), mb(k)) for k in range(warm)]
        for i in range(total - warm):
            k = warm + i
            out += [("F", chunk_f(k), mb(k)), ("B", v - 1 - chunk_f(i), mb(i))]
        out += [("B", v - 1 - chunk_f(i), mb(i)) for i in range(total - warm, total)]
        return out
    raise ValueError(f"unknown schedule {kind!r}")


def build(kind: str, p: int, m: int, v: int = 1) -> list[list[Action]]:
    """Every pipeline rank's action list, communication included."""
    if kind != "interleaved" and v != 1:
        raise ValueError("virtual stages need the interleaved schedule")
    nv = p * v
    out = []
    for r in range(p):
        acts: list[Action] = []
        for k, c, i in _compute_order(kind, p, m, v, r):
            vs = c * p + r
            if k == "F":
                if vs > 0:
                    acts.append(Action("recv_fwd", c, i))
                acts.append(Action("F", c, i))
                if vs < nv - 1:
                    acts.append(Action("send_fwd", c, i))
            elif k == "W":
                acts.append(Action("W", c, i))
            else:
                if vs < nv - 1:
                    acts.append(Action("recv_bwd", c, i))
                acts.append(Action("B", c, i))
                if vs > 0:
                    acts.append(Action("send_bwd", c, i))
        out.append(acts)
    return out


def bubble_formula(kind: str, p: int, m: int, v: int = 1) -> float:
    """Megatron's bubble fraction (idle time / ideal compute time); for zbh1, which has no
    closed form here, the simulated one with F : B : W = 1 : 1 : 1."""
    if kind == "zbh1":
        return simulate(build(kind, p, m, v), p, v, t_f=1.0, t_b=2.0).bubble if p > 1 else 0.0
    return (p - 1) / (m * (v if kind == "interleaved" else 1))


class SimResult(NamedTuple):
    makespan: float
    busy: list[float]            # compute time per rank
    bubble: float                # (makespan - ideal) / ideal
    max_in_flight: list[int]     # most forward activations kept per rank
    order: list[list[Action]]    # compute actions in execution order per rank


class Deadlock(RuntimeError):
    pass


def simulate(sched: Sequence[Sequence[Action]], p: int, v: int, t_f: float = 1.0,
             t_b: float = 2.0, t_comm: float = 0.0, t_w: float | None = None) -> SimResult:
    """Run a schedule on an idealised machine: each chunk's forward takes t_f / v, backward
    t_b / v, a message t_comm; sends never block, receives wait for their message. In a
    schedule with W actions the backward is split: B takes (t_b - t_w) / v and W t_w / v
    (t_w default t_b / 2). ``max_in_flight`` counts micro-batches forwarded and not yet
    backwarded (B), the activations 1F1B's memory bound is about.

    Raises Deadlock when no rank can move and some have actions left, and ValueError when an
    action is out of order (a backward before its forward, a receive with no sender).
    """
    nv = p * v
    clock = [0.0] * p
    busy = [0.0] * p
    pos = [0] * p
    live = [0] * p
    peak = [0] * p
    done_f: set[tuple[int, int]] = set()   # (virtual stage, mb)
    msgs: dict[tuple[str, int, int], float] = {}  # (kind, destination vstage, mb) -> arrival
    order: list[list[Action]] = [[] for _ in range(p)]
    split = any(a.kind == "W" for acts in sched for a in acts)
    t_w = (t_b / 2 if t_w is None else t_w) if split else 0.0
    done_b: set[tuple[int, int]] = set()
    while True:
        moved = False
        for r in range(p):
            while pos[r] < len(sched[r]):
                a = sched[r][pos[r]]
                vs = a.chunk * p + r
                if a.kind in ("recv_fwd", "recv_bwd"):
                    key = ("act" if a.kind == "recv_fwd" else "grad", vs, a.mb)
                    if key not in msgs:
                        break
                    clock[r] = max(clock[r], msgs.pop(key))
                elif a.kind == "send_fwd":
                    msgs[("act", vs + 1, a.mb)] = clock[r] + t_comm
                elif a.kind == "send_bwd":
                    msgs[("grad", vs - 1, a.mb)] = clock[r] + t_comm
                elif a.kind == "F":
                    clock[r] += t_f / v
                    busy[r] += t_f / v
                    done_f.add((vs, a.mb))
                    live[r] += 1
                    peak[r] = max(peak[r], live[r])
                    order[r].append(a)
                elif a.kind == "B":
                    if (vs, a.mb) not in done_f:
                        raise ValueError(f"rank {r}: backward {a} before its forward")
                    clock[r] += (t_b - t_w) / v
                    busy[r] += (t_b - t_w) / v
                    live[r] -= 1
                    done_b.add((vs, a.mb))
                    order[r].append(a)
                elif a.kind == "W":
                    if (vs, a.mb) not in done_b:
                        raise ValueError(f"rank {r}: weight gradient {a} before its backward")
                    clock[r] += t_w / v
                    busy[r] += t_w / v
                    order[r].append(a)
                else:
                    raise ValueError(f"unknown action {a}")
                pos[r] += 1
                moved = True
        if all(pos[r] == len(sched[r]) for r in range(p)):
            break
        if not moved:
            stuck = {r: sched[r][pos[r]] for r in range(p) if pos[r] < len(sched[r])}
            raise Deadlock(f"no rank can move: {stuck}")
    if msgs:
        raise ValueError(f"messages never received: {sorted(msgs)[:4]}")
    makespan = max(clock)
    ideal = max(busy)
    del nv
    return SimResult(makespan, busy, (makespan - ideal) / ideal, peak, order)


# -- running a schedule ------------------------------------------------------------------------
class ForwardBackwardResult(NamedTuple):
    loss_sum: float   # summed token losses of this rank's micro-batches (last stage), else 0
    wall_s: float     # the schedule, first action to last send completed
    busy_s: float     # forward + backward compute inside it
    act_peak_bytes: int = 0  # most bytes of forward caches (activations) held at once


def nbytes(obj: Any) -> int:
    """Bytes of the arrays in a (nested) cache: tuples, lists, arrays; others count 0."""
    if hasattr(obj, "nbytes") and hasattr(obj, "shape"):
        return int(obj.nbytes)
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(x) for x in obj)
    return 0


#: The contract of what :func:`get_forward_backward_func` returns.
ForwardBackwardFunc = Callable[[Any, Sequence[Any], Sequence[Any], float], ForwardBackwardResult]


def _tag(direction: int, dest_vs: int, mb: int, n_virtual: int, m: int) -> int:
    return (direction * n_virtual + dest_vs) * m + mb


def _execute(actions: Sequence[Action], model, inputs, targets, scale: float
             ) -> ForwardBackwardResult:
    """Run one pipeline rank's action list.

    Activations and gradients between virtual stages go point to point over the pipeline
    group, tagged by (direction, destination virtual stage, micro-batch) so every message is
    unambiguous. Every receive is posted (Irecv) when the step starts and waited for at its
    ``recv_*`` action; sends are Isend, completed at the end. After each action the pending
    requests are tested, which lets MPI progress large (rendezvous) transfers while this rank
    computes instead of at its next blocking call.
    """
    ps, xp = model.ps, model.xp
    m = len(inputs)
    nv = ps.n_virtual
    mbs = inputs[0].shape[0]
    act_shape = (mbs, model.s_local, model.cfg.hidden)
    pending: dict = {}
    caches: dict = {}
    outs: dict = {}
    reqs: list = []
    keep: list = []
    loss_sum = 0.0
    busy = 0.0
    tw = time.perf_counter()
    posted: dict = {}
    split = any(a.kind == "W" for a in actions)  # zero-bubble: B leaves the W work behind
    deferred: dict = {}
    held = peak = 0  # bytes of the forward caches alive (views count their own size)
    sizes: dict = {}
    for a in actions:  # every receive of the step, posted up front
        if a.kind in ("recv_fwd", "recv_bwd"):
            vs = model.chunks[a.chunk]
            src, _ = ps.stage_rank(vs - 1 if a.kind == "recv_fwd" else vs + 1)
            buf = np.empty(act_shape, dtype=model.dtype)
            req = ps.pp_group.Irecv(buf, source=src,
                                    tag=_tag(a.kind == "recv_bwd", vs, a.mb, nv, m))
            posted[(a.kind, (a.chunk, a.mb))] = (req, buf)
    for a in actions:
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
            reqs.append(ps.pp_group.Isend(h, dest=dst, tag=_tag(a.kind == "send_bwd", dst_vs,
                                                                a.mb, nv, m)))
        elif a.kind == "F":
            tc = time.perf_counter()
            inp = inputs[a.mb] if vs == 0 else pending.pop(("recv_fwd", key))
            out, caches[key] = model.forward(a.chunk, inp, targets[a.mb])
            sizes[key] = nbytes(caches[key])
            held += sizes[key]
            peak = max(peak, held)
            if vs == nv - 1:
                loss_sum += out
            else:
                outs[("send_fwd", key)] = out
            busy += time.perf_counter() - tc
        elif a.kind == "B":
            tc = time.perf_counter()
            dout = None if vs == nv - 1 else pending.pop(("recv_bwd", key))
            held -= sizes.pop(key)
            if split:
                deferred[key] = []
                din = model.backward(a.chunk, dout, caches.pop(key), scale, deferred[key])
            else:
                din = model.backward(a.chunk, dout, caches.pop(key), scale)
            if vs > 0:
                outs[("send_bwd", key)] = din
            busy += time.perf_counter() - tc
        elif a.kind == "W":
            tc = time.perf_counter()
            model.backward_w(deferred.pop(key))
            busy += time.perf_counter() - tc
        if reqs or posted:  # drive outstanding transfers forward
            MPI.Request.Testall(reqs + [r for r, _ in posted.values()])
    MPI.Request.Waitall(reqs)
    wall = time.perf_counter() - tw
    assert not caches and not pending and not outs and not deferred, \
        "schedule left work behind"
    return ForwardBackwardResult(float(loss_sum), wall, busy, peak)


def resolve(schedule: str, p: int, v: int = 1) -> str:
    """The schedule that actually runs: without pipelining (p == v == 1) every schedule is
    GPipe's (all forwards, then all backwards: gradient accumulation)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (one of {', '.join(SCHEDULES)})")
    return schedule if p > 1 or v > 1 else "gpipe"


def get_forward_backward_func(schedule: str, p: int, m: int, v: int = 1, rank: int = 0
                              ) -> ForwardBackwardFunc:
    """The function that runs one step's forward and backward passes on pipeline rank ``rank``.

    As Megatron-LM's ``get_forward_backward_func``: no pipelining (p == v == 1) runs all
    forwards then all backwards, ``1f1b`` is PipeDream-Flush, ``interleaved`` (v > 1) is the
    interleaved 1F1B; :func:`resolve` makes the choice, :func:`build` the action list.

    Parameters
    ----------
    schedule : {'gpipe', '1f1b', 'interleaved'}
        The schedule asked for.
    p, m, v : int
        Pipeline ranks, micro-batches per step, model chunks per pipeline rank.
    rank : int
        This rank's pipeline rank.

    Returns
    -------
    forward_backward : callable
        ``forward_backward(model, inputs, targets, scale) -> ForwardBackwardResult``, with
        ``model`` an :class:`hpc.train.model.GPT` (its ``ps`` gives the groups), ``inputs`` and
        ``targets`` the ``m`` micro-batches of this data-parallel rank ((mbs, seq_len) token
        arrays; only the first and last virtual stage read them) and ``scale`` the factor of
        every token's loss gradient (1 / tokens of the global batch, for a mean). Collective
        over ``model.ps.world`` (tensor-parallel collectives run inside the model; activations
        move over the pipeline group). It accumulates each parameter's gradient into
        ``model.store`` (zero it first) and does not run the optimizer. The result's
        ``loss_sum`` is the sum of token losses of the micro-batches on the last virtual
        stage (0 on other ranks; every tp rank holds it), ``wall_s`` the schedule's wall time
        and ``busy_s`` the compute inside it (their difference is the bubble). The attribute
        ``kind`` names the schedule that runs, ``actions`` the action list.
    """
    kind = resolve(schedule, p, v)
    actions = build(kind, p, m, v)[rank]

    def forward_backward(model, inputs: Sequence[Any], targets: Sequence[Any], scale: float
                         ) -> ForwardBackwardResult:
        if len(inputs) != m or len(targets) != m:
            raise ValueError(f"the schedule runs {m} micro-batches, got {len(inputs)} inputs "
                             f"and {len(targets)} targets")
        return _execute(actions, model, inputs, targets, scale)

    forward_backward.kind = kind  # type: ignore[attr-defined]
    forward_backward.actions = actions  # type: ignore[attr-defined]
    return forward_backward
