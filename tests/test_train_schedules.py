"""hpc.train pipeline schedules as pure data, checked without MPI: every micro-batch's
forward and backward on every virtual stage exactly once and in dependency order, no deadlock
under send-never-blocks / receive-blocks semantics, Megatron's bubble fractions, and the
activations kept in flight."""
from __future__ import annotations

import itertools

import pytest

from hpc.train.schedules import Action, Deadlock, bubble_formula, build, simulate

CASES = ([("gpipe", p, m, 1) for p in (1, 2, 3, 4) for m in (1, 2, 4, 7, 8)]
         + [("1f1b", p, m, 1) for p in (1, 2, 3, 4) for m in (1, 2, 4, 7, 8)]
         + [("interleaved", p, m, v) for p in (1, 2, 3, 4) for v in (1, 2, 3)
            for m in (p, 2 * p, 3 * p)]
         + [("zbh1", p, m, 1) for p in (1, 2, 3, 4) for m in (1, 2, 4, 7, 8)])


@pytest.mark.parametrize("kind,p,m,v", CASES)
def test_every_microbatch_once_in_order(kind, p, m, v):
    sched = build(kind, p, m, v)
    for r, acts in enumerate(sched):
        f = [(a.chunk, a.mb) for a in acts if a.kind == "F"]
        b = [(a.chunk, a.mb) for a in acts if a.kind == "B"]
        want = sorted(itertools.product(range(v), range(m)))
        assert sorted(f) == want and sorted(b) == want
        for c in range(v):  # forwards of a chunk in micro-batch order, backwards too
            assert [i for cc, i in f if cc == c] == list(range(m))
            assert [i for cc, i in b if cc == c] == list(range(m))
        seen = set()
        for a in acts:  # a backward only after its forward; a send only after its compute
            if a.kind == "F":
                seen.add(("F", a.chunk, a.mb))
            elif a.kind == "B":
                assert ("F", a.chunk, a.mb) in seen
                seen.add(("B", a.chunk, a.mb))
            elif a.kind == "send_fwd":
                assert ("F", a.chunk, a.mb) in seen
            elif a.kind == "send_bwd":
                assert ("B", a.chunk, a.mb) in seen
        # communication only where a neighbouring virtual stage exists
        nv = p * v
        for a in acts:
            vs = a.chunk * p + r
            if a.kind in ("recv_fwd", "send_bwd"):
                assert vs > 0
            if a.kind in ("send_fwd", "recv_bwd"):
                assert vs < nv - 1


@pytest.mark.parametrize("kind,p,m,v", CASES)
def test_no_deadlock_and_bubble_matches_formula(kind, p, m, v):
    res = simulate(build(kind, p, m, v), p, v, t_f=1.0, t_b=2.0)
    assert res.bubble == pytest.approx(bubble_formula(kind, p, m, v), abs=1e-12)


@pytest.mark.parametrize("tf,tb", [(1.0, 1.0), (1.0, 3.0), (2.0, 1.0)])
def test_bubble_independent_of_cost_ratio(tf, tb):
    for kind, p, m, v in [("gpipe", 4, 8, 1), ("1f1b", 4, 8, 1), ("interleaved", 4, 8, 2)]:
        res = simulate(build(kind, p, m, v), p, v, t_f=tf, t_b=tb)
        assert res.bubble == pytest.approx(bubble_formula(kind, p, m, v), abs=1e-12)


def test_interleaving_shrinks_the_bubble():
    p, m = 4, 8
    b1 = simulate(build("1f1b", p, m), p, 1).bubble
    b2 = simulate(build("interleaved", p, m, 2), p, 2).bubble
    assert b2 == pytest.approx(b1 / 2)


def test_activations_in_flight():
    p, m = 4, 8
    g = simulate(build("gpipe", p, m), p, 1)
    assert g.max_in_flight == [m] * p                     # GPipe keeps every micro-batch
    o = simulate(build("1f1b", p, m), p, 1)
    assert o.max_in_flight == [p - r for r in range(p)]   # 1F1B: at most p - rank
    v = 2
    i = simulate(build("interleaved", p, m, v), p, v)
    # Megatron's interleaved warm-up: (p - r - 1) * 2 + (v - 1) * p forwards, plus one
    assert i.max_in_flight == [min((p - r - 1) * 2 + (v - 1) * p + 1, m * v) for r in range(p)]


def test_1f1b_steady_state_alternates():
    acts = [a.kind for a in build("1f1b", 4, 8)[1] if a.kind in "FB"]
    warm = 4 - 1 - 1
    assert acts[:warm] == ["F"] * warm
    steady = acts[warm:warm + 2 * (8 - warm)]
    assert steady == ["F", "B"] * (8 - warm)


def test_simulator_detects_deadlock():
    # rank 0 waits for a gradient before sending its activation: a cycle
    bad = [[Action("recv_bwd", 0, 0), Action("F", 0, 0), Action("send_fwd", 0, 0),
            Action("B", 0, 0)],
           [Action("recv_fwd", 0, 0), Action("F", 0, 0), Action("B", 0, 0),
            Action("send_bwd", 0, 0)]]
    with pytest.raises(Deadlock):
        simulate(bad, 2, 1)


def test_simulator_rejects_backward_before_forward():
    with pytest.raises(ValueError):
        simulate([[Action("B", 0, 0), Action("F", 0, 0)]], 1, 1)


def test_interleaved_needs_microbatches_multiple_of_p():
    with pytest.raises(ValueError):
        build("interleaved", 4, 6, 2)


def test_comm_latency_grows_bubble_not_order():
    p, m = 4, 8
    res = simulate(build("1f1b", p, m), p, 1, t_comm=0.25)
    assert res.bubble > bubble_formula("1f1b", p, m)


@pytest.mark.parametrize("p,m", [(2, 1), (2, 8), (3, 7), (4, 4), (4, 8), (4, 16)])
def test_zbh1_every_weight_gradient_once_after_its_backward(p, m):
    for acts in build("zbh1", p, m):
        w = [a.mb for a in acts if a.kind == "W"]
        assert sorted(w) == list(range(m))
        done_b, pending = set(), 0
        for a in acts:
            if a.kind == "B":
                done_b.add(a.mb)
                pending += 1
            elif a.kind == "W":
                assert a.mb in done_b
                pending -= 1
            assert pending <= p  # what pending W's keep is bounded too


@pytest.mark.parametrize("p,m", [(2, 8), (3, 7), (4, 8), (4, 16)])
def test_zbh1_bubble_a_third_of_1f1b_at_the_same_memory(p, m):
    """Qi et al. 2023: with F, B and W of equal cost ZB-H1's bubble is a third of 1F1B's,
    its activations in flight those of 1F1B."""
    z = simulate(build("zbh1", p, m), p, 1, t_f=1.0, t_b=2.0, t_w=1.0)
    o = simulate(build("1f1b", p, m), p, 1, t_f=1.0, t_b=2.0)
    assert z.bubble <= o.bubble / 3 + 1e-12, (z.bubble, o.bubble)
    assert z.max_in_flight == o.max_in_flight
    assert bubble_formula("zbh1", p, m) == pytest.approx(z.bubble)
