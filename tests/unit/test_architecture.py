"""The package's shape, checked from its source: imports run one way (no cycles), no module
grows past MAX_LINES, an import inside a function says why it is there, and a stage never
imports another stage (only the result types it looks its inputs up by).

The convention for that last one: the import, or the first import of the run of imports it
belongs to, has a ``# lazy: <reason>`` comment on its line or on the line just above (the
reason: an optional dependency, or a measured start-up cost). Each check is also run on a tiny
package written into a temporary folder that breaks it, so none of them can pass by accident.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
MAX_LINES = 400
MARKER = "lazy:"


def module_name(path: Path, package: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def _target(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _outer_functions(tree: ast.Module) -> list[ast.AST]:
    """The nodes whose bodies run later than the import of the module (functions, lambdas)."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]


def _in_functions(tree: ast.Module) -> set[int]:
    return {id(n) for f in _outer_functions(tree) for n in ast.walk(f)
            if isinstance(n, (ast.Import, ast.ImportFrom))}


def import_graph(package: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports when it is imported}. A module-level import of
    ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__`` (unless the importer is inside them)."""
    mods = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy = _in_functions(tree)
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in lazy or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _target(name, node, path.name == "__init__.py")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if not target:
                    continue  # not of this package
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    if step in mods and step != name and not name.startswith(step + "."):
                        edges.add(step)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def long_modules(package: Path, limit: int = MAX_LINES) -> list[str]:
    return [f"{name}: {n} lines" for name, path in modules(package).items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > limit]


def unexplained_lazy_imports(package: Path) -> list[str]:
    """Imports inside functions whose block has no ``# lazy:`` comment."""
    found: set[str] = set()
    for name, path in modules(package).items():
        text = path.read_text(encoding="utf-8")
        lines, tree = text.splitlines(), ast.parse(text)
        for func in _outer_functions(tree):
            for node in ast.walk(func):
                for field in ("body", "orelse", "finalbody"):
                    block = getattr(node, field, None)
                    if not isinstance(block, list):
                        continue
                    previous_import = False
                    for stmt in block:
                        is_import = isinstance(stmt, (ast.Import, ast.ImportFrom))
                        if is_import and not previous_import:
                            above = lines[stmt.lineno - 2].strip() if stmt.lineno > 1 else ""
                            said = lines[stmt.lineno - 1] + (above if above.startswith("#") else "")
                            if MARKER not in said:
                                found.add(f"{name}:{stmt.lineno}: {ast.unparse(stmt)}")
                        previous_import = is_import
    return sorted(found)


def _defines_stage(tree: ast.Module) -> bool:
    return any(isinstance(t, ast.Name) and t.id == "STAGE"
               for s in tree.body if isinstance(s, ast.Assign) for t in s.targets)


def stage_crossings(package: Path) -> list[str]:
    """Where a stage module (one of ``stages/`` that defines ``STAGE``), or a module of
    ``stages/`` it imports (such as the crop stage's ``blur``), imports another stage
    module or anything of one but a class (its result, and the records in it): each as
    ``stage: importer imports name from module``. Imports inside functions count too."""
    prefix = f"{package.name}.stages."
    trees = {name: ast.parse(path.read_text(encoding="utf-8"))
             for name, path in modules(package).items() if name.startswith(prefix)}
    stages = {name for name, tree in trees.items() if _defines_stage(tree)}
    classes = {name: {s.name for s in tree.body if isinstance(s, ast.ClassDef)}
               for name, tree in trees.items()}
    found: set[str] = set()
    for stage in stages:
        others, seen, todo = stages - {stage}, set(), [stage]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in ast.walk(trees[name]):
                if isinstance(node, ast.Import):
                    found |= {f"{stage}: {name} imports {a.name}" for a in node.names
                              if a.name in others}
                if not isinstance(node, ast.ImportFrom):
                    continue
                base = _target(name, node, False)
                for alias in node.names:
                    whole = f"{base}.{alias.name}"
                    if whole in others or (base in others and alias.name not in classes[base]):
                        found.add(f"{stage}: {name} imports {alias.name} from {base}")
                    elif whole in trees or (base in trees and base not in stages):
                        todo.append(whole if whole in trees else base)
    return sorted(found)


# ----------------------------------------------------------------------------- the package itself

def test_no_import_cycles():
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_over_the_line_limit():
    assert long_modules(PACKAGE) == []


def test_every_import_inside_a_function_says_why():
    assert unexplained_lazy_imports(PACKAGE) == []


def test_no_stage_imports_another_stage():
    assert stage_crossings(PACKAGE) == []


# ----------------------------------------------------------------------------- the checks can fail

def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for rel, text in files.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text, encoding="utf-8")
    return package


def test_a_cycle_is_found_and_named(tmp_path):
    package = _package(tmp_path, {"__init__.py": "", "a.py": "from .sub.b import x\n",
                                  "sub/__init__.py": "", "sub/b.py": "from .. import a\nx = 1\n"})
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    """Importing ``pkg.sub.b`` runs ``pkg/sub/__init__.py`` first, which may import back."""
    package = _package(tmp_path, {"__init__.py": "", "a.py": "from .sub.b import x\n",
                                  "sub/__init__.py": "from ..a import y\n", "sub/b.py": "x = 1\n"})
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub", "pkg.a"]


def test_a_lazy_import_is_no_edge_and_one_way_imports_are_no_cycle(tmp_path):
    package = _package(tmp_path, {"__init__.py": "", "a.py": "from . import b\n",
                                  "b.py": "def f():\n    # lazy: test\n    from . import a\n"})
    assert find_cycle(import_graph(package)) is None


def test_a_long_module_is_named(tmp_path):
    package = _package(tmp_path, {"__init__.py": "", "big.py": "x = 1\n" * (MAX_LINES + 1),
                                  "ok.py": "x = 1\n" * MAX_LINES})
    assert long_modules(package) == [f"pkg.big: {MAX_LINES + 1} lines"]


@pytest.mark.parametrize(("body", "flagged"), [
    ("    import json\n    return json\n", True),
    ("    x = 1  # lazy: not on the import\n    import json\n    return json\n", True),
    ("    import json  # lazy: start-up time\n    return json\n", False),
    ("    # lazy: optional dependency\n    import json\n    import csv\n    return json, csv\n", False),
    ("    try:\n        import json\n    except ImportError:\n        return None\n", True),
])
def test_an_unexplained_import_in_a_function_is_named(tmp_path, body, flagged):
    package = _package(tmp_path, {"__init__.py": "", "m.py": "import os\n\n\ndef f():\n" + body})
    found = unexplained_lazy_imports(package)
    assert (found != [] and found[0].startswith("pkg.m:")) == flagged, found


def test_the_public_api_is_there_and_importing_pipeline_changes_nothing():
    """``run``, ``status``, ``plan`` and ``load_config`` from the package itself; importing it
    sets no environment variable and loads none of them (a fresh interpreter)."""
    code = ("import os, sys; before = dict(os.environ); import pipeline; "
            "assert dict(os.environ) == before, 'environment changed'; "
            "assert not any(m.startswith('pipeline.') for m in sys.modules), 'modules loaded'; "
            "print([getattr(pipeline, n).__name__ for n in ('run', 'status', 'plan', 'load_config')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PACKAGE.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['run', 'status', 'make_plan', 'load_config']"
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        import pipeline
        pipeline.nothing  # noqa: B018


def test_a_stage_reaching_another_stage_is_named(tmp_path):
    """A stage may import an earlier stage's result class (``inputs[ItsResult]``), never its
    functions or module, also not through another module of ``stages/``."""
    package = _package(tmp_path, {
        "__init__.py": "", "stages/__init__.py": "from . import a, b, c, d\n",
        "stages/a.py": "class AResult:\n    pass\n\n\ndef cover():\n    pass\n\n\nSTAGE = 1\n",
        "stages/b.py": "from .a import AResult\n\nSTAGE = 2\n",
        "stages/c.py": "from .h import x\n\nSTAGE = 3\n",
        "stages/h.py": "from .a import cover\n\nx = 1\n",
        "stages/d.py": "def run():\n    # lazy: test\n    from . import b\n\n\nSTAGE = 4\n"})
    assert stage_crossings(package) == ["pkg.stages.c: pkg.stages.h imports cover from pkg.stages.a",
                                        "pkg.stages.d: pkg.stages.d imports b from pkg.stages"]
