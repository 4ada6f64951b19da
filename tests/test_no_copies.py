"""No code is copied between workloads: a window of WINDOW consecutive significant lines may not
appear in two different packages of hpc (hpc/core counts as one, each workload as one).

Significant lines are stripped, non-blank, not comments, not imports and not bare brackets, so
formatting cannot hide a copy and shared boilerplate (imports, closing brackets) cannot fake one.
The fix for a finding is one shared function in hpc/core (or in the package that owns the idea),
called from both places.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

from conftest import ROOT

WINDOW = 6
TRIVIAL = {")", "]", "}", "),", "],", "},", "))", "else:", "try:", "return", "pass", '"""'}


def _significant(path: Path) -> list[tuple[int, str]]:
    out = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#") or s in TRIVIAL:
            continue
        if s.startswith(("import ", "from ")) and " import " in f" {s} ":
            continue
        out.append((no, s))
    return out


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT / "hpc").parts
    return rel[0] if len(rel) > 1 else "hpc"


def find_copies(window: int = WINDOW) -> list[str]:
    seen: dict[str, list[tuple[str, Path, int]]] = defaultdict(list)
    for path in sorted((ROOT / "hpc").rglob("*.py")):
        lines = _significant(path)
        pkg = _package(path)
        for i in range(len(lines) - window + 1):
            chunk = "\n".join(s for _, s in lines[i:i + window])
            seen[hashlib.blake2b(chunk.encode(), digest_size=12).hexdigest()].append(
                (pkg, path, lines[i][0]))
    found = set()
    for places in seen.values():
        if len({pkg for pkg, _, _ in places}) > 1:
            where = sorted({f"{path.relative_to(ROOT)}:{no}" for _, path, no in places})
            found.add(" <-> ".join(where))
    return sorted(found)


def test_no_code_copied_between_packages():
    copies = find_copies()
    assert not copies, ("the same code stands in two packages (make one shared function):\n"
                        + "\n".join(copies[:30]))
