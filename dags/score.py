"""
### Score `<use case>`: every entity of day D's population, by the champion, into `predictions.<use case>_daily`

One DAG per use case (`score_<use case>`). Runs when the use case's features are fresh (Asset
`features/<use case>`), or for any date by hand or as a backfill (`airflow backfill create`, or
the UI): a backfilled day is scored exactly like a nightly one. Every day with features is scored:
a run triggered by several `features/<use case>` events (features catching up after a late
upstream) scores every day they name, each into its own partition. Its daily interval (midnight
UTC) is what gives backfills their dates; a scheduled run is the safety net for its day D: it
skips, naming the run and model version that scored D, once D has scores; otherwise it waits
(reschedule mode, no worker held) until `scoring.wait_hours` (default 12) after the end of D,
then scores D itself if D's features are there, or fails naming D and the `features_<use case>` DAG.

1. **days_to_score** decides the days (above).
2. **plan** resolves `models:/<model>@champion` to one version (pinned for the run, for every
   day), takes its feature service from the version's `feature_service` tag and refuses clearly
   when no model has passed the gate, when the model needs features its service does not serve,
   or when the service has no features for a day (run the `features_<use case>` DAG).
3. **score_shard** (dynamic task mapping, one task per day and shard; `scoring.shards` in the
   use-case file) scores the entities whose stable key hash falls in its shard, chunk by chunk,
   through the same Feast point-in-time path training used, and stages them under the run's key
   (run id, model version, alias): two runs for the same day never mix their shards.
4. **publish** (one task per day) gathers the run's shards, adds decile (and band, for a binary
   task), checks scored + errors = population, replaces partition D of
   `predictions.<use case>_daily` and `predictions.<use case>_errors` in one write, with the use
   case's own key columns, and drops the run's staging. It emits `predictions/<use case>` per day;
   a backfill's event says so, and monitoring never turns a backfill into a retrain request.
5. **marts** (dbt through Cosmos): `<use case>_predictions_latest`, `_predictions_history`,
   `_score_summary`, `_model_performance_daily` (realized, from the label model), with tests.
   **choose_mart_days** picks the days they rebuild, like the features DAG's `choose_days`: the
   scored days (and any day since the last marts build), or every day when the marts'
   definitions changed or nothing was built yet. A run with the param
   `build_marts: false` skips them (a long backfill builds them on its last day, from the first
   day not built yet).
6. **shadow** scores the `challenger` alias, when one exists, into `predictions.<use case>_shadow`
   (comparison only; nothing downstream reads it).

7. **check_start_date** fails a run for a day before the use case's `start_date`.

Deadline: if the scheduled run for D has not finished `scoring.publish_by_hours` (default 8) after
the end of D, the alert `scores_late` goes to the log, Slack and e-mail (backfills and runs by hand
have no deadline). Code: `plugins/nightshift/airflow/deadlines.py`.

Code: `plugins/nightshift/scoring/` (`planning`, `shards`, `publishing`); marts: `dbt/models/marts/<use case>/`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, PokeReturnValue, task
from nightshift.airflow.alerts import dag_callbacks, task_defaults
from nightshift.airflow.assets import features_asset, predictions_asset
from nightshift.airflow.dbt_tasks import dbt_task_group
from nightshift.airflow.deadlines import publish_deadline
from nightshift.airflow.guards import dag_start, start_date_guard
from nightshift.scoring.planning import DEFAULT_WAIT_HOURS
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases

# Parse-time work is reading the small use-case files and the dbt manifest (built by `make`).
SETTINGS = Settings.from_env()
USE_CASES = load_use_cases(SETTINGS.config_dir)

for use_case_name, use_case in USE_CASES.items():
    with DAG(
        dag_id=f"score_{use_case_name}",
        # Nightly on fresh features; the daily interval gives backfills their dates (a scheduled
        # run only scores a day nobody else has).
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), assets=features_asset(use_case_name)
        ),
        start_date=dag_start(use_case.start_date),
        catchup=use_case.catchup,
        # a scheduled run may wait for its day (scoring.wait_hours) beside the runs features trigger
        max_active_runs=3,
        # alert when the nightly (scheduled) run has not published D by scoring.publish_by_hours after D
        deadline=publish_deadline(use_case_name, use_case.scoring),
        **dag_callbacks(),
        default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=2), **task_defaults()},
        tags=["nightshift", "score", use_case_name],
        doc_md=__doc__.replace("`<use case>`", f"`{use_case_name}`", 1),
        params={
            "build_marts": Param(True, type="boolean",
                                 description="rebuild the dbt marts after publishing (a long backfill can "
                                             "skip them on all but its last day: they are rebuilt whole)"),
        },
    ):

        # The sensor's own deadline (scoring.wait_hours after the end of D) comes first; the timeout is a backstop.
        @task.sensor(poke_interval=300, mode="reschedule", timeout=timedelta(
            hours=float(use_case.scoring.get("wait_hours", DEFAULT_WAIT_HOURS)) + 24).total_seconds())
        def days_to_score(name: str, ds: str | None = None, triggering_asset_events: dict | None = None,
                          dag_run=None) -> PokeReturnValue:  # noqa: ANN001 - Airflow's DagRun
            """Every day the features events name (or the run's day); a scheduled run scores its day only if
            nobody did by the deadline."""
            from nightshift.airflow.messages import fail, skip

            from nightshift import days, scoring

            candidates = days.candidate_days(ds, triggering_asset_events, key="feature_date")
            scheduled = str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "scheduled"
            try:
                chosen = scoring.days_to_score(Settings.from_env(), name, candidates, scheduled)
            except scoring.DayAlreadyScored as exc:
                raise skip(str(exc)) from exc
            except (scoring.DayNotScored, scoring.NoChampion, scoring.FeatureContractBroken) as exc:
                raise fail(str(exc)) from exc
            return PokeReturnValue(is_done=chosen is not None, xcom_value=[d.isoformat() for d in chosen or []])

        @task
        def plan(name: str, day_list: list[str], dag_run=None) -> list[dict]:  # noqa: ANN001 - Airflow's DagRun
            """For each day: the champion version (pinned for the run), its feature service and the shard count."""
            from datetime import date

            from nightshift.airflow.messages import fail

            from nightshift import features, scoring

            try:
                plans = scoring.plans_for(Settings.from_env(), name, [date.fromisoformat(d) for d in day_list],
                                          airflow_run_id=dag_run.run_id)
            except (features.FeatureDataMissing, scoring.NoChampion, scoring.FeatureContractBroken) as exc:
                raise fail(str(exc)) from exc
            return [p.as_dict() for p in plans]

        @task
        def shards(plans: list[dict]) -> list[dict]:
            """One mapped scoring task per day and shard."""
            return [{"scoring_plan": p, "shard": shard} for p in plans for shard in range(p["shards"])]

        @task(max_active_tis_per_dagrun=8, multiple_outputs=False)
        def score_shard(scoring_plan: dict, shard: int) -> dict:
            """Score one shard of one day's population, in chunks; stage it under the run's key."""
            from nightshift import scoring

            return scoring.score_shard(Settings.from_env(), scoring.ScoringPlan(**scoring_plan), shard)

        @task(outlets=[predictions_asset(use_case_name)], multiple_outputs=False)
        def publish(scoring_plan: dict, dag_run=None, outlet_events: dict | None = None) -> dict:  # noqa: ANN001
            """Replace partition D of predictions.<use case>_daily and _errors with this run's staged shards."""
            from nightshift import scoring

            result = scoring.publish(Settings.from_env(), scoring.ScoringPlan(**scoring_plan), dag_run.run_id)
            outlet_events[predictions_asset(scoring_plan["use_case"])].extra = {
                "scoring_date": scoring_plan["scoring_date"],
                "backfill": str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "backfill",
            }
            return result

        @task
        def choose_mart_days(name: str, scoring_plans: list[dict]) -> dict:
            """Which days the marts rebuild: the days this run scored (and any not built since), or all."""
            from datetime import date

            from nightshift import features
            from nightshift.usecase import use_case_of

            settings = Settings.from_env()
            scored = sorted(date.fromisoformat(p["scoring_date"]) for p in scoring_plans)
            plan = features.days_to_build(settings, use_case_of(settings, name), scored[-1], scope="marts",
                                          first_day=scored[0])
            print(f"the marts rebuild {'every day' if plan.full else f'{plan.first} to {plan.last}'}: {plan.reason}")
            return plan.to_xcom()

        marts = dbt_task_group("marts", SETTINGS, select=[f"tag:scoring,tag:{use_case.dbt_tag}"],
                               env={"NIGHTSHIFT_DBT_DAYS": "{{ ti.xcom_pull(task_ids='choose_mart_days')['dbt_days'] }}"})

        @task.short_circuit
        def marts_wanted(params: dict | None = None) -> bool:
            """Skip the marts when the run's `build_marts` param is false."""
            return bool((params or {}).get("build_marts", True))

        @task
        def publish_marts(mart_days: dict, run_id: str | None = None) -> list[str]:
            """Record the marts build and make the marts queryable in the warehouse catalog."""
            from nightshift import features

            settings = Settings.from_env()
            features.record_build(settings, features.BuildPlan.from_xcom(mart_days), run_id)
            return features.publish_dbt_tables(settings)

        @task(multiple_outputs=False)
        def shadow(name: str, scoring_plan: dict, dag_run=None) -> dict:  # noqa: ANN001
            """Score the `challenger` alias into predictions.<use case>_shadow; skipped when there is none."""
            from datetime import date

            from nightshift.airflow.messages import skip

            from nightshift import scoring

            result = scoring.score_day(Settings.from_env(), name, date.fromisoformat(scoring_plan["scoring_date"]),
                                       alias=scoring.SHADOW_ALIAS, airflow_run_id=dag_run.run_id)
            if result is None:
                raise skip("no `challenger` alias: nothing to shadow-score")
            return result

        planned = plan(use_case_name, days_to_score(use_case_name))
        published = publish.expand(scoring_plan=planned)
        score_shard.expand_kwargs(shards(planned)) >> published
        mart_days = choose_mart_days(use_case_name, planned)
        published >> marts_wanted() >> mart_days >> marts >> publish_marts(mart_days)
        published >> shadow.partial(name=use_case_name).expand(scoring_plan=planned)
        start_date_guard(f"score_{use_case_name}", [use_case_name])
