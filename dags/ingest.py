"""
### Ingest `<source>`: validate every landed batch, load accepted rows, quarantine the rest

One DAG per landed source (`ingest_<source>`), so a source that is late or broken never blocks
another, nor another use case. For logical date **D** (one run per day; backfill any range from
the UI or with `airflow backfill create`):

One task, **validate_and_load**:

1. It first fails a run for a day before the earliest `start_date` of the use cases that read the
   source (otherwise Airflow would record it as a success with no task: the task exists in every
   run). Then it waits for D's files in `<landing>/<source>/<D>/` and fails with a clear message
   once the source's `wait_hours` after the end of D have passed. A run started by hand or by a
   backfill does not wait: without D's files it fails at once, with the same advice.
2. It validates the batch with `expectations/<source>.json` (GX).
   Rows that break a row rule go to `quarantine.<source>` with the rules they broke;
   the others go to `raw.<source>`; the counts go to `meta.validation_runs`.
   A batch rule failure (unreadable file, missing column, row count out of bounds)
   fails the run, writes nothing and leaves the file untouched: fix the file, clear the task.

Re-running D replaces exactly D's partitions. On success the source emits `raw/<source>`.
Code: `plugins/nightshift/ingest/` (`loading`, `validation`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, PokeReturnValue, task

from nightshift.airflow.alerts import announce, dag_callbacks, quarantine_alert, task_defaults
from nightshift.airflow.assets import raw_asset
from nightshift.airflow.guards import check_start, dag_start, in_every_run
from nightshift.settings import Settings
from nightshift.usecase import all_sources, load_use_cases, readers_of

# Reading the small use-case YAML files is the only parse-time work: it decides the DAGs.
USE_CASES = load_use_cases(Settings.from_env().config_dir)

for source_name, source in all_sources(USE_CASES).items():
    readers = readers_of(USE_CASES, source_name)
    with DAG(
        dag_id=f"ingest_{source_name}",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=dag_start(min(u.start_date for u in readers)),
        catchup=any(u.catchup for u in readers),
        max_active_runs=4,
        **dag_callbacks(),
        default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2), **task_defaults()},
        tags=["nightshift", "ingest", *sorted(u.name for u in readers)],
        doc_md=__doc__.replace("`<source>`", f"`{source_name}`", 1),
    ):

        @task.sensor(
            task_id="validate_and_load",
            poke_interval=300,
            timeout=timedelta(hours=source.wait_hours + 24).total_seconds(),
            mode="reschedule",
            outlets=[raw_asset(source_name)],
        )
        def validate_and_load(name: str, reader_names: list[str], alert_share: float, ds: str | None = None,
                              dag_run=None, outlet_events: dict | None = None) -> PokeReturnValue:  # noqa: ANN001
            """Fails a run before the use cases' start_date; waits for D's batch (fails clearly after the
            source's deadline, or at once in a run started by hand or by a backfill: only the nightly run
            waits for a late upstream); then validates it and replaces D's raw, quarantine and summary
            partitions."""
            from datetime import date

            from nightshift.airflow.messages import fail

            from nightshift import ingest

            check_start(f"ingest_{name}", reader_names, ds)
            day = date.fromisoformat(ds[:10])
            scheduled = str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "scheduled"
            try:
                if not ingest.wait_for_batch(name, day, wait=scheduled):
                    return PokeReturnValue(is_done=False)
                summary = ingest.ingest_day(name, day)
            except (ingest.BatchMissing, ingest.BatchRejected) as exc:
                # Retrying cannot land a file nor fix a broken one: fail now, with the reason.
                raise fail(str(exc)) from exc
            # Downstream runs learn which day they are for from the event.
            outlet_events[raw_asset(name)].extra = {"batch_date": summary["batch_date"]}
            if (text := quarantine_alert(summary, alert_share)) is not None:
                announce("quarantine_above_threshold", text)
            return PokeReturnValue(is_done=True, xcom_value=summary)

        # One task per run: the sensor is the start-date guard too, and loads the batch once it has landed
        # (a task start costs more than validating a demo batch). Its own start date is the epoch, so it
        # exists even in a run before the DAG's start date, and fails it.
        in_every_run(validate_and_load(source_name, [u.name for u in readers], source.alert_quarantined_share))
