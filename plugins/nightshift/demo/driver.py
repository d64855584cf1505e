"""``make demo``: land demo data for both use cases and run every DAG through Airflow.

Steps, each skipped when already done (so a second ``make demo`` is quick):

1. generate the demo landing zone for churn (customers, activity, cancellations) and demand
   (stores, products, sales), deterministic; redone only if a spec changed;
2. create Airflow's SQLite metadata DB in ``state/airflow``;
3. run every ``ingest_<source>`` DAG for every demo day as real DAG runs. One day has a corrupt
   activity file on purpose: its run fails with a message naming the file, then the demo lands
   the fixed file and re-runs that day, which succeeds;
4. run ``features_<use case>`` for the last demo day: dbt builds the use case's models (features,
   population, labels), Feast applies its definitions and materializes, the skew check runs;
5. run ``retrain_<use case>`` as of ``CHAMPION_DAY``: the first challenger, trained on the labels
   known by then with purged splits, passes the gate's floors and becomes ``champion``;
6. run ``score_<use case>`` for every night from ``CHAMPION_DAY`` to the end of the range, the
   marts rebuilt on the last night (nights already scored are skipped);
7. run ``monitor_<use case>`` for the same nights. Churn's covariate drift starts on
   ``DEMO_SPEC.covariate_drift_start`` (usage drops by 70 %, new signups come from ``east``): the
   nights before it request nothing, that night requests a retrain (``retrain-request/churn``),
   the nights after are suppressed (a request is pending);
8. start the real scheduler (``airflow standalone``) until it has run the retrain the request
   queued (``retrain_churn`` is unpaused first, so the request queues a run): trigger ``drift``,
   trained up to the drift night, judged by the gate;
9. print where to look: the reports, the drift table, the promotion history.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

from nightshift.airflow.runs import airflow_cli, airflow_environment, ensure_metadata_db, ingest_dag_ids, poll_until, standalone
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


def _run(dag_ids: str | list[str], start: date, days: int, env: dict[str, str], rerun: bool = False,
         conf: dict | None = None) -> dict[date, str]:
    """Run the DAG(s) for the days; a day's state is ``success`` only if every DAG's run succeeded."""
    dag_ids = [dag_ids] if isinstance(dag_ids, str) else dag_ids
    cmd = [sys.executable, "-m", "nightshift.airflow.runs", *dag_ids, "--start", start.isoformat(), "--days", str(days)]
    cmd += ["--rerun"] if rerun else []
    cmd += ["--conf", json.dumps(conf)] if conf is not None else []
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    states: dict[date, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RUN "):
            _, _, day, state, *_ = line.split()
            day = date.fromisoformat(day)
            states[day] = state if states.get(day, "success") == "success" else states[day]
    if not states:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"running {dag_ids} through Airflow failed before any run (exit {proc.returncode})")
    return states


def main() -> int:
    """Run the demo end to end and print where to look."""
    settings = Settings.from_env()
    spec = DEMO_SPEC
    land_demo_data(settings, spec, DEMAND_SPEC)

    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or settings.home / "airflow")
    env = airflow_environment(airflow_home)
    ensure_metadata_db(env)

    ingest = ingest_dag_ids(settings.config_dir)
    print(f"ingest: {len(ingest)} sources x {spec.days} daily DAG runs through Airflow ({spec.start} .. {spec.end})")
    states = _run(ingest, spec.start, spec.days, env)
    failed = sorted(d for d, s in states.items() if s != "success")
    if spec.broken_day in failed:
        print(f"ingest {spec.broken_day}: failed as intended (corrupt {spec.broken_source} file); "
              "landing the fixed file and re-running that day")
        land_fixed_file(settings, spec)
        states.update(_run(f"ingest_{spec.broken_source}", spec.broken_day, 1, env, rerun=True))
        failed = sorted(d for d, s in states.items() if s != "success")
    if failed:
        print(f"ingest failed for {[str(d) for d in failed]}: see the run logs with `make airflow`")
        return 1

    last_day = spec.end
    client = registry.connect(settings)
    for use_case in USE_CASES:
        print(f"features_{use_case}: dbt, feast apply, materialization and the skew check for {last_day}")
        if _run(f"features_{use_case}", last_day, 1, env) != {last_day: "success"}:
            print(f"features_{use_case} failed for {last_day}: see the run log with `make airflow`")
            return 1
        if registry.champion_version(client, use_case) is None:
            print(f"retrain_{use_case}: training the first champion as of {CHAMPION_DAY}")
            if _run(f"retrain_{use_case}", CHAMPION_DAY, 1, env, rerun=True) != {CHAMPION_DAY: "success"}:
                print(f"retrain_{use_case} failed: see the run log with `make airflow`")
                return 1
        if registry.champion_version(client, use_case) is None:
            print(f"retrain_{use_case}: the first challenger did not pass the gate; see its report in MLflow")
            return 1
        nights = (last_day - CHAMPION_DAY).days + 1
        print(f"score_{use_case}: {nights} nightly runs ({CHAMPION_DAY} .. {last_day}); marts on the last")
        scored = _run(f"score_{use_case}", CHAMPION_DAY, nights - 1, env, conf={"build_marts": False}) if nights > 1 else {}
        scored.update(_run(f"score_{use_case}", last_day, 1, env))
        failed = sorted(d for d, s in scored.items() if s != "success")
        if failed:
            print(f"score_{use_case} failed for {[str(d) for d in failed]}: see the run logs with `make airflow`")
            return 1

    # Monitoring's requests queue a retrain run only for an unpaused DAG (churn has no weekly cron).
    airflow_cli(env, "dags", "unpause", "retrain_churn")
    for use_case in USE_CASES:
        nights = (last_day - CHAMPION_DAY).days + 1
        print(f"monitor_{use_case}: {nights} nightly runs ({CHAMPION_DAY} .. {last_day}); dbt tests on the last")
        monitored = _run(f"monitor_{use_case}", CHAMPION_DAY, nights - 1, env, conf={"run_checks": False})
        monitored.update(_run(f"monitor_{use_case}", last_day, 1, env))
        failed = sorted(d for d, s in monitored.items() if s != "success")
        if failed:
            print(f"monitor_{use_case} failed for {[str(d) for d in failed]}: see the run logs with `make airflow`")
            return 1
    drift_retrain = _drift_retrain(settings, env, airflow_home)
    # the demo unpaused it for the drift request; a DAG the user has not enabled stays paused afterwards
    airflow_cli(env, "dags", "pause", "retrain_churn")
    if drift_retrain != 0:
        return 1

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


def _retrain_runs(airflow_home: Path) -> list[tuple[str, str]]:
    """(run type, state) of every ``retrain_churn`` run in Airflow's metadata DB."""
    import sqlite3

    with sqlite3.connect(airflow_home / "airflow.db", timeout=30) as con:
        return con.execute("select run_type, state from dag_run where dag_id = 'retrain_churn' order by id").fetchall()


def _drift_retrain(settings: Settings, env: dict[str, str], airflow_home: Path) -> int:
    """Run the scheduler until the retrain that churn's drift request queued has finished."""
    requests = Warehouse.from_uri(settings.warehouse_uri).read("monitoring.retrain_requests")
    asked = requests[(requests["use_case"] == "churn") & (requests["decision"] == "requested")]
    if asked.empty:
        print("monitor_churn requested no retrain: the drift was not detected (see monitoring.drift_daily)")
        return 1
    if any(kind == "asset_triggered" and state == "success" for kind, state in _retrain_runs(airflow_home)):
        print("retrain_churn: the drift request's retrain already ran")
        return 0
    print(f"retrain_churn: monitoring requested a retrain for {sorted(str(d)[:10] for d in asked['monitor_date'])}; starting "
          "the scheduler (airflow standalone) until it has run the retrain the request queued")
    with standalone(env, airflow_home / "standalone.log"):
        runs = poll_until("the drift-triggered retrain_churn run to finish", lambda: _retrain_runs(airflow_home),
                          lambda seen: any(k == "asset_triggered" and s in ("success", "failed") for k, s in seen),
                          timeout=1200, interval=5)
    if ("asset_triggered", "success") not in runs:
        print(f"retrain_churn failed: see {airflow_home / 'standalone.log'} and the run log with `make airflow`")
        return 1
    return 0


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
