"""The package's structure: no import cycles, no sys.path edits, every workload in one shape.

Static checks over the source (``ast``), so they cost no imports and name the offending file.
"""
from __future__ import annotations

import ast
from pathlib import Path

import hpc

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hpc"


# -- the import graph ------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_module(name: str, modules: dict[str, Path]) -> bool:
    """A Python module of the package, or one of its compiled extensions (hpc._core, ...)."""
    if name in modules:
        return True
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".pyi").exists() or any(base.parent.glob(base.name + ".*.so"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module):
    """Every import statement of a module, at module level or inside a function, except those
    under ``if TYPE_CHECKING:`` (which never run). An import moved into a function to dodge a
    circle only defers the circle: the four circles this suite had (cg mg/precond, halo
    engine/model, pagerank app/ppr_app, spgemm gpu/local) each closed through one."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The hpc modules that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from X import y` imports the module X.y when there is one, else X (for y)
            targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}", modules) else base
                       for a in node.names]
        out.update(t for t in targets if t in modules and t != name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a closed path of module names) per strongly connected component with
    more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        sccs.append(sorted(comp))
    return [_cycle_in(comp, graph) for comp in sorted(sccs)]


def _cycle_in(comp: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest closed path through the component's first module (breadth first)."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in component {comp}")  # not reached: an SCC has one


def test_cycle_finder_finds_and_prints_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}, "f": {"d"}}
    assert import_cycles(g) == [["a", "b", "c", "a"]]
    assert import_cycles({"x": {"y"}, "y": set()}) == []


def test_graph_resolves_relative_and_from_imports():
    g = import_graph()
    # hpc/core/app.py: `from . import atomic, backends, envinfo`, `from .runtime import world`,
    # `from .. import __version__`
    assert {"hpc.core.atomic", "hpc.core.backends", "hpc.core.envinfo", "hpc.core.runtime",
            "hpc"} <= g["hpc.core.app"]
    # an import inside a function counts (hpc/__main__.py: list_main imports backends);
    # one under TYPE_CHECKING does not (hpc/core/__init__.py)
    assert "hpc.core.backends" in g["hpc.__main__"]
    assert "hpc.core.app" not in g["hpc.core"]


def test_no_import_cycles():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles among hpc's modules:\n" + "\n".join(
        "  " + " -> ".join(c) for c in cycles)


# -- no sys.path edits -----------------------------------------------------------------------
SOURCE_DIRS = ("hpc", "scaling", "tests", "examples", "tools")
_MUTATORS = {"insert", "append", "extend", "remove", "pop", "clear", "__setitem__", "__iadd__"}


def _is_sys_path(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def sys_path_edits(path: Path) -> list[int]:
    """Line numbers that change sys.path (or call site.addsitedir) in one file."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr in _MUTATORS and _is_sys_path(f.value):
                lines.append(node.lineno)
            if f.attr == "addsitedir" and isinstance(f.value, ast.Name) and f.value.id == "site":
                lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if _is_sys_path(t) or (isinstance(t, ast.Subscript) and _is_sys_path(t.value)):
                    lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(
                a.name == "path" for a in node.names):
            lines.append(node.lineno)  # `from sys import path` then path.insert(...)
    return sorted(lines)


def test_sys_path_edit_finder(tmp_path):
    probe = tmp_path / "probe.py"
    edit = "sys." + "path"  # spelt apart, so this file holds no edit for a text search to flag
    probe.write_text(f"import sys, site\n{edit}.insert(0, 'x')\n{edit} += ['y']\n"
                     f"{edit}[0] = 'z'\nsite.addsitedir('w')\nprint({edit})\n")
    assert sys_path_edits(probe) == [2, 3, 4, 5]


def test_no_sys_path_edits():
    found = [f"{p.relative_to(ROOT)}:{line}"
             for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*.py"))
             for line in sys_path_edits(p)]
    assert not found, "sys.path edited (install the package instead): " + ", ".join(found)


# -- one shape per workload ------------------------------------------------------------------
WORKLOAD_FILES = ("__init__.py", "__main__.py", "app.py", "spec.py")


def workload_dirs() -> list[Path]:
    """The workloads hpc lists, and any other package run as an app (a new workload)."""
    names = set(hpc.WORKLOADS) | {p.parent.name for p in PKG.glob("*/app.py")
                                  if (p.parent / "__main__.py").exists()}
    return [PKG / n for n in sorted(names)]


def test_every_workload_has_main_app_and_spec():
    missing = [f"hpc/{d.name}/{f}" for d in workload_dirs() for f in WORKLOAD_FILES
               if not (d / f).is_file()]
    assert not missing, "workload folders lack: " + ", ".join(missing)
