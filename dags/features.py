"""
### Features `<use case>`: dbt models, Feast apply, chunked materialization, skew check

One DAG per use case (`features_<use case>`). Runs when every source of the use case has been
ingested for a day (Assets `raw/<source>`), or by hand / backfill for logical date **D**:

1. **check_raw_data** picks D (the logical date, or the latest day the triggering ingest runs
   completed for every source of the use case) and fails, naming D and the `ingest_<source>`
   DAGs, if a source has no partition for D.
2. **choose_days** decides which days dbt builds: D alone on a normal night (or the days since the
   last build, if some were missed); D and every day after it when D was built before (a re-run
   or backfill after a fixed file); every day when the models' definitions changed, nothing
   was built yet, or the run's `full_refresh` param is on. Its log says which and why.
3. **dbt** (Cosmos, one `dbt build` task per model: the model, then its tests) builds the planned
   days of the use case's models and their parents (`+tag:<use case>`): staging views, daily
   feature tables, the population and the label model. A failing dbt test stops the run before
   anything is materialized; the task's error names the test. Another use case's models are
   not built here.
4. **feast_apply** records the build, then applies `feature_repo/<use case>.py` only (a field
   no source column provides fails here).
5. **materialize** fills the online store of the use case's feature views up to the end of D
   in time chunks, resuming from the last finished chunk after a failure.
6. **skew_check** compares online values with offline point-in-time values for a sample of
   the day's population, records them in `monitoring.feature_skew`, fails loudly above the
   use case's threshold, and emits `features/<use case>`, naming D and every earlier day this
   run's events named that is ready too (days that landed together are all scored).
7. **check_start_date** fails a run for a day before the use case's `start_date`.

Code: `plugins/nightshift/features/` (`store`, `readiness`, `skew`, `builds`, `dbt_project`); models: `dbt/`;
definitions: `feature_repo/`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task
from nightshift.airflow.alerts import dag_callbacks, task_defaults
from nightshift.airflow.assets import features_asset, raw_asset
from nightshift.airflow.dbt_tasks import dbt_task_group
from nightshift.airflow.guards import dag_start, start_date_guard
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases

# Parse-time work is reading the small use-case files and the dbt manifest (built by `make`).
SETTINGS = Settings.from_env()
USE_CASES = load_use_cases(SETTINGS.config_dir)

for use_case_name, use_case in USE_CASES.items():
    with DAG(
        dag_id=f"features_{use_case_name}",
        schedule=[raw_asset(source) for source in use_case.sources],
        start_date=dag_start(use_case.start_date),
        catchup=False,
        max_active_runs=1,
        **dag_callbacks(),
        default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2), **task_defaults()},
        tags=["nightshift", "features", use_case_name],
        doc_md=__doc__.replace("`<use case>`", f"`{use_case_name}`", 1),
        params={
            "full_refresh": Param(False, type="boolean",
                                  description="build every day of the use case's models, not only the planned days "
                                              "(after a change dbt cannot see in the model SQL)"),
        },
    ):

        @task
        def check_raw_data(name: str, ds: str | None = None, triggering_asset_events: dict | None = None) -> str:
            """D, once every source of the use case has an ingested partition for it."""
            from nightshift.airflow.messages import fail

            from nightshift import days, features
            from nightshift.usecase import use_case_of

            settings = Settings.from_env()
            try:
                day = features.resolve_day(settings, use_case_of(settings, name),
                                           days.candidate_days(ds, triggering_asset_events))
            except features.FeatureDataMissing as exc:
                raise fail(str(exc)) from exc
            features.prepare_dbt_tables(settings)
            return day.isoformat()

        @task
        def choose_days(name: str, day: str, params: dict | None = None) -> dict:
            """Which days dbt builds tonight (D, D and the days after it, or all), and why."""
            from datetime import date

            from nightshift import features
            from nightshift.usecase import use_case_of

            settings = Settings.from_env()
            plan = features.days_to_build(settings, use_case_of(settings, name), date.fromisoformat(day),
                                       full_refresh=bool((params or {}).get("full_refresh")))
            print(f"dbt builds {'every day' if plan.full else f'{plan.first} to {plan.last}'} of {name}'s models: "
                  f"{plan.reason}")
            return plan.to_xcom()

        # the use case's models and their parents; its marts are the score DAG's
        dbt = dbt_task_group("dbt", SETTINGS, select=[f"+tag:{use_case.dbt_tag}"], exclude=["tag:scoring"],
                             env={"NIGHTSHIFT_DBT_DAYS": "{{ ti.xcom_pull(task_ids='choose_days')['dbt_days'] }}"})

        @task
        def feast_apply(name: str, plan: dict, run_id: str | None = None) -> list[str]:
            """Record the dbt build, apply feature_repo/<use case>.py and publish the dbt tables;
            returns its feature views."""
            from nightshift import features

            settings = Settings.from_env()
            features.record_build(settings, features.BuildPlan.from_xcom(plan), run_id)
            features.publish_dbt_tables(settings)
            return features.apply_definitions(settings, name)

        @task(multiple_outputs=False)
        def materialize(day: str, views: list[str]) -> dict:
            """Materialize the use case's feature views up to the end of D, in chunks."""
            from dataclasses import asdict
            from datetime import date

            from nightshift import features

            return asdict(features.materialize(Settings.from_env(), date.fromisoformat(day), views))

        @task(task_id="skew_check", outlets=[features_asset(use_case_name)], multiple_outputs=False)
        def skew_check(name: str, day: str, ds: str | None = None, triggering_asset_events: dict | None = None,
                       outlet_events: dict | None = None) -> dict:
            """Online vs offline point-in-time values for a sample of D's population."""
            from dataclasses import asdict
            from datetime import date

            from nightshift.airflow.messages import fail

            from nightshift import days, features
            from nightshift.usecase import use_case_of

            settings = Settings.from_env()
            try:
                report = asdict(features.check_skew(settings, name, date.fromisoformat(day)))
            except features.SkewDetected as exc:
                raise fail(str(exc)) from exc
            # the score DAG learns from the event which days it is for (several may have landed at once)
            outlet_events[features_asset(name)].extra = features.features_event(
                settings, use_case_of(settings, name), date.fromisoformat(day),
                days.candidate_days(ds, triggering_asset_events))
            return report

        day = check_raw_data(use_case_name)
        plan = choose_days(use_case_name, day)
        views = feast_apply(use_case_name, plan)
        plan >> dbt >> views
        materialize(day, views) >> skew_check(use_case_name, day)
        start_date_guard(f"features_{use_case_name}", [use_case_name])
