"""
### Retrain: a LightGBM challenger, an evaluation gate, the MLflow `champion` alias

One DAG per use case (`retrain_<use case>`). Runs on the use case's weekly cron
(`schedules.retrain` in `config/<use case>.yaml`; `null` for none) **or** as soon as monitoring emits the Asset
`retrain-request/<use case>`; by hand with "Trigger DAG". A drift-triggered run trains on data
up to the requested day D (run date D + 1); the request's reasons become the run's tag
`nightshift.trigger_reasons`, the version's tag `trigger_reasons` and the audit row's
`trigger_reasons` in `meta.model_promotions` (trigger `drift`, against `schedule` or `manual`). One run at a time (`max_active_runs=1`),
no catchup. Registry writes queue in the one-slot `model_registry` pool and hold the registry
lock (shared with the rollback DAG and the `nightshift` CLI, across processes), so two alias
moves never race.

1. **train** joins the use case's population to its label model (only labels known by the start
   of the run date), reads features point-in-time through the feature service, splits by day
   with purge gaps of the label horizon (train, validation for early stopping, most recent days
   as holdout), trains LightGBM with the configured objective, parameters and seed, and logs
   everything to an MLflow run. A label model that breaks its contract fails the task here.
2. **evaluate** puts the challenger and the current champion through the same gate on the
   same holdout (the task's metrics: floors, improvement, slices, calibration, behavioural and
   data checks) and
   logs the report (JSON and Markdown) to the run.
3. **register** registers a version for every trained challenger, tagged with the verdict,
   reasons, trigger and feature service; moves `champion` only when the gate passed against the
   version that is still champion (if `champion` moved since evaluate, e.g. by a rollback, the
   task fails saying so: clear evaluate to judge the challenger again); appends the decision to
   `meta.model_promotions`. A retry after a crash between the alias move and its audit row
   writes the missing row.

Code: `plugins/nightshift/modeling/` (`retrain`: the steps; `training`, `evaluation`, `registry`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, task

from nightshift.airflow.alerts import TRAIN_TIMEOUT_HOURS, announce, dag_callbacks, gate_event, task_defaults
from nightshift.airflow.assets import retrain_request_asset
from nightshift.airflow.guards import dag_start, start_date_guard
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases

# Parse-time work is reading the small use-case files: one DAG per use case, on its own cron.
USE_CASES = load_use_cases(Settings.from_env().config_dir)

for use_case_name, use_case in USE_CASES.items():
    with DAG(
        dag_id=f"retrain_{use_case_name}",
        # `schedules.retrain: null` in the use-case file: retrain on a drift request or by hand only
        schedule=retrain_request_asset(use_case_name) if use_case.schedules.get("retrain", "0 3 * * 1") is None
        else AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(use_case.schedules.get("retrain", "0 3 * * 1"), timezone="UTC"),
            assets=retrain_request_asset(use_case_name),
        ),
        start_date=dag_start(use_case.start_date),
        catchup=False,
        max_active_runs=1,
        **dag_callbacks(),
        default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=2), **task_defaults()},
        tags=["nightshift", "retrain", use_case_name],
        doc_md=__doc__,
    ):

        @task(execution_timeout=timedelta(hours=TRAIN_TIMEOUT_HOURS), multiple_outputs=False)
        def train(name: str, ds: str | None = None, dag_run=None,  # noqa: ANN001 - Airflow's DagRun
                  triggering_asset_events: dict | None = None) -> dict:
            """Train and log a challenger; returns its MLflow run id. A drift request's run trains up to its day."""
            from nightshift.modeling import retrain

            from nightshift.airflow.messages import fail

            trigger = retrain.trigger_of(dag_run.run_type)
            request = retrain.drift_request_of(triggering_asset_events) if trigger == "drift" else None
            if trigger == "drift" and request is None:
                # an asset-triggered run has no logical date: without the request's night it would train as of now
                raise fail(
                    f"this run was started by a retrain-request/{name} event without a `monitor_date` in its extra "
                    "(an event made by hand?); trigger the DAG by hand instead, or emit the event with the night")
            run_date = retrain.drift_run_date(request) if request else retrain.run_date_of(ds)
            if request:
                print(f"drift request for {request['requested_days']}: training up to {request['monitor_date']} "
                      f"(run date {run_date}); reasons: {retrain.reasons_text(request)}")
            return retrain.train_challenger(Settings.from_env(), name, run_date, trigger, retrain.reasons_text(request))

        @task(multiple_outputs=False)
        def evaluate(name: str, trained: dict) -> dict:
            """The gate report of the challenger against the champion."""
            from nightshift.modeling import retrain

            report = retrain.evaluate_challenger(Settings.from_env(), name, trained["run_id"])
            print(retrain.gate_summary(report))
            announce(gate_event(report), f"{name}: {retrain.gate_summary(report)}")
            return {"verdict": report["verdict"], "reasons": report["reasons"]}

        @task(pool="model_registry", multiple_outputs=False)
        def register(name: str, trained: dict, verdict: dict, dag_run=None) -> dict:  # noqa: ANN001
            """Register the version; move `champion` only on a pass over the judged champion; audit it."""
            from nightshift.airflow.messages import fail

            from nightshift.modeling import registry, retrain

            try:
                registered = retrain.register_challenger(
                    Settings.from_env(), name, trained["run_id"], retrain.trigger_of(dag_run.run_type), dag_run.run_id
                )
            except registry.ChampionMoved as exc:
                raise fail(str(exc)) from exc  # a retry would refuse again: evaluate must rerun
            if registered["promoted"]:
                announce("champion_changed", f"{name}: models:/{name}@champion is now version {registered['version']} "
                                             f"(run {dag_run.run_id})")
            return registered

        trained = train(use_case_name)
        register(use_case_name, trained, evaluate(use_case_name, trained))
        start_date_guard(f"retrain_{use_case_name}", [use_case_name])
