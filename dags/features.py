"""
### Features: dbt feature models, Feast apply, chunked materialization, skew check

Runs when every landed source has been ingested for a day (Assets `raw/<source>`), or by
hand / backfill for logical date **D**:

1. **check_raw_data** picks D (the logical date, or the latest day the triggering ingest runs
   completed for every source) and fails, naming D and the `ingest` DAG, if a source has no
   partition for D.
2. **dbt** (Cosmos, one task per model, tests after each model) builds staging views and the
   daily feature tables. A failing dbt test stops the run before anything is materialized;
   the task's error names the test.
3. **feast_apply** applies `feature_repo/` (a field no source column provides fails here).
4. **materialize** fills the online store up to the end of D in time chunks, resuming from
   the last finished chunk after a failure.
5. **skew_check_<use case>** compares online values with offline point-in-time values for a
   sample of the day's entities, records them in `monitoring.feature_skew`, fails loudly above
   the use case's threshold, and emits `features/<use case>`.

Code: `plugins/nightshift/features/` (`store`, `readiness`, `skew`, `dbt_project`); models: `dbt/`; definitions: `feature_repo/`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task
from nightshift.airflow.assets import features_asset, raw_asset
from nightshift.airflow.dbt_tasks import dbt_task_group
from nightshift.settings import Settings
from nightshift.usecase import all_sources, load_use_cases

# Parse-time work is reading the small use-case files and the dbt manifest (built by `make`).
SETTINGS = Settings.from_env()
USE_CASES = load_use_cases(SETTINGS.config_dir)

with DAG(
    dag_id="features",
    schedule=[raw_asset(source) for source in all_sources(USE_CASES)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["nightshift", "features"],
    doc_md=__doc__,
) as dag:

    @task
    def check_raw_data(ds: str | None = None, triggering_asset_events: dict | None = None) -> str:
        """D, once every source has an ingested partition for it."""
        from airflow.sdk.exceptions import AirflowFailException

        from nightshift import days, features

        settings = Settings.from_env()
        try:
            day = features.resolve_day(settings, days.candidate_days(ds, triggering_asset_events))
        except features.FeatureDataMissing as exc:
            raise AirflowFailException(str(exc)) from exc
        features.prepare_dbt_tables(settings)
        return day.isoformat()

    # predictions staging and marts are the score DAG's
    dbt = dbt_task_group("dbt", SETTINGS, exclude=["tag:scoring"])

    @task
    def feast_apply() -> list[str]:
        """Apply feature_repo/ to the registry and publish the feature tables; returns the feature views."""
        from nightshift import features

        settings = Settings.from_env()
        features.publish_dbt_tables(settings)
        return features.apply_definitions(settings)

    @task
    def materialize(day: str) -> dict:
        """Materialize the online store up to the end of D, in chunks."""
        from dataclasses import asdict
        from datetime import date

        from nightshift import features

        return asdict(features.materialize(Settings.from_env(), date.fromisoformat(day)))

    day = check_raw_data()
    materialized = materialize(day)
    day >> dbt >> feast_apply() >> materialized

    for use_case in USE_CASES:

        @task(task_id=f"skew_check_{use_case}", outlets=[features_asset(use_case)])
        def skew_check(name: str, day: str, outlet_events: dict | None = None) -> dict:
            """Online vs offline point-in-time values for a sample of D's entities."""
            from dataclasses import asdict
            from datetime import date

            from airflow.sdk.exceptions import AirflowFailException

            from nightshift import features

            try:
                report = asdict(features.check_skew(Settings.from_env(), name, date.fromisoformat(day)))
            except features.SkewDetected as exc:
                raise AirflowFailException(str(exc)) from exc
            # the score DAG learns which day it is for from the event
            outlet_events[features_asset(name)].extra = {"feature_date": day}
            return report

        materialized >> skew_check(use_case, day)
