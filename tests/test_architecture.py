"""The house: imports run one way, no module imports another in a cycle, one copy of each.

Read from the source with ``ast`` (imports inside functions and under TYPE_CHECKING count
too). Layers, lowest first: ``siteopt.version``; ``siteopt.model``; ``siteopt.kernels`` and
``siteopt.optimizer``; ``siteopt.app``; ``siteopt.output``; ``siteopt.api`` (the Python
API); ``siteopt.cli``; the package's ``__init__`` (which hands out the API) and
``__main__``. A module may import its own layer and those below; ``kernels``,
``optimizer`` and ``model`` nothing of siteopt outside their own package.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = {
    "siteopt.version": -1,
    "siteopt.model": 0,
    "siteopt.kernels": 1,
    "siteopt.optimizer": 1,
    "siteopt.app": 2,
    "siteopt.output": 3,
    "siteopt.api": 4,
    "siteopt.cli": 5,
}
ISOLATED = ("siteopt.kernels", "siteopt.optimizer", "siteopt.model")


def _modules() -> dict[str, Path]:
    out = {}
    files = [
        *REPO.glob("siteopt/**/*.py"),
        *REPO.glob("kernels/*.py"),
        *REPO.glob("optimizer/*.py"),
    ]
    for path in files:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[0] in ("kernels", "optimizer"):
            parts = ["siteopt", *parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Project modules that ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> tuple[str, int]:
    for prefix, level in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            return prefix, level
    if name == "siteopt":
        return "siteopt", 6  # siteopt/__init__.py: the version and, on first use, the API
    return "siteopt", 7  # siteopt/__main__.py: an entry point above the CLI


def test_imports_run_one_way():
    upward = []
    for name, deps in GRAPH.items():
        home, level = _layer(name)
        for dep in deps:
            there, dep_level = _layer(dep)
            outside_isolated = home in ISOLATED and there != home and dep_level >= 0
            if dep_level > level or outside_isolated:
                upward.append((name, dep))
    assert sorted(upward) == []


def test_no_import_cycles():
    """Tarjan's strongly connected components of the import graph: all of size one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The two tests above can fail: an import inside a function counts."""
    assert "siteopt.app.pipeline" in GRAPH["siteopt.app.distributed"]
    assert "siteopt.kernels._cuda" in GRAPH["siteopt.kernels.sites"]


def test_every_module_says_what_it_owns():
    missing = [
        name
        for name, path in MODULES.items()
        if not (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert missing == []


def test_one_copy_of_the_kernels():
    """kernels/ is imported only as siteopt.kernels, never as a top-level ``kernels``."""
    importlib.import_module("siteopt.kernels.valuation")
    importlib.import_module("siteopt.optimizer.solve")
    strays = [
        name
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
        and Path(module.__file__).resolve().parent in (REPO / "kernels", REPO / "optimizer")
        and not name.startswith(("siteopt.kernels", "siteopt.optimizer"))
    ]
    assert strays == []


def _calls(path: Path) -> set[str]:
    """Names of the functions called in ``path`` (``f(...)`` and ``m.f(...)``)."""
    called = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            called.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return called


def test_one_tenancy_timeline():
    """The exit, re-let and market-rent draws are read by one function, hosting.tenancy; the
    fast path and the month-by-month reference both take its timeline."""
    timeline = {"exit_months", "market_rent_factor", "rent_schedule", "_mining_beats_ai"}
    readers = {
        name
        for name, path in MODULES.items()
        if name.startswith("siteopt.") and _calls(path) & timeline
    }
    assert readers == {"siteopt.kernels.hosting"}
    for name in ("siteopt.kernels.coefficients", "siteopt.kernels.cashflows"):
        assert "tenancy" in _calls(MODULES[name]), name
