"""The ingest and features DAGs under the real scheduler and LocalExecutor (`airflow standalone`),
where tasks of several days and sources run in parallel processes and share the warehouse.

A backfill of four days of each churn source's `ingest_<source>` DAG is created with `airflow
backfill create`, exactly as a user would; the Assets they emit trigger `features_churn` runs (dbt through Cosmos in the `dbt` pool, Feast,
the skew check), which must all succeed alongside it.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from nightshift.demo.churn_data import DatagenSpec, write_landing
from nightshift.warehouse import FEATURE_SKEW, VALIDATION_RUNS, Warehouse
from tests.conftest import AirflowHarness, airflow_cli, airflow_standalone, create_backfill, wait_until

pytestmark = pytest.mark.e2e
START, END = date(2026, 1, 1), date(2026, 1, 4)
INGEST = ("ingest_customers", "ingest_activity", "ingest_cancellations")


def _backfill_states(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db, timeout=30) as con:
        rows = con.execute("select logical_date, state from dag_run where run_type = 'backfill' order by logical_date").fetchall()
    return [(str(d)[:10], s) for d, s in rows]


def _triggered_states(db: Path, dag_id: str) -> list[str]:
    with sqlite3.connect(db, timeout=30) as con:
        rows = con.execute("select state from dag_run where dag_id = ? and run_type = 'asset_triggered' order by id", (dag_id,))
        return [state for (state,) in rows.fetchall()]


def test_backfill_under_standalone_runs_tasks_in_parallel_without_collisions(airflow_harness: AirflowHarness) -> None:
    write_landing(DatagenSpec(customers=150, start=START, days=4, seed=9, bad_rates={"out_of_range": 0.02}), airflow_harness.settings.landing_uri)
    # backfills are created before the scheduler starts: on SQLite, Airflow deletes the runs of a backfill whose
    # creation hit a locked DB, and a scheduler that already picked them up crashes (README, "Backfills on SQLite")
    airflow_cli(airflow_harness.env, "dags", "reserialize")
    for dag_id in (*INGEST, "features_churn"):
        airflow_cli(airflow_harness.env, "dags", "unpause", dag_id)
    for dag_id in INGEST:
        create_backfill(airflow_harness.env, dag_id, START, END, "--max-active-runs", "4", "--run-on-latest-version")
    with airflow_standalone(airflow_harness):
        db = airflow_harness.home / "airflow" / "airflow.db"
        states = wait_until("the 12 ingest backfill runs to finish", lambda: _backfill_states(db),
                            lambda seen: len(seen) == 12 and all(s in ("success", "failed") for _, s in seen), timeout=420)
        assert states == [(f"2026-01-0{i}", "success") for i in range(1, 5) for _ in INGEST]
        # the raw/<source> Assets trigger features runs; wait until none is queued or running
        features_states = wait_until(
            "the asset-triggered features_churn runs to finish", lambda: _triggered_states(db, "features_churn"),
            lambda seen: bool(seen) and all(s in ("success", "failed") for s in seen), timeout=480)
        assert set(features_states) == {"success"}, f"features runs: {features_states}"

    runs = Warehouse.from_uri(airflow_harness.settings.warehouse_uri).read(VALIDATION_RUNS)
    assert len(runs) == 12, "three sources x four days, each written once"
    assert (runs["accepted_rows"] + runs["quarantined_rows"] == runs["landed_rows"]).all()
    skew = Warehouse.from_uri(airflow_harness.settings.warehouse_uri).read(FEATURE_SKEW)
    assert len(skew) and (skew["mismatches"] == 0).all(), "every triggered features run checked skew and found none"
