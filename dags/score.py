"""
### Score `<use case>`: every entity of day D's population, by the champion, into `predictions.<use case>_daily`

One DAG per use case (`score_<use case>`). Runs when the use case's features are fresh (Asset
`features/<use case>`), or for any date by hand or as a backfill (`airflow backfill create`, or
the UI): a backfilled day is scored exactly like a nightly one. Its daily interval (midnight UTC)
is what gives backfills their dates; a scheduled run scores D only if the features-triggered
run has not (and skips, saying so, while D's features have not landed).

1. **plan** resolves `models:/<model>@champion` to one version (pinned for the run), takes its
   feature service from the version's `feature_service` tag and refuses clearly when no model
   has passed the gate, when the model needs features its service does not serve, or when the
   service has no features for D (run the `features_<use case>` DAG).
2. **score_shard** (dynamic task mapping, one task per shard; `scoring.shards` in the use-case
   file) scores the entities whose stable key hash falls in its shard, chunk by chunk, through
   the same Feast point-in-time path training used.
3. **publish** gathers the shards, adds decile (and band, for a binary task), checks scored +
   errors = population, and replaces partition D of `predictions.<use case>_daily` and
   `predictions.<use case>_errors` in one write, with the use case's own key columns. It emits
   `predictions/<use case>`; a backfill's event says so, and monitoring never turns a backfill
   into a retrain request.
4. **marts** (dbt through Cosmos): `<use case>_predictions_latest`, `_predictions_history`,
   `_score_summary`, `_model_performance_daily` (realized, from the label model), with tests. A run with the param
   `build_marts: false` skips them (a long backfill rebuilds them on its last day only).
5. **shadow** scores the `challenger` alias, when one exists, into `predictions.<use case>_shadow`
   (comparison only; nothing downstream reads it).

6. **check_start_date** fails a run for a day before the use case's `start_date`.

Code: `plugins/nightshift/scoring/` (`planning`, `shards`, `publishing`); marts: `dbt/models/marts/<use case>/`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, task
from nightshift.airflow.assets import features_asset, predictions_asset
from nightshift.airflow.dbt_tasks import dbt_task_group
from nightshift.airflow.guards import dag_start, start_date_guard
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases

# Parse-time work is reading the small use-case files and the dbt manifest (built by `make`).
SETTINGS = Settings.from_env()
USE_CASES = load_use_cases(SETTINGS.config_dir)

for use_case_name, use_case in USE_CASES.items():
    with DAG(
        dag_id=f"score_{use_case_name}",
        # Nightly on fresh features; the daily interval gives backfills their dates (a scheduled
        # run only scores a day the features-triggered run has not).
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), assets=features_asset(use_case_name)
        ),
        start_date=dag_start(use_case.start_date),
        catchup=use_case.catchup,
        max_active_runs=2,
        default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
        tags=["nightshift", "score", use_case_name],
        doc_md=__doc__.replace("`<use case>`", f"`{use_case_name}`", 1),
        params={
            "build_marts": Param(True, type="boolean",
                                 description="rebuild the dbt marts after publishing (a long backfill can "
                                             "skip them on all but its last day: they are rebuilt whole)"),
        },
    ):

        @task
        def plan(name: str, ds: str | None = None, triggering_asset_events: dict | None = None,
                 dag_run=None) -> dict:  # noqa: ANN001 - Airflow's DagRun
            """The champion version, its feature service and the shard count for D."""
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from nightshift import days, features, scoring

            settings = Settings.from_env()
            day = days.candidate_days(ds, triggering_asset_events, key="feature_date")[0]
            scheduled = str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "scheduled"
            try:
                scoring_plan = scoring.plan(settings, name, day)
            except features.FeatureDataMissing as exc:
                if scheduled:
                    raise AirflowSkipException(f"{exc} (the features-triggered run scores {day} when they land)") from exc
                raise AirflowFailException(str(exc)) from exc
            except (scoring.NoChampion, scoring.FeatureContractBroken) as exc:
                raise AirflowFailException(str(exc)) from exc
            if scheduled and scoring.already_published(settings, scoring_plan):
                raise AirflowSkipException(f"{day} is already scored by version {scoring_plan.model_version}")
            return scoring_plan.as_dict()

        @task
        def shards(scoring_plan: dict) -> list[int]:
            """One mapped scoring task per shard."""
            return list(range(scoring_plan["shards"]))

        @task(max_active_tis_per_dagrun=8)
        def score_shard(scoring_plan: dict, shard: int) -> dict:
            """Score one shard of D's population, in chunks; stage the result."""
            from nightshift import scoring

            return scoring.score_shard(Settings.from_env(), scoring.ScoringPlan(**scoring_plan), shard)

        @task(outlets=[predictions_asset(use_case_name)])
        def publish(scoring_plan: dict, scored: list[dict], dag_run=None, outlet_events: dict | None = None) -> dict:  # noqa: ANN001
            """Replace partition D of predictions.<use case>_daily and _errors with the staged shards."""
            from nightshift import scoring

            result = scoring.publish(Settings.from_env(), scoring.ScoringPlan(**scoring_plan), dag_run.run_id)
            outlet_events[predictions_asset(scoring_plan["use_case"])].extra = {
                "scoring_date": scoring_plan["scoring_date"],
                "backfill": str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "backfill",
            }
            return result

        marts = dbt_task_group("marts", SETTINGS, select=[f"tag:scoring,tag:{use_case.dbt_tag}"])

        @task.short_circuit
        def marts_wanted(params: dict | None = None) -> bool:
            """Skip the marts when the run's `build_marts` param is false."""
            return bool((params or {}).get("build_marts", True))

        @task
        def publish_marts() -> list[str]:
            """Make the marts queryable in the warehouse catalog."""
            from nightshift import features

            return features.publish_dbt_tables(Settings.from_env())

        @task
        def shadow(name: str, scoring_plan: dict, dag_run=None) -> dict:  # noqa: ANN001
            """Score the `challenger` alias into predictions.shadow; skipped when there is none."""
            from datetime import date

            from airflow.sdk.exceptions import AirflowSkipException

            from nightshift import scoring

            result = scoring.score_day(Settings.from_env(), name, date.fromisoformat(scoring_plan["scoring_date"]),
                                       alias=scoring.SHADOW_ALIAS, airflow_run_id=dag_run.run_id)
            if result is None:
                raise AirflowSkipException("no `challenger` alias: nothing to shadow-score")
            return result

        planned = plan(use_case_name)
        published = publish(planned, score_shard.partial(scoring_plan=planned).expand(shard=shards(planned)))
        published >> marts_wanted() >> marts >> publish_marts()
        published >> shadow(use_case_name, planned)
        start_date_guard(f"score_{use_case_name}", [use_case_name])
