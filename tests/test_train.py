"""hpc.train end to end under mpiexec: the loss curve is the same in every layout (float64,
1e-9 relative), checkpoints move between layouts, bad layouts exit 2, real text trains."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import data_file, load_json, run_app

# A tiny model: 8 layers so pp4 x vpp2 fits, vocabulary 200 so the padded logits (to 256) are
# masked, global batch 12 so dp 3 (an odd count) divides it.
TINY = ["--layers", "8", "--hidden", "16", "--heads", "4", "--seq-len", "8", "--vocab", "200",
        "--global-batch", "12", "--dtype", "float64", "--lr", "1e-2", "--seed", "7"]
STEPS = 4
TOL = 1e-9


def train(tmp_path, n, *args, name="run", steps=STEPS, check=True):
    out = tmp_path / f"{name}.json"
    r = run_app("train", n, *TINY, "--steps", str(steps), "--json", str(out), *args, timeout=240)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
        return load_json(out)
    return r


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The single-rank curve every layout must reproduce."""
    rec = train(tmp_path_factory.mktemp("base"), 1, "--micro-batches", "4", "--reference", "off")
    assert rec["validation"]["passed"]
    return rec["metrics"]["losses"]


def rel(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


LAYOUTS = {
    "tp2": (2, ["--tp", "2"]),
    "pp2": (2, ["--pp", "2"]),
    "dp2": (2, ["--dp", "2", "--micro-batches", "2"]),
    "dp3": (3, ["--dp", "3", "--micro-batches", "2"]),
    "tp2xpp2": (4, ["--tp", "2", "--pp", "2"]),
    "dp2xtp2": (4, ["--dp", "2", "--tp", "2", "--micro-batches", "2"]),
    "pp2xvpp2xdp2": (4, ["--pp", "2", "--vpp", "2", "--dp", "2", "--micro-batches", "2"]),
    "pp4-1f1b": (4, ["--pp", "4", "--schedule", "1f1b", "--micro-batches", "6"]),
    "pp4-interleaved": (4, ["--pp", "4", "--vpp", "2", "--micro-batches", "4"]),
    "pp4-gpipe": (4, ["--pp", "4", "--schedule", "gpipe", "--micro-batches", "3"]),
    "tp4-sp": (4, ["--tp", "4", "--sequence-parallel"]),
    "dp2xtp2-sp-zero1-gather": (4, ["--dp", "2", "--tp", "2", "--sequence-parallel", "--zero1",
                                    "--overlap-param-gather", "--micro-batches", "3"]),
    "tp2xpp2-recompute-offload": (4, ["--tp", "2", "--pp", "2", "--recompute", "--offload"]),
    "pp2xdp2-zbh1-overlap": (4, ["--pp", "2", "--dp", "2", "--schedule", "zbh1",
                                 "--overlap-grad-reduce", "--micro-batches", "2"]),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_reproduces_single_rank_curve(tmp_path, baseline, layout):
    n, args = LAYOUTS[layout]
    rec = train(tmp_path, n, *args, steps=3)
    losses = rec["metrics"]["losses"]
    assert len(losses) == 3
    assert rel(losses, baseline[:3]) <= TOL, (losses, baseline)
    # the app's own check: rank 0 retrained the reference and compared
    assert rec["validation"]["passed"]
    assert rec["validation"]["reference_max_rel_diff"] <= TOL
    assert rec["ranks"] == n


def test_checkpoint_moves_between_layouts(tmp_path, baseline):
    ck = tmp_path / "ck.h5"
    a = train(tmp_path, 4, "--tp", "2", "--pp", "2", "--steps", "2", "--save", str(ck),
              name="a", steps=2)
    assert rel(a["metrics"]["losses"], baseline[:2]) <= TOL
    with h5py.File(ck) as f:  # single-rank layout, padded vocabulary, step and optimizer state
        assert f["/params/embed.wte"].shape == (256, 16)
        assert f["/params/layers.3.attn.qkv.w"].shape == (16, 48)
        assert f["/adam/v/layers.7.mlp.fc2.w"].shape == (64, 16)
        assert int(f.attrs["step"]) == 2 and int(f.attrs["adam_t"]) == 2
        assert not np.any(f["/params/embed.wte"][200:])
        names = [k for k in f.attrs]
        assert "seed" in names
    for n, args in [(4, ["--pp", "2", "--vpp", "2", "--dp", "2", "--micro-batches", "2",
                         "--zero1"]), (1, [])]:
        b = train(tmp_path, n, "--load", str(ck), *args, name=f"b{n}", steps=2)
        assert b["metrics"]["first_step"] == 2
        assert rel(b["metrics"]["losses"], baseline[2:4]) <= TOL, (b["metrics"]["losses"], baseline)
        assert b["validation"]["passed"]


def test_checkpoint_written_atomically_and_overwritten(tmp_path):
    ck = tmp_path / "sub" / "ck.h5"
    train(tmp_path, 1, "--save", str(ck), steps=1, name="s1")
    train(tmp_path, 1, "--save", str(ck), "--load", str(ck), steps=1, name="s2")
    with h5py.File(ck) as f:
        assert int(f.attrs["step"]) == 2
    assert [p.name for p in ck.parent.iterdir()] == ["ck.h5"]  # no temporaries left


BAD = {
    "product": (2, ["--tp", "2", "--pp", "2", "--dp", "1"], "rank(s)"),
    "layers-pp": (2, ["--pp", "2", "--layers", "3"], "not divisible by --pp"),
    "layers-vpp": (2, ["--pp", "2", "--vpp", "3"], "not divisible by --pp"),
    "interleaved-mb": (2, ["--pp", "2", "--vpp", "2", "--micro-batches", "3"],
                       "multiple of --pp"),
    "heads-tp": (2, ["--tp", "2", "--heads", "3", "--hidden", "15"], "--heads 3 is not divisible"),
    "batch": (2, ["--dp", "2", "--micro-batches", "4"], "--global-batch 12"),
    "sp-seq": (4, ["--tp", "4", "--sequence-parallel", "--seq-len", "6"], "--seq-len 6"),
    "load-missing": (2, ["--tp", "2", "--load", "/nonexistent/ck.h5"], "cannot open"),
    "data-missing": (2, ["--tp", "2", "--data", "/nonexistent/text.txt", "--vocab", "256"],
                     "--data"),
    "save-unwritable": (2, ["--tp", "2", "--save", "{tmp}/file.txt/ck.h5"], "cannot be written"),
    "data-small-vocab": (1, ["--data", "/nonexistent/text.txt"], "at least 256"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_usage_exits_2(tmp_path, case):
    n, args, msg = BAD[case]
    (tmp_path / "file.txt").write_text("a file, not a folder")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = train(tmp_path, n, *args, check=False, steps=1)
    assert r.returncode == 2, r.stdout + r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and msg in errs[0], r.stderr
    assert "Traceback" not in r.stderr


def test_load_rejects_other_model(tmp_path):
    ck = tmp_path / "ck.h5"
    train(tmp_path, 1, "--save", str(ck), steps=1, name="s")
    r = run_app("train", 2, *TINY, "--tp", "2", "--hidden", "32", "--load", str(ck), "--steps", "1")
    assert r.returncode == 2 and "hidden" in r.stderr and "Traceback" not in r.stderr


def test_float32_layout_close_to_reference(tmp_path):
    rec = train(tmp_path, 2, "--tp", "2", "--dtype", "float32", steps=3)
    assert rec["validation"]["reference_max_rel_diff"] <= 1e-4


def test_trains_on_real_text(tmp_path):
    text = data_file("text", "tinyshakespeare.txt")
    out = tmp_path / "t.json"
    r = run_app("train", 2, "--data", str(text), "--dp", "2", "--layers", "2", "--hidden", "64",
                "--heads", "4", "--seq-len", "64", "--global-batch", "16", "--micro-batches",
                "2", "--steps", "40", "--lr", "3e-3", "--json", str(out), "--reference", "off",
                timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    losses = load_json(out)["metrics"]["losses"]
    # ln 256 = 5.55 at the start; byte statistics of English alone are worth > 2 nats
    assert losses[0] > 5.0
    assert np.mean(losses[-5:]) < 3.3, losses


@pytest.mark.slow
def test_bf16_300_steps_within_2_percent_of_float32(tmp_path):
    """The issue's mixed-precision check: after 300 steps on tinyshakespeare a bfloat16 run's
    loss (mean of the last ten steps, the same batches) is within 2% of the float32 run's
    (measured: 2.3259 against 2.3218, 0.18%; the last step alone 2.2995 against 2.3331).
    ~45 s on one core."""
    pytest.importorskip("ml_dtypes")
    text = data_file("text", "tinyshakespeare.txt")
    means = {}
    for name, extra in (("f32", []), ("bf16", ["--bf16"])):
        out = tmp_path / f"{name}.json"
        r = run_app("train", 1, "--data", str(text), "--layers", "2", "--hidden", "64",
                    "--heads", "4", "--seq-len", "64", "--global-batch", "16",
                    "--micro-batches", "1", "--steps", "300", "--reference", "off",
                    "--json", str(out), *extra, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        losses = load_json(out)["metrics"]["losses"]
        assert len(losses) == 300 and losses[0] > 5.0
        means[name] = float(np.mean(losses[-10:]))
    assert means["f32"] < 2.6, means  # it learnt (ln 256 = 5.55 at the start)
    assert abs(means["bf16"] - means["f32"]) <= 0.02 * means["f32"], means


def test_progress_line_per_step_and_metrics(tmp_path):
    out = tmp_path / "m.json"
    r = run_app("train", 2, *TINY, "--pp", "2", "--steps", "3", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert sum(" loss " in ln and "step" in ln for ln in r.stdout.splitlines()) == 3
    m = load_json(out)["metrics"]
    assert m["tokens_per_s"] > 0 and 0 < m["mfu"] < 1
    assert m["bubble_fraction_formula"] == pytest.approx(1 / 4)  # (p-1)/m, m = 4
    assert m["bubble_fraction"] >= 0
