"""DAG integrity: every DAG file imports cleanly, is documented, owned, retried and acyclic,
and importing it pulls in none of the heavy libraries (parse time matters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT

DAG_FILES = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "numpy", "pyarrow", "lightgbm", "feast", "great_expectations", "mlflow", "evidently", "dbt", "duckdb")


def load_dags(path: Path) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, f"{path.name} failed to import: {bag.import_errors}"
    assert bag.dags, f"{path.name} defines no DAG"
    return bag.dags


def test_there_are_dag_files() -> None:
    assert {p.name for p in DAG_FILES} >= {"ingest.py"}


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_is_documented_owned_and_retried(path: Path) -> None:
    for dag_id, dag in load_dags(path).items():
        assert dag.tags, f"{dag_id} in {path.name} has no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} in {path.name} has no doc_md"
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), f"{dag_id}.{task.task_id} has no owner"
            retries = task.retries if task.retries is not None else 0
            assert retries >= 1, f"{dag_id}.{task.task_id} has retries={task.retries}; set default_args retries"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_every_task_alerts_on_failure_and_cannot_hang(path: Path) -> None:
    from nightshift.airflow.alerts import NightshiftNotifier

    for dag_id, dag in load_dags(path).items():
        assert any(isinstance(c, NightshiftNotifier) for c in dag.on_failure_callback or []), f"{dag_id}: no DAG alert"
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id} in {path.name}"
            assert task.execution_timeout is not None, f"{where} has no execution_timeout"
            callbacks = task.on_failure_callback or []
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(isinstance(c, NightshiftNotifier) for c in callbacks), f"{where} has no failure notifier"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_has_no_cycle(path: Path) -> None:
    for dag_id, dag in load_dags(path).items():
        state: dict[str, str] = {}

        def visit(task_id: str, trail: tuple[str, ...]) -> None:
            if state.get(task_id) == "done":
                return
            assert state.get(task_id) != "active", f"{dag_id} has a cycle: {' -> '.join(trail + (task_id,))}"
            state[task_id] = "active"
            for child in dag.get_task(task_id).downstream_task_ids:
                visit(child, trail + (task_id,))
            state[task_id] = "done"

        for task_id in dag.task_ids:
            visit(task_id, ())


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_importing_dag_file_imports_no_heavy_library(path: Path) -> None:
    probe = (
        "import json, runpy, sys; runpy.run_path(sys.argv[1]); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"{path.name} imports heavy libraries at parse time"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_every_dag_guards_its_start_date(path: Path) -> None:
    """A run before the use case's start_date must fail, not succeed with no task: every DAG has the
    guard as a leaf task that exists in every run (its own start date is the epoch). An ingest DAG's
    guard is its one task, the sensor that loads the batch: it exists in every run and is the leaf."""
    from nightshift.airflow.guards import EPOCH

    for dag_id, dag in load_dags(path).items():
        if dag_id == "rollback":
            continue  # not scheduled, not for a day: no start date to guard
        if dag_id.startswith("ingest_"):
            assert "check_start_date" not in dag.task_dict
            assert [(t.task_id, t.start_date) for t in dag.tasks] == [("validate_and_load", EPOCH)], dag_id
            continue
        guard = dag.task_dict.get("check_start_date")
        assert guard is not None, f"{dag_id} has no check_start_date task"
        assert not guard.downstream_task_ids, f"{dag_id}.check_start_date must be a leaf (Airflow judges runs by leaves)"
        assert guard.start_date == EPOCH, f"{dag_id}.check_start_date starts {guard.start_date}, not the epoch"


def test_dag_start_dates_come_from_the_use_case_files() -> None:
    from nightshift.settings import Settings
    from nightshift.usecase import load_use_cases

    dags = {dag_id: dag for path in DAG_FILES for dag_id, dag in load_dags(path).items()}
    for name, use_case in load_use_cases(Settings.from_env().config_dir).items():
        for dag_id in (f"features_{name}", f"score_{name}", f"retrain_{name}"):
            assert dags[dag_id].start_date.date() == use_case.start_date, dag_id
        assert dags[f"score_{name}"].catchup == use_case.catchup
        for source in use_case.sources:
            assert dags[f"ingest_{source}"].start_date.date() <= use_case.start_date


def test_retrains_run_one_at_a_time_and_alias_moves_share_one_pool() -> None:
    dags = {dag_id: dag for path in DAG_FILES for dag_id, dag in load_dags(path).items()}
    retrains = [dag for dag_id, dag in dags.items() if dag_id.startswith("retrain_")]
    assert retrains
    for dag in retrains:
        assert dag.max_active_runs == 1, dag.dag_id
        assert dag.task_dict["register"].pool == "model_registry", dag.dag_id
    assert dags["rollback"].task_dict["rollback"].pool == "model_registry"


def test_monitor_dags_run_on_predictions_emit_retrain_requests_and_test_their_tables() -> None:
    from nightshift.settings import Settings
    from nightshift.usecase import load_use_cases

    dags = {dag_id: dag for path in DAG_FILES for dag_id, dag in load_dags(path).items()}
    for name in load_use_cases(Settings.from_env().config_dir):
        dag = dags[f"monitor_{name}"]
        assert dag.max_active_runs == 1
        assert f"predictions/{name}" in repr(dag.timetable.asset_condition)
        assert [o.uri for o in dag.task_dict["request_retrain"].outlets] == [f"retrain-request/{name}"]
        tests = {f"checks.monitoring_{table}.test" for table in ("drift_daily", "performance_daily", "retrain_requests")}
        assert tests <= set(dag.task_dict), sorted(t for t in dag.task_dict if t.startswith("checks."))
        assert {dag.task_dict[t].pool for t in tests} == {"dbt"}
        assert {type(dag.task_dict[t]).__name__ for t in tests} == {"DbtTestLocalOperator"}
        assert dag.task_dict["monitor"].downstream_task_ids >= {"request_retrain"}


def test_a_use_case_without_a_weekly_retrain_retrains_on_requests_only() -> None:
    dags = load_dags(PROJECT_ROOT / "dags" / "retrain.py")
    # config/churn.yaml: `schedules.retrain: null`; config/demand.yaml: a weekly cron
    assert type(dags["retrain_churn"].timetable).__name__ == "AssetTriggeredTimetable"
    assert "retrain-request/churn" in repr(dags["retrain_churn"].timetable.asset_condition)
    assert type(dags["retrain_demand"].timetable).__name__ == "AssetOrTimeSchedule"
    assert "retrain-request/demand" in repr(dags["retrain_demand"].timetable.asset_condition)


def test_a_typo_in_the_monitoring_block_is_an_import_error_naming_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    shutil.copytree(PROJECT_ROOT / "config", tmp_path / "config")
    churn = tmp_path / "config" / "churn.yaml"
    churn.write_text(churn.read_text().replace("  drift_share: 0.3\n", "  drift_shar: 0.3\n", 1))
    monkeypatch.setenv("NIGHTSHIFT_CONFIG_DIR", str(tmp_path / "config"))
    errors = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "monitor.py")).import_errors
    message = " ".join(errors.values())
    assert "churn.yaml: monitoring: unknown key(s) ['drift_shar']" in message and "'drift_share'" in message, errors
