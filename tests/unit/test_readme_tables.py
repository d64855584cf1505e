"""Every row of every README "what goes wrong" table names a test, and every named test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE = re.compile(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?(?:\[[^\]]*\])?)`")


def tables_with_a_test_column(text: str) -> list[list[list[str]]]:
    """The rows (as cells) of each markdown table whose header has a `test` column."""
    tables, current = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if current is None:
            current = [] if "test" in cells else None
            if current is not None:
                tables.append(current)
            continue
        if set("".join(cells)) <= {"-", ":"}:
            continue
        current.append(cells)
    return tables


def named_tests(cell: str) -> list[tuple[str, str | None]]:
    """(file, test function or None) for each test the cell names; `::name` reuses the last file."""
    out, last_file = [], None
    for node in NODE.findall(cell):
        path, _, name = node.partition("::")
        path = path or last_file
        last_file = path
        out.append((path, name.split("[")[0] or None))
    return out


def test_every_row_of_every_what_goes_wrong_table_names_an_existing_test() -> None:
    text = (ROOT / "README.md").read_text()
    tables = tables_with_a_test_column(text)
    assert len(tables) >= 5, "the README's tables with a test column were not found"
    problems = []
    for table in tables:
        for row in table:
            tests = named_tests(row[-1])
            if not tests:
                problems.append(f"no test named for: {row[0]}")
            for path, name in tests:
                source = ROOT / path if path else None
                if source is None or not source.exists():
                    problems.append(f"{row[0]}: {path} does not exist")
                elif name and not re.search(rf"^\s*(async )?def {name}\(", source.read_text(), re.M):
                    problems.append(f"{row[0]}: {path} has no test {name}")
    assert not problems, "\n".join(problems)
