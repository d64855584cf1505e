"""The retrain, rollback and score DAGs through Airflow: from an empty MLflow registry (SQLite
backend) to a champion, a second promotion and a rollback with params; then nightly scoring with
its marts, and a backfill under the real scheduler that must equal the nightly result.

The history (120 days, 400 customers: the purged splits need two 30-day gaps and the labels 32
days to land) is landed, ingested and featurized by the library (the
ingest and features DAGs have their own end-to-end tests); the tests here run in file order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from nightshift.modeling import registry, retrain
from nightshift.demo.churn_data import DatagenSpec
from nightshift.warehouse import predictions_table
from tests.conftest import AirflowHarness, airflow_cli, airflow_standalone, create_backfill, wait_until
from tests.unit.test_features import World, build_world

pytestmark = pytest.mark.e2e
START = date(2026, 1, 1)
DAYS = 120
RUN_DATE = START + timedelta(days=DAYS - 1)  # 2026-04-30, the last ingested day: labels known through 2026-03-28


@pytest.fixture(scope="module")
def history(airflow_harness: AirflowHarness) -> Iterator[World]:
    spec = DatagenSpec(customers=400, start=START, days=DAYS, seed=11)
    yield from build_world(Path(airflow_harness.env["NIGHTSHIFT_HOME"]).parent, spec=spec)


def test_retrain_from_an_empty_registry_to_a_champion_then_rollback(
    airflow_harness: AirflowHarness, history: World
) -> None:
    settings = history.settings
    assert airflow_harness.run("retrain_churn", RUN_DATE) == {RUN_DATE: "success"}, airflow_harness.outputs[-1][-4000:]

    client = registry.connect(settings)
    first = registry.champion_version(client, "churn")
    assert first is not None and str(first.version) == "1"
    assert first.tags["gate"] == "passed" and first.tags["feature_service"] == "churn_v1"
    assert first.tags["trigger"] == "manual" and first.tags["training_window"] == "2026-01-08..2026-03-28"
    run = client.get_run(first.run_id)
    assert run.data.metrics["holdout.auc"] >= 0.6, "the floor of config/churn.yaml, on a purged holdout"
    assert {"holdout.region.north.auc", "holdout.plan.basic.auc", "holdout.pr_auc", "holdout.brier"} <= set(run.data.metrics)
    artifacts = {a.path for folder in ("gate", "plots", "reference", "evaluation") for a in client.list_artifacts(first.run_id, folder)}
    assert artifacts >= {retrain.GATE_JSON, retrain.GATE_MARKDOWN, retrain.REFERENCE_ARTIFACT, retrain.HOLDOUT_ARTIFACT,
                         "plots/roc.png", "plots/calibration.png", "plots/importance.png"}
    reference = retrain.load_frame(first.run_id, retrain.REFERENCE_ARTIFACT)
    assert set(reference["part"]) == {"train", "holdout"} and reference.loc[reference["part"] == "holdout", "score"].notna().all()

    trail = registry.audit_trail(settings, "churn")
    assert trail[["action", "to_version"]].values.tolist() == [["promoted", "1"]]
    assert trail.loc[0, "airflow_run_id"].startswith("manual__") and trail.loc[0, "mlflow_run_id"] == first.run_id

    # the same data again: no worse on any check (min_improvement 0), so version 2 is promoted
    assert airflow_harness.run("retrain_churn", RUN_DATE) == {RUN_DATE: "success"}
    assert str(registry.champion_version(client, "churn").version) == "2"

    conf = {"use_case": "churn", "to": "previous", "reason": "e2e rollback", "force": False}
    assert airflow_harness.run("rollback", RUN_DATE, conf=conf) == {RUN_DATE: "success"}, airflow_harness.outputs[-1][-3000:]
    assert str(registry.champion_version(client, "churn").version) == "1"
    last = registry.audit_trail(settings, "churn").iloc[-1]
    assert (last["action"], last["from_version"], last["to_version"], last["reason"]) == ("rolled_back", "2", "1", "e2e rollback")
    assert last["airflow_run_id"].startswith("manual__")


# two consecutive days (one backfill covers both) whose labels the label model has, and RUN_DATE
BACKFILLED_DAYS = [date(2026, 3, 28), date(2026, 3, 29)]
SCORED_DAYS = [*BACKFILLED_DAYS, RUN_DATE]
LINEAGE = ["scored_at", "airflow_run_id"]


def predictions(world: World, day: date):
    frame = world.warehouse.read(predictions_table("churn"), {"scoring_date": day})
    return frame.sort_values("customer_id", ignore_index=True)


def backfill_states(db: Path) -> list[str]:
    """The state of each backfill run of score_churn in Airflow's metadata DB."""
    with sqlite3.connect(db, timeout=30) as con:
        return [s for (s,) in con.execute(
            "select state from dag_run where dag_id = 'score_churn' and run_type = 'backfill' order by logical_date")]


def test_nightly_scoring_marts_and_a_backfill_equal_to_it(airflow_harness: AirflowHarness, history: World) -> None:
    # first a backfill of two days under the real scheduler and LocalExecutor, as a user would make it
    db = airflow_harness.home / "airflow" / "airflow.db"
    # backfills are created before the scheduler starts: on SQLite, Airflow deletes the runs of a backfill whose
    # creation hit a locked DB, and a scheduler that already picked them up crashes (README, "Backfills on SQLite")
    airflow_cli(airflow_harness.env, "dags", "reserialize")
    # unpaused, its daily interval also starts a scheduled run for yesterday, which skips: no features
    airflow_cli(airflow_harness.env, "dags", "unpause", "score_churn")
    create_backfill(airflow_harness.env, "score_churn", BACKFILLED_DAYS[0], BACKFILLED_DAYS[-1],
                    "--run-on-latest-version")
    with airflow_standalone(airflow_harness):
        states = wait_until("the two backfill runs of score_churn to finish", lambda: backfill_states(db),
                            lambda seen: len(seen) == 2 and all(s in ("success", "failed") for s in seen), timeout=600)
        assert states == ["success", "success"], open(airflow_harness.home / "standalone.log").read()[-3000:]
    backfilled = {day: predictions(history, day) for day in BACKFILLED_DAYS}
    for day, frame in backfilled.items():
        assert len(frame) == len(history.warehouse.read_range("populations.churn_population", "as_of_date", day, day))
        assert frame["airflow_run_id"].str.startswith("backfill__").all() and set(frame["model_version"]) == {"1"}

    # then the same days (and RUN_DATE) as nightly runs: the backfilled partitions are what nightly writes
    for day in SCORED_DAYS:
        assert airflow_harness.run("score_churn", day) == {day: "success"}, airflow_harness.outputs[-1][-4000:]
    for day in BACKFILLED_DAYS:
        nightly = predictions(history, day)
        assert nightly["airflow_run_id"].str.startswith("manual__").all()
        assert nightly.drop(columns=LINEAGE).equals(backfilled[day].drop(columns=LINEAGE))

    catalog = history.settings.warehouse_uri.removeprefix("duckdb://")
    with duckdb.connect(catalog, read_only=True) as con:
        latest = con.execute("select count(*), count(distinct customer_id) from marts.churn_predictions_latest").fetchone()
        performance = con.execute(
            "select scoring_date, scored, labelled, realized_auc from marts.churn_model_performance_daily"
        ).fetchall()
    assert latest[0] == latest[1] > 0
    # the outcomes of 2026-03-28 and -29 have landed (through 2026-04-30, +32 days); those of RUN_DATE have not
    assert sorted(row[0] for row in performance) == BACKFILLED_DAYS
    for day, scored, labelled, auc in performance:
        assert scored == labelled == len(backfilled[day]) and 0.5 < auc <= 1.0, "better than chance on a real day"

    with sqlite3.connect(db) as con:
        extras = [json.loads(e) for (e,) in con.execute(
            "select asset_event.extra from asset_event join asset on asset.id = asset_event.asset_id "
            "where asset.uri = 'predictions/churn' order by asset_event.id").fetchall()]
    # the backfill's events say so (monitoring never retrains on them); the nightly ones do not
    assert [e["backfill"] for e in extras] == [True, True, False, False, False]
    assert sorted(e["scoring_date"] for e in extras[:2]) == [d.isoformat() for d in BACKFILLED_DAYS]
    assert [e["scoring_date"] for e in extras[2:]] == [d.isoformat() for d in SCORED_DAYS]
