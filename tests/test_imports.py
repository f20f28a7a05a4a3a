"""No import cycles in any package, and every module importable on its own in a fresh interpreter.

A cycle that "works" only because one side imports lazily breaks as soon as someone imports the modules
in another order; the static check below counts imports inside functions too, so lazy imports do not
hide a cycle (only ``if TYPE_CHECKING:`` blocks, which never run, are left out).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cshlora", "sseu", "geoscale_vqa", "scaleearth_cli")


def _modules(package: str) -> dict[str, tuple[Path, bool]]:
    src = ROOT / "packages" / package / "src"
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node, except the bodies of ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports(name: str, path: Path, is_package: bool, modules) -> set[str]:
    """Modules of the same package that ``name`` imports (anywhere in its code)."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".")
            base = base if node.level else (node.module or "")
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    return (out & modules.keys()) - {name}


def import_cycles(package: str) -> list[list[str]]:
    modules = _modules(package)
    graph = {name: _imports(name, *modules[name], modules) for name in modules}
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    assert import_cycles(package) == []


def test_the_cycle_check_finds_a_lazy_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "packages" / "demo" / "src" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert import_cycles("demo") == [["demo.a", "demo.b", "demo.a"]]


# Third-party libraries the children find already imported: only our modules' own import order is tested.
_PRELOAD = "torch numpy PIL safetensors transformers peft webdataset typer rich"


def _import_alone(module: str) -> str | None:
    """Fork a child of this process state (no project module imported yet) that imports ``module``."""
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            __import__(module)
        except BaseException as err:  # noqa: BLE001 - report anything
            sys.stderr.write(f"{module}: {type(err).__name__}: {err}\n")
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return None if os.waitstatus_to_exitcode(status) == 0 else module


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = [name for package in PACKAGES for name in _modules(package)]
    script = f"""
import importlib, os, sys
for lib in {_PRELOAD.split()!r}:
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
assert not any(m.split(".")[0] in {PACKAGES!r} for m in sys.modules)
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_imports import _import_alone
failed = [m for m in {names!r} if _import_alone(m)]
print("FAILED", failed)
"""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "FAILED []" in run.stdout, run.stdout[-2000:] + run.stderr[-3000:]
