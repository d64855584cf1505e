"""The start-date guard every Nightshift DAG carries.

Airflow records a run whose logical date precedes the DAG's ``start_date`` as a success with zero
tasks. Each DAG therefore has a leaf task ``check_start_date`` whose own start date is the epoch:
it exists in every run, and fails a run for a day before the use case's ``start_date``, naming
the date and the setting. (A leaf, because Airflow judges a run by its leaf tasks; in a run
before the start date it is the only task there is.) The ingest DAGs, which make most runs, have
one task per run: their sensor runs the same check first and is itself the leaf, existing in every
run, so in a run before the start date it fails the run.
"""

from __future__ import annotations

from typing import Any

import pendulum

EPOCH = pendulum.datetime(1970, 1, 1, tz="UTC")


def check_start(dag_id: str, use_case_names: list[str], ds: str | None) -> str:
    """The guard's check, in a task: fails (``messages.fail``) when the run's day precedes the start_date
    of every use case named; returns the day (``YYYY-MM-DD``)."""
    from datetime import date

    from nightshift.airflow.messages import fail

    from nightshift.settings import Settings
    from nightshift.usecase import RunBeforeStart, check_run_date, load_use_cases

    use_cases = load_use_cases(Settings.from_env().config_dir)
    day = date.fromisoformat(ds[:10]) if ds else pendulum.now("UTC").date()
    try:
        check_run_date(dag_id, day, [use_cases[name] for name in use_case_names])
    except RunBeforeStart as exc:
        raise fail(str(exc)) from exc
    return day.isoformat()


def in_every_run(task_ref: Any) -> Any:
    """Make a task exist in every run, even one before the DAG's start date (its start date becomes
    the epoch); call it inside ``with DAG(...)``, after the task joined the DAG (a DAG clamps its
    tasks' start dates to its own)."""
    task_ref.operator.start_date = EPOCH
    return task_ref


def start_date_guard(dag_id: str, use_case_names: list[str]) -> Any:
    """Add the guard task to the DAG being defined; call it inside ``with DAG(...)``."""
    from airflow.sdk import task

    @task(task_id="check_start_date")
    def check_start_date(ds: str | None = None) -> str:
        """Fails when the run's day precedes the use case's start_date (config/<use case>.yaml)."""
        return check_start(dag_id, use_case_names, ds)

    return in_every_run(check_start_date())


def dag_start(day: Any) -> pendulum.DateTime:
    """A use case's ``start_date`` as the DAG's start date (midnight UTC)."""
    return pendulum.datetime(day.year, day.month, day.day, tz="UTC")
