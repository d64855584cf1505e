"""``make demo``: land demo data for both use cases and build their history with Airflow's scheduler.

Steps (the README's "What the demo does" tells the story; a second ``make demo`` only prints):

1. generate the demo landing zone for churn (customers, activity, cancellations) and demand
   (stores, products, sales), deterministic; redone only if a spec changed;
2. create Airflow's SQLite metadata DB in ``state/airflow`` (WAL, writers wait for the lock);
3. start the API server alone and create the backfills through its REST API (ingest: every demo
   day; score and monitor: ``CHAMPION_DAY`` to the day before the last), then the DAG processor
   and the scheduler (LocalExecutor, no runs of its own), all by ``nightshift.airflow.local``;
4. unpause the stages one after the other, each paused again when its runs have finished:
   ingest (the corrupt 2026-01-20 activity batch fails; the fixed file lands and the task is
   cleared: try 2 succeeds), features for the last day, the first champions as of
   ``CHAMPION_DAY``, score (the backfill, then the last night with marts and tests) and monitor
   (the backfill beside the last night's score, then the last night with its checks);
5. restart the scheduler with its own scheduling on and only ``retrain_churn`` unpaused: it runs
   the retrain churn's drift request queued; pause every DAG, stop every process;
6. print where to look: the reports, the drift table, the promotion history.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse

from nightshift.airflow.local import AirflowApi, DagRun, LocalAirflow, local_airflow
from nightshift.airflow.runs import airflow_cli, airflow_environment, ensure_metadata_db, ingest_dag_ids
from nightshift.demo import demand_data
from nightshift.demo.churn_data import DatagenSpec, batch_file_name, generate, write_landing
from nightshift.landing import Landing
from nightshift.modeling import registry
from nightshift.settings import Settings
from nightshift.warehouse import VALIDATION_RUNS, Warehouse

DEMO_SPEC = DatagenSpec(
    customers=2000,
    start=date(2026, 1, 1),
    days=128,  # .. 2026-05-08
    seed=7,
    # ten stable nights after the first champion (2026-04-26), then the drift, then two more nights
    covariate_drift_start=date(2026, 5, 6),
    covariate_session_keep=0.3,
    concept_drift_start=None,
    bad_rates={
        "null_required": 0.002,
        "out_of_range": 0.002,
        "unknown_category": 0.002,
        "duplicate_key": 0.001,
        "bad_event_time": 0.001,
        "uncoercible": 0.001,
    },
    broken_day=date(2026, 1, 20),
    broken_source="activity",
)


#: The second use case: units sold per store x product over the next 7 days.
DEMAND_SPEC = demand_data.DemandSpec(start=date(2026, 1, 1), days=128, seed=11)

#: The first champions are trained as of this day (churn: the labels known by then cover about 82
#: population days, enough for two purged 30-day gaps); every night from then on is scored.
CHAMPION_DAY = date(2026, 4, 26)
USE_CASES = ("churn", "demand")


def _spec_fingerprint(spec: object) -> str:
    return hashlib.sha256(json.dumps(asdict(spec), default=str, sort_keys=True).encode()).hexdigest()[:16]


def land_demo_data(settings: Settings, spec: DatagenSpec, demand: demand_data.DemandSpec) -> None:
    """Write the demo landing zone unless these exact specs were already written there."""
    marker = settings.home / "demo-landing.spec"
    fingerprint = _spec_fingerprint(spec) + _spec_fingerprint(demand)
    if marker.exists() and marker.read_text() == fingerprint:
        print(f"demo data: already landed in {settings.landing_uri}")
        return
    written = write_landing(spec, settings.landing_uri) + demand_data.write_landing(demand, settings.landing_uri)
    settings.home.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint)
    print(f"demo data: landed {len(written)} files in {settings.landing_uri}")


def land_fixed_file(settings: Settings, spec: DatagenSpec) -> None:
    """Replace the deliberately corrupt file with its clean version, as an upstream fix would."""
    assert spec.broken_day is not None
    clean = replace(spec, broken_day=None, days=(spec.broken_day - spec.start).days + 1)
    for day, source, data in generate(clean):
        if day == spec.broken_day and source == spec.broken_source:
            Landing(settings.landing_uri).write_bytes(source, day, batch_file_name(source, day), data)
            return


def main() -> int:
    """Run the demo end to end and print where to look."""
    settings = Settings.from_env()
    spec = DEMO_SPEC
    land_demo_data(settings, spec, DEMAND_SPEC)

    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or settings.home / "airflow")
    env = airflow_environment(airflow_home)
    ensure_metadata_db(env)

    done = settings.home / "demo-history.done"
    fingerprint = _spec_fingerprint(spec) + _spec_fingerprint(DEMAND_SPEC) + str(airflow_home)
    if done.exists() and done.read_text() == fingerprint and (airflow_home / "airflow.db").exists():
        print(f"demo history: already built by the scheduler in {airflow_home / 'airflow.db'}")
    else:
        if build_history(settings, spec, env, airflow_home) != 0:
            return 1
        done.write_text(fingerprint)

    client = registry.connect(settings)
    runs = Warehouse.from_uri(settings.warehouse_uri).read(VALIDATION_RUNS)
    totals = runs.groupby("source")[["landed_rows", "accepted_rows", "quarantined_rows"]].sum()
    print("\nDemo done. Rows per source over the demo range:")
    print(totals.to_string())
    print(f"\n  Airflow UI:   make airflow   (metadata DB: {airflow_home / 'airflow.db'})")
    print(f"  Warehouse:    {settings.warehouse_uri}")
    print(f"  Landing zone: {settings.landing_uri}")
    print(f"  MLflow UI:    make mlflow   (tracking store: {settings.mlflow_uri})")
    for use_case in USE_CASES:
        champion = registry.champion_version(client, use_case)
        metrics = client.get_run(champion.run_id).data.metrics
        shown = ", ".join(f"{name} {metrics[f'holdout.{name}']:.3f}" for name in ("auc", "pr_auc", "brier", "rmse", "mae", "bias")
                          if f"holdout.{name}" in metrics)
        print(f"  {use_case}: models:/{use_case}@champion = version {champion.version} (holdout {shown}; "
              f"{int(metrics.get('training.rows', 0))} training rows); promotions: "
              f".venv/bin/nightshift promotions --use-case {use_case}")
    print_monitoring(settings)
    if settings.profile == "embedded":
        db = urlparse(settings.warehouse_uri).path
        print(f"  Tonight's churn scores (what an analyst runs):\n    .venv/bin/python -c \"import duckdb; "
              f"print(duckdb.connect('{db}', read_only=True).sql('select band, count(*) customers, "
              "round(avg(score), 3) mean_score from marts.churn_predictions_latest group by 1 order by 3 desc'))\"")
        print(f"  Tonight's demand forecasts:\n    .venv/bin/python -c \"import duckdb; "
              f"print(duckdb.connect('{db}', read_only=True).sql('select store_id, product_id, round(score, 1) "
              "units_next_7d from marts.demand_predictions_latest order by score desc limit 10'))\"")
        print("  dbt docs:     make dbt-docs")
        print(f"  Online store:   {settings.home / 'feast' / 'online_store.db'} (Feast registry: "
              f"{settings.home / 'feast' / 'registry.db'})")
    return 0


#: The demo's scheduler on two cores: the libraries tasks use imported once before LocalExecutor forks
#: (nightshift.airflow.preload), as many tasks at once as keep the cores busy while others wait on the
#: API, and a short nap between loops (the demo's runs are chains of short tasks: a task waits for a
#: loop to be scheduled).
SCHEDULER = {"NIGHTSHIFT_PRELOAD": "1", "AIRFLOW__CORE__PARALLELISM": "8",
             "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25"}


def _failed(runs: list[DagRun]) -> list[str]:
    return [f"{r.dag_id} {r.day}" for r in runs if r.state != "success"]


def _stop(phase: str, runs: list[DagRun], logs: Path) -> int:
    print(f"{phase} failed for {_failed(runs)}: see each run's log and its Nightshift tab with `make airflow`, "
          f"and the scheduler's log in {logs}")
    return 1


def build_history(settings: Settings, spec: DatagenSpec, env: dict[str, str], airflow_home: Path) -> int:
    """Every demo run, made by Airflow's scheduler (LocalExecutor) from backfills and triggers.

    The backfills are created before the first scheduler starts (SQLite, see ``nightshift.airflow.local``);
    a DAG's runs start when the demo unpauses it, stage after stage. The scheduler makes no runs of its
    own (``use_job_schedule`` off) until the last stage, where it runs the retrain that churn's drift
    request queued, with only ``retrain_churn`` unpaused. Every DAG is paused again at the end, also
    when a stage fails: a DAG the user has not enabled stays paused after the demo.
    """
    ingest = ingest_dag_ids(settings.config_dir)
    family = {name: [f"{name}_{use_case}" for use_case in USE_CASES] for name in ("features", "retrain", "score", "monitor")}
    every_dag = ingest + [dag_id for dag_ids in family.values() for dag_id in dag_ids]
    logs = airflow_home / "demo-logs"
    airflow_cli(env, "dags", "reserialize")
    with local_airflow(env, logs) as airflow:
        airflow.api.set_paused(every_dag, True)
        try:
            _create_backfills(airflow.api, ingest, spec)
            airflow.start_scheduler({"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", **SCHEDULER})
            return _run_stages(airflow, settings, spec, ingest, family, logs)
        finally:
            airflow.api.set_paused(every_dag, True)


def _create_backfills(api: AirflowApi, ingest: list[str], spec: DatagenSpec) -> None:
    """Ingest over every demo day; score and monitor from ``CHAMPION_DAY`` to the day before the last."""
    last_day = spec.end
    print(f"backfills: {len(ingest)} ingest DAGs x {spec.days} days; score and monitor "
          f"{CHAMPION_DAY} .. {last_day - timedelta(days=1)} (the last night is its own run)")
    for dag_id in ingest:
        api.create_backfill(dag_id, spec.start, spec.end, max_active_runs=4)
    for use_case in USE_CASES:
        # marts and dbt tests are rebuilt whole: only on the last night
        api.create_backfill(f"score_{use_case}", CHAMPION_DAY, last_day - timedelta(days=1),
                            conf={"build_marts": False}, max_active_runs=2)
        # monitoring's nights in order, as the DAG requires
        api.create_backfill(f"monitor_{use_case}", CHAMPION_DAY, last_day - timedelta(days=1),
                            conf={"run_checks": False}, max_active_runs=1)


def _run_stages(airflow: LocalAirflow, settings: Settings, spec: DatagenSpec, ingest: list[str],
                family: dict[str, list[str]], logs: Path) -> int:
    """Unpause each stage in turn and wait for its runs; 0 when every run succeeded."""
    api = airflow.api
    last_day, nights = spec.end, (spec.end - CHAMPION_DAY).days + 1
    print(f"ingest: the scheduler runs {len(ingest) * spec.days} backfill runs ({spec.start} .. {spec.end})")
    api.set_paused(ingest, False)
    runs = api.wait("the ingest backfills", ingest, len(ingest) * spec.days, timeout=3600)
    broken = [r for r in runs if r.dag_id == f"ingest_{spec.broken_source}" and r.day == spec.broken_day]
    if broken and broken[0].state == "failed":
        print(f"ingest {spec.broken_day}: failed as intended (corrupt {spec.broken_source} file); landing the "
              "fixed file and clearing validate_and_load: the scheduler runs it again as try 2")
        land_fixed_file(settings, spec)
        api.clear_task(broken[0].dag_id, broken[0].run_id, "validate_and_load")
        runs = api.wait("the cleared ingest run", ingest, len(ingest) * spec.days, timeout=600)
    if _failed(runs):
        return _stop("ingest", runs, logs)
    api.set_paused(ingest, True)

    print(f"features: dbt, feast apply, materialization and the skew check for {last_day}")
    for dag_id in family["features"]:
        api.trigger(dag_id, last_day)
    api.set_paused(family["features"], False)
    if _failed(runs := api.wait("the features runs", family["features"], len(USE_CASES), timeout=1800)):
        return _stop("features", runs, logs)
    api.set_paused(family["features"], True)

    print(f"retrain: the first champions, trained as of {CHAMPION_DAY}")
    # the first use creates MLflow's SQLite store: once, here, not by two training tasks at once
    client = registry.connect(settings)
    for dag_id in family["retrain"]:
        api.trigger(dag_id, CHAMPION_DAY)
    api.set_paused(family["retrain"], False)
    if _failed(runs := api.wait("the first retrain runs", family["retrain"], len(USE_CASES), timeout=1800)):
        return _stop("retrain", runs, logs)
    # monitoring's drift request queues a retrain only for an unpaused DAG (churn has no weekly cron)
    api.set_paused([d for d in family["retrain"] if d != "retrain_churn"], True)
    if missing := [u for u in USE_CASES if registry.champion_version(client, u) is None]:
        print(f"retrain: the first challenger of {missing} did not pass the gate; see its report in the "
              "retrain run's Nightshift tab")
        return 1

    print(f"score: {nights} nightly runs per use case ({CHAMPION_DAY} .. {last_day}); build marts on the last")
    api.set_paused(family["score"], False)
    api.wait("the score backfills", family["score"], len(USE_CASES) * (nights - 1), timeout=1800)
    for dag_id in family["score"]:
        api.trigger(dag_id, last_day)
    # monitoring's backfill nights read scores that are published now: it runs beside the last night's score
    print(f"monitor: {nights} nightly runs per use case ({CHAMPION_DAY} .. {last_day}), the backfill beside "
          "the last night's score; run checks on the last")
    api.set_paused(family["monitor"], False)
    if _failed(runs := api.wait("the last night's score runs", family["score"], len(USE_CASES) * nights,
                                timeout=1800)):
        return _stop("score", runs, logs)
    api.set_paused(family["score"], True)
    api.wait("the monitor backfills", family["monitor"], len(USE_CASES) * (nights - 1), timeout=1800)
    for dag_id in family["monitor"]:
        api.trigger(dag_id, last_day)
    if _failed(runs := api.wait("the last night's monitor runs", family["monitor"], len(USE_CASES) * nights,
                                timeout=1800)):
        return _stop("monitor", runs, logs)
    api.set_paused(family["monitor"], True)

    requested = _drift_requested(settings)
    if not requested:
        print("monitor_churn requested no retrain: the drift was not detected (see monitoring.drift_daily)")
        return 1
    print(f"retrain_churn: monitoring requested a retrain for {requested}; the scheduler now makes its "
          "own runs, with only retrain_churn unpaused, and runs the retrain the request queued")
    airflow.stop("scheduler")
    airflow.start_scheduler(SCHEDULER)
    if _failed(runs := api.wait("the drift-triggered retrain_churn run", ["retrain_churn"], 2, timeout=1800)):
        return _stop("retrain_churn (drift)", runs, logs)
    return 0


def _drift_requested(settings: Settings) -> list[str]:
    """The nights on which churn's monitoring requested a retrain."""
    requests = Warehouse.from_uri(settings.warehouse_uri, read_only=True).read("monitoring.retrain_requests")
    asked = requests[(requests["use_case"] == "churn") & (requests["decision"] == "requested")]
    return sorted(str(day)[:10] for day in asked["monitor_date"])


def print_monitoring(settings: Settings) -> None:
    """The drift story: per night, what drifted and what was decided; the reports; the promotions."""
    import pandas as pd

    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    nights = {"monitor_date": lambda frame: pd.to_datetime(frame["monitor_date"]).dt.date}
    drift = warehouse.read("monitoring.drift_daily").assign(**nights)
    decisions = warehouse.read("monitoring.retrain_requests").assign(**nights)
    for use_case in USE_CASES:
        mine = drift[drift["use_case"] == use_case]
        features = mine[mine["kind"] == "feature"].groupby("monitor_date")
        summary = pd.DataFrame({
            "drifted_features": features["drifted"].sum().astype(int),
            "features": features.size(),
            "prediction_drift": mine[mine["kind"] == "prediction"].set_index("monitor_date")["drifted"],
        }).join(decisions[decisions["use_case"] == use_case].set_index("monitor_date")[["decision", "suppressed_by"]])
        print(f"\nMonitoring of {use_case} (monitoring.drift_daily and monitoring.retrain_requests), per night:")
        print(summary.sort_index().to_string())
        requested = summary[summary["decision"] == "requested"]
        for night in requested.index:
            reasons = decisions[(decisions["use_case"] == use_case) & (decisions["monitor_date"] == night)]["reasons"]
            print(f"  {night}: retrain requested: {reasons.iloc[0]}")
        last = max(summary.index) if len(summary) else None
        for night in [*requested.index, last]:
            if night is not None:
                print(f"  report {night}: {settings.artifacts_uri}/monitoring/{use_case}/{night}/drift_report.html")
        trail = registry.audit_trail(settings, use_case)
        if len(trail):
            columns = [c for c in ("recorded_at", "action", "from_version", "to_version", "trigger", "gate_verdict",
                                   "trigger_reasons") if c in trail.columns]
            print(f"  promotion history of {use_case} (meta.model_promotions):")
            print(trail[columns].to_string(index=False, max_colwidth=90))
