"""Nothing generated lands in the checkout: every dbt call runs with DO_NOT_TRACK=1 (otherwise dbt
writes a ``.user.yml`` cookie next to the profiles.yml it reads, which was dbt/ for Cosmos under
`make airflow`), and what tools create by default (MLflow's root mlflow.db, that cookie) is ignored."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nightshift.settings import PROJECT_ROOT

TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}


def make_recipe_environment(*names: str) -> dict[str, str]:
    """The value of each variable in the environment the Makefile gives its recipes (`make airflow`
    starts `airflow standalone`, and so every Cosmos dbt task, from one), starting from an
    environment that has none of them."""
    env = {k: v for k, v in os.environ.items() if k not in names and k not in ("MAKEFLAGS", "MFLAGS")}
    probe = "hygiene-probe: ; @" + " ; ".join(f'echo "{n}=$${n}"' for n in names)
    out = subprocess.run(["make", "--no-print-directory", "-s", "--eval", probe, "hygiene-probe"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_every_make_recipe_runs_with_dbt_telemetry_off() -> None:
    assert make_recipe_environment(*TELEMETRY_OFF) == TELEMETRY_OFF


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_airflow_starts_standalone_from_a_recipe() -> None:
    """So the standalone scheduler and its task processes inherit the Makefile's exports."""
    dry = subprocess.run(["make", "-n", "-W", "requirements.txt", "airflow"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True).stdout
    assert "airflow standalone" in dry, dry[-2000:]


@pytest.fixture
def embedded_dbt_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The Cosmos tasks of every DAG, parsed on the embedded profile with no telemetry switch set."""
    from airflow.dag_processing.dagbag import DagBag

    for name in TELEMETRY_OFF:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NIGHTSHIFT_WAREHOUSE_URI", raising=False)
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    tasks = [t for dag in bag.dags.values() for t in dag.tasks if t.__class__.__module__.startswith("cosmos.")]
    assert tasks, "the DAGs run dbt through Cosmos: there must be dbt tasks to check"
    return tasks


def test_cosmos_dbt_tasks_run_with_telemetry_off_and_their_profile_outside_the_project(
    embedded_dbt_tasks: list[Any],
) -> None:
    for task in embedded_dbt_tasks:
        assert {k: task.env.get(k) for k in TELEMETRY_OFF} == TELEMETRY_OFF, f"{task.dag_id}.{task.task_id}"
    # what the dbt process of a task gets, and where its profiles.yml (so any cookie) is
    with embedded_dbt_tasks[0].profile_config.ensure_profile() as (profile_path, env_vars):
        assert PROJECT_ROOT / "dbt" not in profile_path.resolve().parents, f"dbt reads {profile_path}, inside dbt/"
    assert {k: env_vars.get(k) for k in TELEMETRY_OFF} == TELEMETRY_OFF


def test_dbt_outside_airflow_writes_no_cookie_into_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_dbt` (tests, a data team's shell) on a copy of the project, with no switch in the environment."""
    from nightshift.features import run_dbt
    from nightshift.settings import Settings

    for name in TELEMETRY_OFF:
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "dbt"
    shutil.copytree(PROJECT_ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    run_dbt(Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path / "state")}), ["parse"], project_dir=project)
    assert not (project / ".user.yml").exists()


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)


@pytest.mark.skipif(not (PROJECT_ROOT / ".git").exists(), reason="not a git checkout")
def test_generated_files_are_neither_tracked_nor_trackable() -> None:
    tracked = set(git("ls-files").stdout.splitlines())
    assert not {p for p in tracked if p.endswith(("mlflow.db", ".user.yml"))}, "a generated file is committed"
    for path in ("dbt/.user.yml", "mlflow.db", "state/mlflow/mlflow.db", "dbt/target/manifest.json"):
        assert git("check-ignore", "-q", "--no-index", path).returncode == 0, f"{path} is not git-ignored: add it to .gitignore"
