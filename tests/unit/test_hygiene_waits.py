"""The tests wait on states, never on the clock, and never count an error as a success.

Every wait goes through ``tests.conftest.wait_until`` (poll a state, bounded deadline, says what it
waited for); a fixed ``time.sleep`` anywhere else in tests/ makes a test slow when the machine is
fast and flaky when it is slow. Catching Airflow's ``AlreadyRunning…`` errors as success hid a
backfill that a locked-DB retry had created: the backfill's existence is checked in the DB instead.

The scan flags, outside the polling helpers:

* every ``sleep(…)`` call (``time.sleep``, ``asyncio.sleep``, ``from time import sleep``);
* every ``<x>.wait(N)`` and ``<x>.join(N)`` with a number ``N`` (positional or ``timeout=N``): a
  thread or process ``join`` and an ``Event.wait`` return silently when the time is up, so the test
  goes on as if what it waited for had happened (``threading.Event().wait(0.01)`` is a sleep). Such a
  call is accepted only when its outcome is acted on at once, which keeps bounded waits for a process
  to end: the call is inside an ``assert``; or ``x`` is a name or attribute and the next statement is
  an ``assert``, ``if`` or ``raise`` that mentions ``x`` (``child.join(120)`` then ``assert
  child.exitcode is not None, …``); or it reaps ``x`` right after ``x.kill()``/``x.terminate()``; or
  it is teardown in a ``finally:`` block, where the test's outcome is already decided.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
#: The functions allowed to wait on the clock: each polls a state until a deadline.
POLLING_HELPERS = {("tests/conftest.py", "wait_until")}
#: Names of Airflow errors a retry must not count as success.
FORBIDDEN_ERROR = "AlreadyRunning"
#: Calls that return silently when their timeout is up.
TIMED_WAITS = {"wait", "join"}
#: What stops a process or thread, so a timed wait right after it reaps it.
STOPS = {"kill", "terminate"}
SELF = Path(__file__).resolve()


def _is_sleep(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr == "sleep"  # time.sleep, asyncio.sleep
    return isinstance(func, ast.Name) and func.id == "sleep"  # from time import sleep


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _timed_wait(call: ast.Call) -> bool:
    """``<x>.wait(N)`` / ``<x>.join(N)`` with a number (positional or ``timeout=``)."""
    return (isinstance(call.func, ast.Attribute) and call.func.attr in TIMED_WAITS
            and (any(_is_number(a) for a in call.args)
                 or any(k.arg == "timeout" and _is_number(k.value) for k in call.keywords)))


def _mentions(node: ast.AST, receiver: str) -> bool:
    return any(isinstance(n, (ast.Name, ast.Attribute)) and ast.unparse(n) == receiver for n in ast.walk(node))


def _stops(statement: ast.stmt, receiver: str) -> bool:
    call = statement.value if isinstance(statement, ast.Expr) else None
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in STOPS
            and ast.unparse(call.func.value) == receiver)


def _outcome_acted_on(call: ast.Call, statement: ast.stmt, block: list[ast.stmt], in_finally: bool) -> bool:
    """Whether a timed wait's result is checked at once (see the module docstring)."""
    if isinstance(statement, ast.Assert) or in_finally:
        return True
    receiver = call.func.value  # type: ignore[attr-defined] - _timed_wait checked it is an attribute
    if not isinstance(receiver, (ast.Name, ast.Attribute)) or statement not in block:
        return False
    name, index = ast.unparse(receiver), block.index(statement)
    after = block[index + 1] if index + 1 < len(block) else None
    if isinstance(after, (ast.Assert, ast.If, ast.Raise)) and _mentions(after, name):
        return True
    return index > 0 and _stops(block[index - 1], name)


def wait_violations(source: str, path: str) -> list[str]:
    """``path:line`` and what is wrong, for each sleep and each unchecked timed wait outside a polling
    helper, and each use of an ``AlreadyRunning…`` error in ``source``."""
    found: list[str] = []

    def visit(node: ast.AST, function: str | None, statement: ast.stmt | None, block: list[ast.stmt],
              in_finally: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name if (path, node.name) in POLLING_HELPERS else function
        if isinstance(node, ast.Call) and _is_sleep(node) and function is None:
            constant = all(isinstance(a, ast.Constant) for a in node.args)
            found.append(f"{path}:{node.lineno}: {'fixed ' if constant else ''}sleep outside "
                         f"tests/conftest.py::wait_until: poll a state with wait_until instead")
        elif (isinstance(node, ast.Call) and _timed_wait(node) and function is None and statement is not None
              and not _outcome_acted_on(node, statement, block, in_finally)):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)} waits on the clock and goes on whatever happened: "
                         f"poll the state with wait_until, or assert on it in the next statement")
        text = (node.value if isinstance(node, ast.Constant) and isinstance(node.value, str)
                else node.id if isinstance(node, ast.Name)
                else node.attr if isinstance(node, ast.Attribute)
                else node.name if isinstance(node, ast.alias) else "")
        if FORBIDDEN_ERROR in text:
            found.append(f"{path}:{node.lineno}: handles {FORBIDDEN_ERROR}…: an error is not a success; "
                         f"check the state (e.g. the backfill in the metadata DB) before retrying")
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            finally_block = in_finally or (isinstance(node, ast.Try | ast.TryStar) and field == "finalbody")
            for child in children:
                if isinstance(child, ast.stmt):
                    visit(child, function, child, children, finally_block)
                elif isinstance(child, ast.AST):
                    visit(child, function, statement, block, finally_block)

    visit(ast.parse(source), None, None, [], False)
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
    # timed waits that return silently when the time is up
    ("import threading\nwhile True:\n    threading.Event().wait(0.01)\n", "tests/unit/test_x.py", 1),
    ("def f(reader):\n    reader.join(1.0)\n    stop()\n", "tests/unit/test_x.py", 1),
    ("def f(done):\n    done.wait(timeout=5)\n", "tests/unit/test_x.py", 1),
    ("def f(done):\n    ok = done.wait(5)\n", "tests/unit/test_x.py", 1),  # kept, never checked
    ("def f(c, d):\n    c.join(120)\n    assert d.exitcode == 0\n", "tests/unit/test_x.py", 1),  # not c
    ("def f(c):\n    c.join(120)\n    x = 1\n    assert c.exitcode == 0\n", "tests/unit/test_x.py", 1),
    ("import threading\ntry:\n    pass\nexcept OSError:\n    threading.Event().wait(1)\n", "tests/x.py", 1),
    ("import time\ndef wait_until():\n    time.sleep(1)\n    e.wait(1)\n", "tests/e2e/test_x.py", 2),
    ("def wait_until(e):\n    e.wait(0.1)\n", "tests/conftest.py", 0),
    # timed waits whose outcome is acted on at once
    ("def f(c):\n    c.join(120)\n    assert c.exitcode is not None, 'hung'\n", "tests/unit/test_x.py", 0),
    ("def f(c):\n    c.join(120)\n    if c.exitcode is None:\n        raise AssertionError\n", "tests/x.py", 0),
    ("def f(done):\n    assert done.wait(timeout=30), 'never set'\n", "tests/unit/test_x.py", 0),
    ("def f(p):\n    p.kill()\n    p.wait(timeout=60)\n", "tests/unit/test_x.py", 0),
    ("def f(p):\n    try:\n        pass\n    finally:\n        p.wait(timeout=30)\n", "tests/unit/test_x.py", 0),
    ("def f(p, t):\n    p.wait(timeout=t)\n    ', '.join(['a'])\n", "tests/unit/test_x.py", 0),  # not a number
])
def test_the_scan_finds_what_it_forbids(source: str, path: str, expected: int) -> None:
    assert len(wait_violations(source, path)) == expected, wait_violations(source, path)
