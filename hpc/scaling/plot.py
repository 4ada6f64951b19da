"""`python -m hpc.scaling plot DIR`: time, speedup and parallel efficiency against ranks.

Conventions (p0 = the study's smallest rank count, T0 its best time):

* strong (fixed global problem): ideal time T0 p0 / p; speedup S = p0 T0 / T(p), ideal S = p;
  efficiency S / p, ideal 1.
* weak (fixed work per rank): ideal time T0 (flat); scaled speedup p T0 / T(p) (Gustafson),
  ideal p; efficiency T0 / T(p), ideal 1.

Points run with more ranks than cores are drawn hollow over a shaded band: on an
oversubscribed machine they measure time-slicing, not scaling. Bars span the repeats' min-max.
"""
from __future__ import annotations

from pathlib import Path

from hpc.core.atomic import atomic_path

from . import results


def series(doc: dict) -> dict:
    """Ranks, best times, speedup, efficiency and their ideals for one study."""
    bt = results.best_times(doc)
    if not bt:
        raise ValueError("no valid runs to plot")
    ranks = list(bt)
    p0 = ranks[0]
    t0 = bt[p0]["min"]
    tmin = [bt[p]["min"] for p in ranks]
    weak = doc["study"]["mode"] == "weak"
    if weak:
        speed = [p * t0 / t for p, t in zip(ranks, tmin)]
        eff = [t0 / t for t in tmin]
        ideal_t = [t0 for _ in ranks]
    else:
        speed = [p0 * t0 / t for t in tmin]
        eff = [s / p for s, p in zip(speed, ranks)]
        ideal_t = [t0 * p0 / p for p in ranks]
    return {"ranks": ranks, "time": tmin, "tlo": [bt[p]["min"] for p in ranks],
            "thi": [bt[p]["max"] for p in ranks], "speedup": speed, "efficiency": eff,
            "ideal_time": ideal_t, "ideal_speedup": [float(p) for p in ranks],
            "ideal_efficiency": [1.0 for _ in ranks],
            "oversubscribed": [bt[p]["oversubscribed"] for p in ranks], "weak": weak}


def _draw(ax, s: dict, key: str, ideal_key: str, cores: int, label: str) -> None:
    r = s["ranks"]
    ax.plot(r, s[ideal_key], "k--", lw=1, label="ideal")
    ok = [i for i, o in enumerate(s["oversubscribed"]) if not o]
    ov = [i for i, o in enumerate(s["oversubscribed"]) if o]
    ax.plot(r, s[key], "-", color="C0", lw=1, alpha=0.6)
    if key == "time":
        lo = [s["time"][i] - s["tlo"][i] for i in range(len(r))]
        hi = [s["thi"][i] - s["time"][i] for i in range(len(r))]
        ax.errorbar(r, s["time"], yerr=[lo, hi], fmt="none", ecolor="C0", capsize=3)
    ax.plot([r[i] for i in ok], [s[key][i] for i in ok], "o", color="C0",
            label=f"measured (ranks <= {cores} cores)")
    if ov:
        ax.plot([r[i] for i in ov], [s[key][i] for i in ov], "o", mfc="none", color="C3",
                label="measured, oversubscribed")
    if max(r) > cores:
        ax.axvspan(cores, max(r) * 1.5, color="0.9", zorder=0)
        ax.axvline(cores, color="0.5", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(r)
    ax.set_xticklabels([str(p) for p in r])
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def plot(path: Path | str, out: Path | str | None = None) -> list[Path]:
    """Write time.png, speedup.png, efficiency.png and scaling.png (all three); return them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = results.load(path)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    outdir = Path(out) if out else folder
    outdir.mkdir(parents=True, exist_ok=True)
    s = series(doc)
    st = doc["study"]
    cores = int(doc["machine"]["cores"])
    title = f"hpc.{st['app']} {st['mode']} scaling ({' '.join(st['app_args'])})"
    panels = [("time", "ideal_time", "time per run (s)"),
              ("speedup", "ideal_speedup", "scaled speedup p T0/T" if s["weak"] else "speedup"),
              ("efficiency", "ideal_efficiency", "parallel efficiency")]
    written = []
    for key, ideal, label in panels:
        fig, ax = plt.subplots(figsize=(5, 3.8))
        _draw(ax, s, key, ideal, cores, label)
        if key == "time":
            ax.set_yscale("log")
        ax.set_title(title, fontsize=8)
        fig.tight_layout()
        p = outdir / f"{key}.png"
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(p)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (key, ideal, label) in zip(axes, panels):
        _draw(ax, s, key, ideal, cores, label)
        if key == "time":
            ax.set_yscale("log")
    fig.suptitle(title + f"; host has {cores} cores (shaded: ranks > cores)", fontsize=9)
    fig.tight_layout()
    p = outdir / "scaling.png"
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    written.append(p)
    return written
