"""The tests wait on states, never on the clock, and never count an error as a success.

Every wait goes through ``tests.conftest.wait_until`` (poll a state, bounded deadline, says what it
waited for); a fixed ``time.sleep`` anywhere else in tests/ makes a test slow when the machine is
fast and flaky when it is slow. Catching Airflow's ``AlreadyRunning…`` errors as success hid a
backfill that a locked-DB retry had created: the backfill's existence is checked in the DB instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
#: The one function allowed to sleep: it polls a state until a deadline.
POLLING_HELPERS = {("tests/conftest.py", "wait_until")}
#: Names of Airflow errors a retry must not count as success.
FORBIDDEN_ERROR = "AlreadyRunning"
SELF = Path(__file__).resolve()


def _is_sleep(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr == "sleep"  # time.sleep, asyncio.sleep
    return isinstance(func, ast.Name) and func.id == "sleep"  # from time import sleep


def wait_violations(source: str, path: str) -> list[str]:
    """``path:line`` and what is wrong, for each sleep outside a polling helper and each use of
    an ``AlreadyRunning…`` error in ``source``."""
    found: list[str] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name if (path, node.name) in POLLING_HELPERS else function
        if isinstance(node, ast.Call) and _is_sleep(node) and function is None:
            constant = all(isinstance(a, ast.Constant) for a in node.args)
            found.append(f"{path}:{node.lineno}: {'fixed ' if constant else ''}sleep outside "
                         f"tests/conftest.py::wait_until: poll a state with wait_until instead")
        text = (node.value if isinstance(node, ast.Constant) and isinstance(node.value, str)
                else node.id if isinstance(node, ast.Name)
                else node.attr if isinstance(node, ast.Attribute)
                else node.name if isinstance(node, ast.alias) else "")
        if FORBIDDEN_ERROR in text:
            found.append(f"{path}:{node.lineno}: handles {FORBIDDEN_ERROR}…: an error is not a success; "
                         f"check the state (e.g. the backfill in the metadata DB) before retrying")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def test_no_fixed_sleep_and_no_error_taken_for_success_in_tests() -> None:
    found = [
        violation
        for path in sorted(TESTS.rglob("*.py")) if path.resolve() != SELF
        for violation in wait_violations(path.read_text(), path.relative_to(PROJECT_ROOT).as_posix())
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source, path, expected", [
    ("import time\ndef f():\n    time.sleep(5)\n", "tests/e2e/test_x.py", 1),
    ("from time import sleep\nsleep(0.5)\n", "tests/e2e/test_x.py", 1),
    ("import time\ndef wait_until(i):\n    time.sleep(i)\n", "tests/e2e/test_x.py", 1),  # only conftest's helper
    ("import time\ndef wait_until(i):\n    time.sleep(i)\n", "tests/conftest.py", 0),
    ("def f(out):\n    return 'AlreadyRunningBackfill' in out\n", "tests/conftest.py", 1),
    ("from airflow.exceptions import AlreadyRunningBackfill\n", "tests/e2e/test_x.py", 1),
    ("def f(x):\n    return x.poll()\n", "tests/e2e/test_x.py", 0),
])
def test_the_scan_finds_what_it_forbids(source: str, path: str, expected: int) -> None:
    assert len(wait_violations(source, path)) == expected, wait_violations(source, path)
