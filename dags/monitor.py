"""
### Monitor `<use case>`: drift and performance of each scored day, and retrain requests

One DAG per use case (`monitor_<use case>`). Runs when day D's predictions are published (Asset
`predictions/<use case>`), or for any date by hand or as a backfill. Its daily timetable gives
backfills their dates; a scheduled run monitors its day only if D is scored and not yet monitored.

1. **days_to_monitor**: the days the predictions events name (or the run's day). A day without
   predictions fails the run, naming the `score_<use case>` DAG.
2. **monitor** (per day, oldest first): one Evidently 0.7 report of D's features and scores (a
   seeded sample of `monitoring.sample_rows`) against the holdout of the model version that
   scored D; estimated performance (binary: confidence-based; regression: direct loss
   estimation) and realized performance once labels land; the decision. It replaces (use case,
   D) in `monitoring.drift_daily`, `monitoring.performance_daily` and
   `monitoring.retrain_requests` in one write, stores the HTML report under
   `<artifacts>/monitoring/<use case>/<D>/drift_report.html` and logs it to the version's MLflow
   run under `monitoring/`.
3. **checks**: the dbt tests of the three tables (`dbt/models/staging/_monitoring_sources.yml`), in the
   `dbt` pool; a run with the param `run_checks: false` skips them.
4. **request_retrain** emits `retrain-request/<use case>` (reasons and numbers in the extra)
   when a threshold was crossed and nothing suppressed it; it is skipped otherwise. A request
   is suppressed, with the reason in `monitoring.retrain_requests`, when D's predictions came
   from a backfill, D is older than the champion's training date, a retrain is queued or
   running, an earlier request is still unanswered, or a model was trained within the cooldown.

Thresholds, sampling and tests: the `monitoring:` block of `config/<use case>.yaml`.
Code: `plugins/nightshift/monitoring/` (`run`: the steps; `drift`, `performance`, `decision`, `reports`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, task

from nightshift.airflow.alerts import announce, dag_callbacks, task_defaults
from nightshift.airflow.assets import predictions_asset, retrain_request_asset
from nightshift.airflow.dbt_tasks import dbt_task_group
from nightshift.airflow.guards import dag_start, start_date_guard
from nightshift.monitoring.run import config_of
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases

# Parse-time work is reading the small use-case files and the dbt manifest (built by `make`).
SETTINGS = Settings.from_env()
USE_CASES = load_use_cases(SETTINGS.config_dir)

for use_case_name, use_case in USE_CASES.items():
    # a malformed `monitoring:` block is an import error naming the file and the key (small, no I/O)
    config_of(use_case)
    with DAG(
        dag_id=f"monitor_{use_case_name}",
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), assets=predictions_asset(use_case_name)
        ),
        start_date=dag_start(use_case.start_date),
        catchup=False,
        # days in order: a request on D is what suppresses D + 1's (debounce)
        max_active_runs=1,
        **dag_callbacks(),
        default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=2), **task_defaults()},
        tags=["nightshift", "monitor", use_case_name],
        doc_md=__doc__.replace("`<use case>`", f"`{use_case_name}`", 1),
        params={
            "run_checks": Param(True, type="boolean",
                                description="run the dbt tests of the monitoring tables after writing (a long "
                                            "series of runs can skip them on all but its last day)"),
        },
    ):

        @task
        def days_to_monitor(name: str, ds: str | None = None, triggering_asset_events: dict | None = None,
                            dag_run=None) -> list[str]:  # noqa: ANN001 - Airflow's DagRun
            """The days the predictions events name, or the run's day."""
            from nightshift.airflow.messages import fail, skip

            from nightshift import days
            from nightshift.monitoring import run

            candidates = days.candidate_days(ds, triggering_asset_events, key="scoring_date")
            scheduled = str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "scheduled"
            try:
                chosen = run.days_to_monitor(Settings.from_env(), name, candidates, scheduled)
            except run.NothingToMonitor as exc:
                raise skip(str(exc)) from exc
            except run.DayNotScored as exc:
                raise fail(str(exc)) from exc
            return [d.isoformat() for d in chosen]

        @task
        def monitor(name: str, day_list: list[str], dag_run=None, ti=None) -> list[dict]:  # noqa: ANN001
            """Drift, performance and the decision of each day; the tables, the report."""
            from datetime import date

            from nightshift.monitoring import run

            backfill = str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "backfill"
            decisions = []
            for day in day_list:
                active = ti.get_dr_count(dag_id=f"retrain_{name}", states=["queued", "running"]) > 0
                decision = run.monitor_day(Settings.from_env(), name, date.fromisoformat(day), backfill=backfill,
                                           retrain_active=active)
                print(run.summary(decision))
                decisions.append(decision)
            return decisions

        @task(outlets=[retrain_request_asset(use_case_name)], multiple_outputs=False)
        def request_retrain(name: str, decisions: list[dict], outlet_events: dict | None = None) -> dict:
            """Emit `retrain-request/<use case>` with the reasons; skipped when no day asked for one."""
            from nightshift.airflow.messages import skip

            from nightshift.monitoring import run

            request = run.first_request(decisions)
            if request is None:
                raise skip("no retrain requested: " + "; ".join(run.summary(d) for d in decisions))
            outlet_events[retrain_request_asset(name)].extra = run.request_extra(request)
            announce("retrain_requested", f"{name}: {run.summary(request)}")
            return request

        decided = monitor(use_case_name, days_to_monitor(use_case_name))
        request_retrain(use_case_name, decided)
        # the dbt source tests of the three tables (dbt/models/staging/_monitoring_sources.yml)
        @task.short_circuit
        def checks_wanted(params: dict | None = None) -> bool:
            """Skip the dbt tests when the run's `run_checks` param is false."""
            return bool((params or {}).get("run_checks", True))

        decided >> checks_wanted() >> dbt_task_group("checks", SETTINGS, select=["tag:monitoring"], source_tests=True)
        start_date_guard(f"monitor_{use_case_name}", [use_case_name])
