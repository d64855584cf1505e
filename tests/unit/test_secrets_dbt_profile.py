"""No credential in a DAG: with a Postgres warehouse URI that carries a password, the DAGs are parsed
and the password must appear nowhere Airflow keeps or shows (the serialized DAG, a task's template
fields before and after rendering), while dbt still gets it when a task runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from nightshift.settings import PROJECT_ROOT

SECRET = "s3cr3t"
WAREHOUSE_URI = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/postgres"


@pytest.fixture
def production_dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every DAG, parsed with the production warehouse URI (password included) in the environment."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URI", WAREHOUSE_URI)
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


def dbt_operators(dags: dict[str, Any]) -> list[Any]:
    """The Cosmos tasks of every DAG (one per dbt model or test)."""
    return [task for dag in dags.values() for task in dag.tasks if task.__class__.__module__.startswith("cosmos.")]


def paths_to(value: Any, needle: str, trail: str = "") -> Iterator[str]:
    """Where in a nested dict/list ``needle`` occurs in a string (e.g. ``tasks[3].env.X``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_to(item, needle, f"{trail}.{key}")
    elif isinstance(value, (list, tuple, set)):
        for i, item in enumerate(value):
            yield from paths_to(item, needle, f"{trail}[{i}]")
    elif needle in str(value):
        yield trail or "<root>"


def without_xcom_args(value: Any) -> Any:
    """``value`` with each XComArg (another task's output, known only at run time) as a placeholder."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    if isinstance(value, XComArg):
        return "<xcom>"
    if isinstance(value, dict):
        return {key: without_xcom_args(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(without_xcom_args(item) for item in value)
    return value


def test_the_password_is_in_no_serialized_dag(production_dags: dict[str, Any]) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    assert dbt_operators(production_dags), "the DAGs run dbt through Cosmos: there must be dbt tasks to check"
    for dag_id, dag in production_dags.items():
        serialized = json.loads(json.dumps(DagSerialization.to_dict(dag), default=str))
        leaks = list(paths_to(serialized, SECRET))
        assert not leaks, f"the warehouse password is in the serialized DAG {dag_id} at {leaks[:5]}"


def test_the_password_is_in_no_template_field_raw_or_rendered(production_dags: dict[str, Any]) -> None:
    # a lenient environment: anything a template names that this context lacks renders empty
    jinja_env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    class TaskInstance:
        """Enough of one for templates that pull an XCom (the dbt tasks' days)."""

        def xcom_pull(self, task_ids: str | None = None, **_: Any) -> dict[str, str]:
            return {"dbt_days": "2026-01-01:2026-01-01"}

    context = {"ds": "2026-01-01", "ds_nodash": "20260101", "run_id": "manual__2026-01-01", "params": {},
               "var": {"value": {}, "json": {}}, "conn": {}, "ti": TaskInstance()}
    checked = 0
    for dag_id, dag in production_dags.items():
        for task in dag.tasks:
            for field in task.template_fields:
                raw = getattr(task, field, None)
                rendered = task.render_template(without_xcom_args(raw), {**context, "dag": dag, "task": task}, jinja_env=jinja_env)
                for label, value in (("raw", raw), ("rendered", rendered)):
                    leaks = list(paths_to(value, SECRET))
                    assert not leaks, f"{dag_id}.{task.task_id}.{field} ({label}) holds the warehouse password at {leaks}"
                checked += 1
    assert checked, "no template field was checked"


def test_dbt_tasks_switch_telemetry_off(production_dags: dict[str, Any]) -> None:
    for task in dbt_operators(production_dags):
        assert task.env.get("DO_NOT_TRACK") == "1", f"{task.dag_id}.{task.task_id} runs dbt without DO_NOT_TRACK=1"


def test_dbt_reads_the_password_from_the_task_environment_at_run_time(
    production_dags: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile Cosmos writes for a task holds references only; dbt, rendering it with the
    variables Cosmos hands the dbt process, gets the password of the worker's warehouse URI."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    operator = dbt_operators(production_dags)[0]
    with operator.profile_config.ensure_profile() as (profile_path, env_vars):
        written = profile_path.read_text()
        raw = read_profile(str(profile_path.parent))
    assert SECRET not in written, f"Cosmos wrote the password into {profile_path}"
    assert env_vars["NIGHTSHIFT_PG_PASSWORD"] == SECRET and env_vars["DO_NOT_TRACK"] == "1"

    for key, value in env_vars.items():
        monkeypatch.setenv(key, value)
    set_invocation_context(dict(os.environ))  # what dbt does when a command starts: env_var() reads it
    profile_name, target = operator.profile_config.profile_name, operator.profile_config.target_name
    _, rendered = Profile.render_profile(raw[profile_name], profile_name, target, ProfileRenderer({}))
    assert (rendered["type"], rendered["host"], rendered["user"], rendered["dbname"]) == ("postgres", "127.0.0.1", "postgres", "postgres")
    assert rendered["password"] == SECRET and rendered["schema"] == "analytics"


@pytest.mark.production("postgres")
def test_dbt_connects_to_postgres_through_the_profile_cosmos_writes(
    production_dags: dict[str, Any], tmp_path: Path
) -> None:
    """`dbt debug` through Cosmos's own dbt invocation, with its profile and variables: it connects."""
    from cosmos.dbt import runner

    operator = dbt_operators(production_dags)[0]
    with operator.profile_config.ensure_profile() as (profile_path, env_vars):
        env = {**os.environ, **env_vars}
        result = runner.run_command(
            ["dbt", "debug", "--project-dir", str(PROJECT_ROOT / "dbt"), "--profiles-dir", str(profile_path.parent),
             "--target", operator.profile_config.target_name, "--log-path", str(tmp_path / "logs")],
            env, str(tmp_path),
        )
    assert result.success, f"dbt debug through the Cosmos profile failed: {result.exception}"
