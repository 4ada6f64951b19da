"""Pipeline schedules as pure data: for each pipeline rank, the ordered list of its actions.

A schedule is built without MPI and executed by ``trainer.py`` action by action, so its order,
deadlock freedom, bubble and activation memory are unit-tested here on plain lists.

Actions (``Action(kind, chunk, mb)``; chunk is the model chunk on this rank, virtual stage
``chunk * p + rank`` as in Megatron's interleaved schedule):

- ``F`` / ``B``: forward / backward of micro-batch ``mb`` through the chunk;
- ``recv_fwd`` / ``send_fwd``: the chunk's input activation from, its output to, the
  neighbouring virtual stage;
- ``recv_bwd`` / ``send_bwd``: the gradient of the chunk's output from the next stage, of its
  input to the previous stage.

Sends are non-blocking (MPI Isend; completed at the end of the step) and receives block, which
is the semantics :func:`simulate` models.

Schedules (p pipeline ranks, m micro-batches, v chunks per rank):

- ``gpipe``: all forwards, then all backwards; m activations in flight; bubble (p-1)/m.
- ``1f1b`` (PipeDream-Flush, Megatron's default): p-r-1 warm-up forwards, then alternate one
  forward and one backward; at most p-r activations in flight; bubble (p-1)/m.
- ``interleaved``: Megatron's interleaved 1F1B over v model chunks per rank (needs m a
  multiple of p); bubble (p-1)/(v m).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

SCHEDULES = ("gpipe", "1f1b", "interleaved")


class Action(NamedTuple):
    kind: str
    chunk: int
    mb: int


def _compute_order(kind: str, p: int, m: int, v: int, r: int) -> list[tuple[str, int, int]]:
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
            else:
                if vs < nv - 1:
                    acts.append(Action("recv_bwd", c, i))
                acts.append(Action("B", c, i))
                if vs > 0:
                    acts.append(Action("send_bwd", c, i))
        out.append(acts)
    return out


def bubble_formula(kind: str, p: int, m: int, v: int = 1) -> float:
    """Megatron's bubble fraction (idle time / ideal compute time)."""
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
             t_b: float = 2.0, t_comm: float = 0.0) -> SimResult:
    """Run a schedule on an idealised machine: each chunk's forward takes t_f / v, backward
    t_b / v, a message t_comm; sends never block, receives wait for their message.

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
                    clock[r] += t_b / v
                    busy[r] += t_b / v
                    live[r] -= 1
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
