"""The type stubs of the compiled extensions (hpc/_core.pyi, hpc/_cuda.pyi) match the built
modules: the same names in every submodule and class, and every function's parameters (count,
names, keyword-only, defaults) as pybind11 reports them, so a stub cannot rot.

In a stub each submodule ``hpc._core.<name>`` is a ``ModuleType`` subclass ``_<name>`` whose
static methods are the submodule's functions and whose nested classes are its classes, with
the module attribute ``<name>: _<name>``.
"""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hpc"
EXTENSIONS = ("_core", "_cuda", "_kokkos")
_SKIP_DUNDERS = {"__doc__", "__module__", "__init__", "__dict__", "__weakref__", "__file__",
                 "__name__", "__loader__", "__package__", "__spec__", "__path__", "__builtins__",
                 "__cached__", "__all__"}


def _built(ext: str):
    try:
        return importlib.import_module(f"hpc.{ext}")
    except ImportError:
        return None


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_") or (
        n.startswith("__") and n.endswith("__") and n not in _SKIP_DUNDERS)}


def _runtime_names(obj) -> set[str]:
    if isinstance(obj, type):
        return _public(vars(obj))
    return _public(dir(obj))


# -- the stub, read with ast -----------------------------------------------------------------
class Namespace(dict):
    """name -> ast node (FunctionDef, ClassDef, AnnAssign) or a nested Namespace."""


def _members(body: list[ast.stmt]) -> Namespace:
    ns = Namespace()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AnnAssign)):
            name = node.name if isinstance(node, ast.FunctionDef) else node.target.id
            if name in ns and isinstance(node, ast.FunctionDef):
                continue  # an @overload
            ns[name] = node
        elif isinstance(node, ast.ClassDef):
            ns[node.name] = node
    return ns


def stub_namespace(path: Path) -> Namespace:
    tree = ast.parse(path.read_text(), str(path))
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)
               and any(getattr(b, "id", None) == "ModuleType" for b in n.bases)}
    ns = Namespace()
    for name, node in _members(tree.body).items():
        if name in helpers:
            continue
        if (isinstance(node, ast.AnnAssign) and isinstance(node.annotation, ast.Name)
                and node.annotation.id in helpers):
            ns[name] = _members(helpers[node.annotation.id].body)
        else:
            ns[name] = node
    return ns


def _stub_names(node) -> set[str]:
    if isinstance(node, Namespace):
        return _public(node)
    if isinstance(node, ast.ClassDef):
        return _public(_members(node.body))
    return set()


# -- pybind11's signatures -------------------------------------------------------------------
def _split_top(text: str) -> list[str]:
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def runtime_params(func, name: str) -> list[list[tuple[str, str, bool]]] | None:
    """Each overload's parameters as (name, kind, has_default), kind 'pos' or 'kw'; None when
    the object has no pybind11 signature."""
    doc = getattr(func, "__doc__", None) or ""
    sigs = []
    for m in re.finditer(rf"^(?:\d+\. )?{re.escape(name)}\((.*)\) -> ", doc, flags=re.M):
        params, kind = [], "pos"
        for p in _split_top(m.group(1)):
            if p == "*":
                kind = "kw"
                continue
            if p == "/":
                continue
            pname = re.split(r"[:=]", p, maxsplit=1)[0].strip()
            if pname == "self":
                continue
            params.append((pname, kind, " = " in p or re.search(r"(?<![=!<>])=(?!=)", p) is not None))
        sigs.append(params)
    return sigs or None


def stub_params(fn: ast.FunctionDef) -> list[tuple[str, str, bool, bool]]:
    """(name, kind, has_default, positional_only) of a stub function, self excluded."""
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [False] * (len(pos) - len(a.defaults)) + [True] * len(a.defaults)
    out = [(p.arg, "pos", d, i < len(a.posonlyargs)) for i, (p, d) in enumerate(zip(pos, defaults))]
    out += [(p.arg, "kw", d is not None, False) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    is_static = any(getattr(d, "id", None) == "staticmethod" for d in fn.decorator_list)
    if out and out[0][0] in ("self", "cls") and not is_static:
        out = out[1:]
    return out


def signature_problems(qual: str, fn: ast.FunctionDef, obj) -> list[str]:
    sigs = runtime_params(obj, fn.name)
    if sigs is None:
        return []
    mine = stub_params(fn)
    why = []
    for sig in sigs:
        why = []
        if len(sig) != len(mine):
            why.append(f"{qual}: {len(mine)} parameters in the stub, {len(sig)} in the module")
            continue
        for (rn, rk, rd), (sn, sk, sd, spos) in zip(sig, mine):
            if re.fullmatch(r"arg\d+", rn):
                if not spos:
                    why.append(f"{qual}: {sn!r} must be positional-only (the module's is unnamed)")
            elif (sn, sk) != (rn, rk) or spos:
                why.append(f"{qual}: parameter {sn!r} ({'positional-only' if spos else sk}) "
                           f"in the stub, {rn!r} ({rk}) in the module")
            if sd and not rd:
                why.append(f"{qual}: {sn!r} has a default in the stub, none in the module")
        if not why:
            return []  # matches one overload
    return why


# Parts of a stub that a build may lack, and the module's own word that it does.
OPTIONAL = {"hpc._core.stream_stdpar": lambda core: not core.has_stdpar}  # built with TBB only


def compare(stub: Namespace, module, qual: str) -> list[str]:
    problems = []
    have, want = _stub_names(stub), _runtime_names(module)
    have -= {n for n in have - want
             if f"{qual}.{n}" in OPTIONAL and OPTIONAL[f"{qual}.{n}"](module)}
    if have != want:
        problems.append(f"{qual}: only in the stub {sorted(have - want)}, "
                        f"only in the module {sorted(want - have)}")
    members = stub if isinstance(stub, Namespace) else _members(stub.body)
    for name in sorted((have & want) | ({"__init__"} & set(members))):
        node = members[name]
        obj = getattr(module, name, None)
        if obj is None:
            continue
        sub = f"{qual}.{name}"
        if isinstance(node, Namespace):
            problems += compare(node, obj, sub)
        elif isinstance(node, ast.ClassDef):
            if not isinstance(obj, type):
                problems.append(f"{sub}: a class in the stub, a {type(obj).__name__} in the module")
            else:
                problems += compare(node, obj, sub)
        elif isinstance(node, ast.FunctionDef):
            is_property = any(getattr(d, "id", None) == "property" for d in node.decorator_list)
            if is_property != isinstance(obj, property):
                problems.append(f"{sub}: property in one, not in the other")
            elif not is_property:
                problems += signature_problems(sub, node, obj)
        elif isinstance(node, ast.AnnAssign) and callable(obj) and not isinstance(obj, type):
            problems.append(f"{sub}: an attribute in the stub, callable in the module")
    return problems


BUILT = [e for e in EXTENSIONS if _built(e) is not None]


def test_core_is_built_and_has_a_stub():
    assert "_core" in BUILT, "hpc._core is not built: run `make build`"
    assert (PKG / "_core.pyi").is_file()


@pytest.mark.parametrize("ext", BUILT)
def test_stub_matches_built_module(ext):
    path = PKG / f"{ext}.pyi"
    assert path.is_file(), f"hpc/{ext}.pyi missing for the built hpc.{ext}"
    problems = compare(stub_namespace(path), _built(ext), f"hpc.{ext}")
    assert not problems, "stub and module differ:\n  " + "\n  ".join(problems)


def test_checker_sees_a_stale_stub(tmp_path):
    """The comparison fails on a stub with a missing name or a changed parameter."""
    text = (PKG / "_core.pyi").read_text()
    mod = _built("_core")
    stale = tmp_path / "stale.pyi"
    stale.write_text(text.replace("def omp_max_threads() -> int", "def omp_max_threadz() -> int"))
    assert any("omp_max_threadz" in p for p in compare(stub_namespace(stale), mod, "hpc._core"))
    stale.write_text(re.sub(r"def spmv\(indptr", "def spmv(indptrs", text, count=1))
    assert any("indptrs" in p for p in compare(stub_namespace(stale), mod, "hpc._core"))


def test_stubs_parse_as_valid_python():
    for path in PKG.glob("_*.pyi"):
        compile(path.read_text(), str(path), "exec")
