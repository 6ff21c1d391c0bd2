"""How the tests are laid out, checked: test modules share code through tests/helpers/ only,
every test under tests/e2e/ is slow and none under tests/unit/ is, and an assert inside a loop
never passes because the loop did not run."""
from __future__ import annotations

import ast
import subprocess
import sys

from helpers.support import REPO

TESTS = REPO / "tests"
MODULES = sorted(TESTS.rglob("*.py"))
TEST_MODULES = [p for p in MODULES if p.name.startswith("test_")]
# What a test module could import another one by: its name (tests/ is on sys.path) or a folder
# of test modules as a package.
TEST_NAMES = {p.stem for p in TEST_MODULES} | {"unit", "e2e", "conftest"}
# Wrappers a loop's iterable may sit in: the rows behind them are what must not be empty.
WRAPPERS = {"enumerate", "sorted", "reversed", "list", "tuple", "zip", "set"}
VIEWS = {"items", "values", "keys"}
ADDERS = {"add", "append", "extend", "update"}


def imported_modules(tree: ast.AST) -> list[str]:
    """The top-level package of every import in ``tree`` (relative imports as their module)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split(".")[0])
    return names


def test_no_test_module_imports_another_and_helpers_import_no_test_module():
    assert len(TEST_MODULES) > 50 and (TESTS / "helpers" / "support.py") in MODULES
    found = {f"{p.relative_to(TESTS)} imports {name}"
             for p in MODULES for name in imported_modules(ast.parse(p.read_text()))
             if name in TEST_NAMES}
    assert found == set()


def collected(*args: str) -> str:
    """The last line of ``pytest --collect-only -q ARGS`` run from the repository."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                           "-p", "no:cacheprovider", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: none collected
    return done.stdout.strip().splitlines()[-1]


def test_every_end_to_end_test_is_slow_and_every_unit_test_fast():
    """``-m "not slow"`` (the fast lane) keeps nothing of tests/e2e/ and everything of
    tests/unit/."""
    assert collected("-m", "not slow", "tests/e2e").startswith("no tests collected (")
    assert collected("-m", "slow", "tests/unit").startswith("no tests collected (")


def cores(iterable: ast.expr) -> list[ast.expr]:
    """The collections a loop walks, out of enumerate(), sorted(), zip(), .items() and the like."""
    if isinstance(iterable, ast.Call):
        func = iterable.func
        if isinstance(func, ast.Name) and func.id in WRAPPERS:
            return [c for arg in iterable.args for c in cores(arg)]
        if isinstance(func, ast.Attribute) and func.attr in VIEWS:
            return cores(func.value)
    return [iterable]


def literal(node: ast.expr, constants: dict[str, ast.expr]) -> bool:
    """Evidently not empty: a written-out tuple, list, set or dict with items, range() of
    numbers, or a name bound to one of those."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts)
    if isinstance(node, ast.Dict):
        return bool(node.keys)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        return all(isinstance(a, ast.Constant) for a in node.args)
    if isinstance(node, ast.Name) and node.id in constants:
        return literal(constants[node.id], constants)
    return False


def tallied(node: ast.AST) -> list[str]:
    """Names a loop's body adds to: ``n += 1``, ``seen.add(x)``, ``found.append(x)``, ``d[k] = v``."""
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Attribute) and func.attr in ADDERS and isinstance(func.value, ast.Name):
        return [func.value.id]
    if isinstance(node, ast.Assign):
        return [t.value.id for t in node.targets
                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)]
    return []


def unguarded_loops(tree: ast.Module) -> list[str]:
    """Loops of test functions holding an assert where nothing shows the loop ran: their
    collection is not written out, no assert before the loop names it (``assert rows``,
    ``assert len(rows) == 5``), and no assert after it reads what the loop adds to (a count, a
    set of what it saw)."""
    module_constants = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                        for t in n.targets if isinstance(t, ast.Name)}
    found = []
    tests = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_"))
    for fn in tests:
        constants = {**module_constants,
                     **{t.id: n.value for n in ast.walk(fn) if isinstance(n, ast.Assign)
                        for t in n.targets if isinstance(t, ast.Name)}}
        asserts = [n for n in ast.walk(fn) if isinstance(n, ast.Assert)]
        for loop in (n for n in ast.walk(fn) if isinstance(n, ast.For)):
            if not any(isinstance(n, ast.Assert) for s in loop.body for n in ast.walk(s)):
                continue
            collections = cores(loop.iter)
            if all(literal(c, constants) for c in collections):
                continue
            texts = {ast.unparse(c) for c in collections}
            before = [ast.unparse(a) for a in asserts if a.lineno < loop.lineno]
            counters = {name for s in loop.body for n in ast.walk(s) for name in tallied(n)}
            after = [a for a in asserts if a.lineno > loop.end_lineno]
            if any(t in text for t in texts for text in before):
                continue
            if any(isinstance(n, ast.Name) and n.id in counters for a in after for n in ast.walk(a)):
                continue
            found.append(f"{fn.name}:{loop.lineno} for ... in {ast.unparse(loop.iter)}")
    return found


def test_every_assert_in_a_loop_is_guarded_by_a_count():
    found = {f"{p.relative_to(TESTS)}:{where}" for p in TEST_MODULES
             for where in unguarded_loops(ast.parse(p.read_text()))}
    assert found == set()


def test_the_loop_check_tells_a_guarded_loop_from_an_unguarded_one():
    code = '''
def test_unguarded(rows):
    for r in rows:
        assert r

def test_guarded(rows):
    assert len(rows) == 3
    for i, r in enumerate(sorted(rows)):
        assert r

def test_counted(rows):
    n = 0
    for r in rows:
        assert r
        n += 1
    assert n == 3

def test_written_out():
    for r in (1, 2):
        assert r
'''
    assert unguarded_loops(ast.parse(code)) == ["test_unguarded:3 for ... in rows"]
