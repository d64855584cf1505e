"""``make demo``: land demo data and run every DAG through Airflow for the demo range.

Steps, each skipped when already done (so a second ``make demo`` is quick):

1. generate the demo landing zone (deterministic; redone only if the spec changed);
2. create Airflow's SQLite metadata DB in ``state/airflow``;
3. run ``ingest`` for every demo day as a real DAG run. One day has a corrupt file on
   purpose: its run fails with a message naming the file, then the demo lands the fixed
   file and re-runs that day, which succeeds;
4. run ``features`` for the last demo day: dbt rebuilds every day's feature rows, Feast
   applies the definitions and materializes the online store, the skew check compares
   online and offline values;
5. run ``retrain_churn`` as of ``CHAMPION_DAY``: the first challenger is trained on every
   snapshot whose 30-day outcome had closed by then, passes the gate's floors and becomes the
   ``champion`` in the MLflow registry (skipped when a champion already exists);
6. run ``score_churn`` for every night from ``CHAMPION_DAY`` to the end of the range, the marts
   rebuilt on the last night (nights already scored are skipped);
7. print where to look.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse

from nightshift.demo.churn_data import DatagenSpec, batch_file_name, generate, write_landing
from nightshift.modeling import registry
from nightshift.landing import Landing
from nightshift.airflow.runs import airflow_environment, ensure_metadata_db
from nightshift.settings import Settings
from nightshift.warehouse import VALIDATION_RUNS, Warehouse

DEMO_SPEC = DatagenSpec(
    customers=2000,
    start=date(2026, 1, 1),
    days=60,
    seed=7,
    covariate_drift_start=date(2026, 2, 15),
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


#: The demo's first champion is trained as of this day (snapshots up to 30 days earlier are
#: labelled); every night from then on is scored.
CHAMPION_DAY = date(2026, 2, 19)


def _spec_fingerprint(spec: DatagenSpec) -> str:
    return hashlib.sha256(json.dumps(asdict(spec), default=str, sort_keys=True).encode()).hexdigest()[:16]


def land_demo_data(settings: Settings, spec: DatagenSpec) -> None:
    """Write the demo landing zone unless this exact spec was already written there."""
    marker = settings.home / "demo-landing.spec"
    fingerprint = _spec_fingerprint(spec)
    if marker.exists() and marker.read_text() == fingerprint:
        print(f"demo data: already landed in {settings.landing_uri}")
        return
    written = write_landing(spec, settings.landing_uri)
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


def _run(dag_id: str, start: date, days: int, env: dict[str, str], rerun: bool = False,
         conf: dict | None = None) -> dict[date, str]:
    cmd = [sys.executable, "-m", "nightshift.airflow.runs", dag_id, "--start", start.isoformat(), "--days", str(days)]
    cmd += ["--rerun"] if rerun else []
    cmd += ["--conf", json.dumps(conf)] if conf is not None else []
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    states = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RUN "):
            _, _, day, state, *_ = line.split()
            states[date.fromisoformat(day)] = state
    if not states:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"running {dag_id} through Airflow failed before any run (exit {proc.returncode})")
    return states


def main() -> int:
    """Run the demo end to end and print where to look."""
    settings = Settings.from_env()
    spec = DEMO_SPEC
    land_demo_data(settings, spec)

    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or settings.home / "airflow")
    env = airflow_environment(airflow_home)
    ensure_metadata_db(env)

    print(f"ingest: running {spec.days} daily DAG runs through Airflow ({spec.start} .. "
          f"{spec.start + timedelta(days=spec.days - 1)})")
    states = _run("ingest", spec.start, spec.days, env)
    failed = sorted(d for d, s in states.items() if s != "success")
    if spec.broken_day in failed:
        print(f"ingest {spec.broken_day}: failed as intended (corrupt {spec.broken_source} file); "
              "landing the fixed file and re-running that day")
        land_fixed_file(settings, spec)
        states.update(_run("ingest", spec.broken_day, 1, env, rerun=True))
        failed = sorted(d for d, s in states.items() if s != "success")
    if failed:
        print(f"ingest failed for {[str(d) for d in failed]}: see the run logs with `make airflow`")
        return 1

    last_day = spec.start + timedelta(days=spec.days - 1)
    print(f"features: dbt, feast apply, materialization and the skew check for {last_day}")
    if _run("features", last_day, 1, env) != {last_day: "success"}:
        print(f"features failed for {last_day}: see the run log with `make airflow`")
        return 1

    client = registry.connect(settings)
    if registry.champion_version(client, "churn") is None:
        print(f"retrain: training the first champion as of {CHAMPION_DAY}")
        if _run("retrain_churn", CHAMPION_DAY, 1, env, rerun=True) != {CHAMPION_DAY: "success"}:
            print("retrain failed: see the run log with `make airflow`")
            return 1
    champion = registry.champion_version(client, "churn")
    if champion is None:
        print("retrain: the first challenger did not pass the gate; see its report in MLflow (`make mlflow`)")
        return 1

    nights = (last_day - CHAMPION_DAY).days + 1
    print(f"score: {nights} nightly runs ({CHAMPION_DAY} .. {last_day}); marts on the last")
    scored = _run("score_churn", CHAMPION_DAY, nights - 1, env, conf={"build_marts": False}) if nights > 1 else {}
    scored.update(_run("score_churn", last_day, 1, env))
    failed = sorted(d for d, s in scored.items() if s != "success")
    if failed:
        print(f"score failed for {[str(d) for d in failed]}: see the run logs with `make airflow`")
        return 1

    runs = Warehouse.from_uri(settings.warehouse_uri).read(VALIDATION_RUNS)
    totals = runs.groupby("source")[["landed_rows", "accepted_rows", "quarantined_rows"]].sum()
    print("\nDemo done. Rows per source over the demo range:")
    print(totals.to_string())
    print(f"\n  Airflow UI:   make airflow   (metadata DB: {airflow_home / 'airflow.db'})")
    print(f"  Warehouse:    {settings.warehouse_uri}")
    if settings.profile == "embedded":
        db = urlparse(settings.warehouse_uri).path
        print(f"  Query it:     .venv/bin/python -c \"import duckdb; print(duckdb.connect('{db}', read_only=True)"
              ".sql('select source, sum(quarantined_rows) from meta.validation_runs group by 1'))\"")
    print(f"  Landing zone: {settings.landing_uri}")
    metrics = client.get_run(champion.run_id).data.metrics
    print(f"  Champion:     models:/churn@champion = version {champion.version} (holdout AUC "
          f"{metrics.get('holdout.auc', float('nan')):.3f}, PR-AUC {metrics.get('holdout.pr_auc', float('nan')):.3f}, "
          f"Brier {metrics.get('holdout.brier', float('nan')):.3f}; {int(metrics.get('training.rows', 0))} training rows)")
    print(f"  MLflow UI:    make mlflow   (tracking store: {settings.mlflow_uri})")
    print("  Promotions:   .venv/bin/nightshift promotions --use-case churn")
    if settings.profile == "embedded":
        db = urlparse(settings.warehouse_uri).path
        print(f"  Tonight's scores (what an analyst runs):\n    .venv/bin/python -c \"import duckdb; "
              f"print(duckdb.connect('{db}', read_only=True).sql('select band, count(*) customers, "
              "round(avg(score), 3) mean_score from marts.predictions_latest group by 1 order by 3 desc'))\"")
        print("  dbt docs:     make dbt-docs")
    if settings.profile == "embedded":
        print(f"  Feature tables: {settings.warehouse_dir / 'tables' / 'features'}/<model>/part.parquet "
              "(views features.customer_activity_daily, features.customer_profile_daily)")
        print(f"  Online store:   {settings.home / 'feast' / 'online_store.db'} (Feast registry: "
              f"{settings.home / 'feast' / 'registry.db'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
