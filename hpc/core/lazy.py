"""Lazy public names for a package (PEP 562): ``import hpc.cg`` costs nothing until used.

Reading a workload's spec, listing the workloads or printing ``--help`` must not pay for
SciPy, mpi4py (which initialises MPI) or a native extension. A package lists its public names
and the submodule defining each; the first access imports that submodule and caches the name::

    __getattr__, __dir__ = lazy_exports(__name__, {"solve": ".api", "Solver": ".api"})
    __all__ = ["solve", "Solver"]
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` resolving ``exports`` on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Public name -> the module defining it, relative (``".api"``) or absolute.

    Returns
    -------
    (__getattr__, __dir__)
        To assign at the package's top level.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
