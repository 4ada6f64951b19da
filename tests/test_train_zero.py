"""ZeRO-2 and ZeRO-3 through the train app under mpiexec: dp 3 (odd) reproduces the one-rank
float64 curve, the record reports the sharded memory, and a ZeRO-3 checkpoint continues at
another layout."""
from __future__ import annotations

import pytest

from test_train import TINY, baseline, rel, train  # noqa: F401  (baseline: the fixture)

TOL = 1e-12


@pytest.mark.parametrize("stage", ["2", "3"])
def test_zero_dp3_reproduces_single_rank_curve(tmp_path, baseline, stage):  # noqa: F811
    rec = train(tmp_path, 3, "--dp", "3", "--micro-batches", "2", "--zero", stage,
                "--overlap-grad-reduce", steps=3)
    assert rel(rec["metrics"]["losses"], baseline[:3]) <= TOL, rec["metrics"]["losses"]
    assert rec["validation"]["passed"]
    assert rec["metrics"]["zero_stage"] == int(stage)
    mem = rec["metrics"]["memory_bytes_per_rank"]
    whole = mem["model_params"]  # float64: 8 bytes an element
    assert mem["optimizer"] < 2 * whole / 3 + 64  # Adam's moments: 1/3 each
    assert mem["grads"] < whole  # sharded: never the whole gradient at once
    if stage == "3":
        assert mem["params"] < whole


def test_zero3_checkpoint_moves_to_another_layout(tmp_path, baseline):  # noqa: F811
    ck = tmp_path / "ck.h5"
    a = train(tmp_path, 3, "--dp", "3", "--micro-batches", "2", "--zero", "3", "--save",
              str(ck), "--reference", "off", name="a", steps=2)
    assert rel(a["metrics"]["losses"], baseline[:2]) <= TOL
    b = train(tmp_path, 2, "--load", str(ck), "--dp", "2", "--micro-batches", "2", "--zero", "2",
              name="b", steps=2)
    assert b["metrics"]["first_step"] == 2
    assert rel(b["metrics"]["losses"], baseline[2:4]) <= TOL, b["metrics"]["losses"]
    assert b["validation"]["passed"]


@pytest.mark.parametrize("stage", ["2", "3"])
def test_zero_mixed_tp_sp_dp_reproduces_single_rank_curve(tmp_path, baseline,  # noqa: F811
                                                          stage):
    """tp 2 with sequence parallelism (replicated norms summed over tp first) x dp 2."""
    rec = train(tmp_path, 4, "--dp", "2", "--tp", "2", "--sequence-parallel", "--zero", stage,
                "--micro-batches", "2", "--reference", "off", steps=3)
    assert rel(rec["metrics"]["losses"], baseline[:3]) <= TOL, rec["metrics"]["losses"]
    assert rec["metrics"]["zero_stage"] == int(stage)


@pytest.mark.parametrize("n,layout", [(3, ["--dp", "3"]),
                                      (4, ["--dp", "2", "--pp", "2", "--schedule", "1f1b"])])
def test_zero3_prefetch_reproduces_single_rank_curve(tmp_path, baseline, n,  # noqa: F811
                                                     layout):
    """--zero 3 --overlap-param-gather: layer i + 1's all-gather (i - 1's in the backward)
    starts as layer i begins; the curve is unchanged, the prefetches are used, and the
    gathered parameters peak at two layers beside the shard (one layer of parameters,
    gradients and two moments bounds them: "1/dp of the whole plus one layer")."""
    rec = train(tmp_path, n, *layout, "--micro-batches", "2", "--zero", "3",
                "--overlap-param-gather", "--reference", "off", steps=3)
    m = rec["metrics"]
    assert rel(m["losses"], baseline[:3]) <= TOL, m["losses"]
    dp = int(layout[1])
    per_step_layers = 8 // (n // dp) * 2 * 2 - 2  # (forward + backward) x micro-batches
    assert m["param_prefetch_hits"] >= 3 * per_step_layers // 2
    mem = m["memory_bytes_per_rank"]
    whole = mem["model_params"]
    h, s, v = 16, 8, 256  # TINY: hidden, seq-len, vocabulary padded
    layer = (12 * h * h + 13 * h) * 8
    rest = (v * h + s * h + 2 * h) * 8  # the embedding and head groups, gathered whole
    assert mem["params"] <= whole / dp + 2 * layer + rest
    total = mem["params"] + mem["grads"] + mem["optimizer"]
    assert total <= 4 * whole / dp + 4 * layer + 2 * rest  # one layer's p, g, m and v
