"""A study's results on disk: DIR/results.json (everything) and DIR/results.csv (one row a run)."""
from __future__ import annotations

import csv
import io
import json
import math
import shlex
from pathlib import Path
from typing import Any

from hpc.core.atomic import atomic_path

FIXED = ["app", "mode", "ranks", "rep", "time_s", "time_source", "passed", "exit_code",
         "wall_s", "oversubscribed", "cores", "threads", "app_args"]


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def csv_rows(doc: dict) -> tuple[list[str], list[dict]]:
    """Columns and rows: the fixed ones, then scalar metrics (m_*) and phase best times (t_*)."""
    study = doc["study"]
    rows, mcols, tcols = [], [], []
    for run in doc["runs"]:
        rec = run.get("record") or {}
        row = {"app": study["app"], "mode": study["mode"], "ranks": run["ranks"],
               "rep": run["rep"], "time_s": run.get("time_s"), "time_source": run.get("time_source"),
               "passed": run.get("passed"), "exit_code": run.get("exit_code"),
               "wall_s": round(run.get("wall_s", 0.0), 4),
               "oversubscribed": run.get("oversubscribed"), "cores": doc["machine"]["cores"],
               "threads": study.get("threads"), "app_args": shlex.join(run.get("args", []))}
        for k, v in sorted((rec.get("metrics") or {}).items()):
            if _scalar(v):
                row[f"m_{k}"] = v
                if f"m_{k}" not in mcols:
                    mcols.append(f"m_{k}")
        for k, v in sorted((rec.get("timings") or {}).items()):
            if isinstance(v, dict) and _scalar(v.get("min")):
                row[f"t_{k}"] = v["min"]
                if f"t_{k}" not in tcols:
                    tcols.append(f"t_{k}")
        rows.append(row)
    return FIXED + mcols + tcols, rows


def write(out: Path, doc: dict) -> None:
    """Write results.json and results.csv atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "results.json") as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    cols, rows = csv_rows(doc)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    with atomic_path(out / "results.csv") as tmp:
        Path(tmp).write_text(buf.getvalue())


def load(path: Path | str) -> dict:
    """A study's results.json (path to the file or its folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such results file (run `python -m hpc.scaling run` first)")
    doc = json.loads(p.read_text())
    if not isinstance(doc, dict) or "runs" not in doc or "study" not in doc:
        raise ValueError(f"{p}: not a study results file")
    return doc


def best_times(doc: dict) -> dict[int, dict[str, Any]]:
    """Per rank count: min/mean/max time over the valid repeats, and whether oversubscribed."""
    out: dict[int, dict[str, Any]] = {}
    for run in doc["runs"]:
        if not run.get("passed") or run.get("time_s") is None:
            continue
        d = out.setdefault(int(run["ranks"]), {"times": [], "oversubscribed": False, "runs": []})
        d["times"].append(float(run["time_s"]))
        d["oversubscribed"] |= bool(run.get("oversubscribed"))
        d["runs"].append(run)
    for d in out.values():
        t = d["times"]
        d.update(min=min(t), mean=sum(t) / len(t), max=max(t))
    return dict(sorted(out.items()))
