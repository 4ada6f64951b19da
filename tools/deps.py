"""Print the dependencies named in pyproject.toml (plus extras), one per line, for pip -r.

One list of dependencies: the Makefile installs from pyproject.toml instead of a second copy.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def main(extras: list[str]) -> None:
    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    project = meta["project"]
    reqs = list(meta["build-system"]["requires"]) + list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    print("\n".join(dict.fromkeys(reqs)))


if __name__ == "__main__":
    main(sys.argv[1:])
