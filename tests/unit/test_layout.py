"""The package is laid out by stage, and imports run one way: down the floors, never sideways.

Floors, lowest first: the shared layers (settings, usecase, days, landing, warehouse); the
stages that read landed data (ingest, features); modeling; scoring and monitoring; the glue that wires stages
into Airflow and a shell (airflow, cli); the demo. A module may import its own stage and any
lower floor; scoring reaches into modeling only for the pieces both share (the model's input
matrix and the registry); nothing outside the demo imports the demo.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "plugins" / "nightshift"
SHARED = {"settings", "usecase", "days", "landing", "warehouse"}
FLOOR = {**{name: 0 for name in SHARED}, "ingest": 1, "features": 1, "modeling": 2, "scoring": 3, "monitoring": 3,
         "airflow": 4, "cli": 4, "demo": 5}
#: Sideways imports the layout allows: scoring uses what it shares with training, one floor down.
ALLOWED = {("scoring", "modeling.inputs"), ("scoring", "modeling.registry")}


def _stage(module: str) -> str:
    return module.split(".")[0]


def _imports(path: Path) -> set[str]:
    """Every ``nightshift.…`` module ``path`` imports, at any depth (without the prefix)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nightshift.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nightshift":
            if node.module == "nightshift":
                found |= {f"nightshift.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return {name.removeprefix("nightshift.") for name in found}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_floors(path: Path) -> None:
    here = _stage(str(path.relative_to(PACKAGE).with_suffix("")).replace("/", "."))
    assert here in FLOOR, f"{path}: not in a known stage; add it to FLOOR in this test and to the README's layout"
    wrong = []
    for target in sorted(_imports(path)):
        there = _stage(target)
        if there == here or (here, target) in ALLOWED or {here, there} <= SHARED:
            continue
        if there == "demo" or FLOOR.get(there, 99) >= FLOOR[here]:
            wrong.append(target)
    assert not wrong, (
        f"{path.relative_to(PROJECT_ROOT)} (stage {here}, floor {FLOOR[here]}) imports {wrong}: a module may only "
        "import its own stage and lower floors; move the shared piece one floor down"
    )


def test_the_package_is_laid_out_by_stage() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert set(top) <= SHARED | {"cli"}, f"modules outside a stage package: {sorted(set(top) - SHARED - {'cli'})}"
    for stage in ("ingest", "features", "modeling", "scoring", "airflow", "demo"):
        assert (PACKAGE / stage / "__init__.py").exists(), stage


def test_platform_code_names_no_churn_concept() -> None:
    """Nothing in plugins/nightshift/ (the demo aside) or dags/ names a use case's concepts: they
    live in the use case's own files."""
    words = ("customer", "cancel", "churn", "plan_", "region")
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py")]:
        if "demo" in path.relative_to(PROJECT_ROOT).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(word in line.lower() for word in words):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "use-case concepts in platform code:\n" + "\n".join(offenders)
