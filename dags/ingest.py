"""
### Ingest: validate every landed batch, load accepted rows, quarantine the rest

For logical date **D** (one run per day; backfill any range from the UI or with
`airflow backfill create`), and for each source of every use case in `config/`:

1. **wait_for_batch** waits for D's files in `<landing>/<source>/<D>/` and fails with a
   clear message once the source's `wait_hours` after the end of D have passed.
2. **validate_and_load** validates the batch with `expectations/<source>.json` (GX).
   Rows that break a row rule go to `quarantine.<source>` with the rules they broke;
   the others go to `raw.<source>`; the counts go to `meta.validation_runs`.
   A batch rule failure (unreadable file, missing column, row count out of bounds)
   fails the run, writes nothing and leaves the file untouched: fix the file, clear the task.

Re-running D replaces exactly D's partitions. On success each source emits `raw/<source>`.
Code: `plugins/nightshift/ingest/` (`loading`, `validation`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, PokeReturnValue, TaskGroup, task

from nightshift.airflow.assets import raw_asset
from nightshift.settings import Settings
from nightshift.usecase import all_sources, load_use_cases

# Reading the small use-case YAML files is the only parse-time work: it decides the tasks.
SOURCES = all_sources(load_use_cases(Settings.from_env().config_dir))

with DAG(
    dag_id="ingest",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["nightshift", "ingest"],
    doc_md=__doc__,
) as dag:
    for source_name, source in SOURCES.items():
        with TaskGroup(group_id=source_name):

            @task.sensor(
                task_id="wait_for_batch",
                poke_interval=300,
                timeout=timedelta(hours=source.wait_hours + 24).total_seconds(),
                mode="reschedule",
            )
            def wait_for_batch(name: str, ds: str | None = None) -> PokeReturnValue:
                """Done once D's batch has landed; fails clearly after the source's deadline."""
                from airflow.sdk.exceptions import AirflowFailException

                from nightshift import ingest

                try:
                    return PokeReturnValue(is_done=ingest.wait_for_batch(name, pendulum.parse(ds).date()))
                except ingest.BatchMissing as exc:
                    raise AirflowFailException(str(exc)) from exc

            @task(task_id="validate_and_load", outlets=[raw_asset(source_name)])
            def validate_and_load(name: str, ds: str | None = None, outlet_events: dict | None = None) -> dict:
                """Validate D's batch and replace D's raw, quarantine and summary partitions."""
                from airflow.sdk.exceptions import AirflowFailException

                from nightshift import ingest

                try:
                    summary = ingest.ingest_day(name, pendulum.parse(ds).date())
                    # Downstream runs learn which day they are for from the event.
                    outlet_events[raw_asset(name)].extra = {"batch_date": summary["batch_date"]}
                    return summary
                except ingest.BatchRejected as exc:
                    # Retrying cannot fix a broken file: fail now, with the reason.
                    raise AirflowFailException(str(exc)) from exc

            wait_for_batch(source_name) >> validate_and_load(source_name)
