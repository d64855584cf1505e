"""The retrain and rollback DAGs through Airflow, from an empty MLflow registry (SQLite backend)
to a champion, then a second promotion and a rollback with params.

The history (50 days, 400 customers) is landed, ingested and featurized by the library (the
ingest and features DAGs have their own end-to-end tests); only retrain and rollback run here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from nightshift import registry, retrain
from nightshift.datagen import DatagenSpec
from tests.conftest import AirflowHarness
from tests.unit.test_features import World, build_world

pytestmark = pytest.mark.e2e
START = date(2026, 1, 1)
RUN_DATE = date(2026, 2, 19)  # the last ingested day: snapshots up to 2026-01-20 have closed labels


@pytest.fixture(scope="module")
def history(airflow_harness: AirflowHarness) -> Iterator[World]:
    spec = DatagenSpec(customers=400, start=START, days=50, seed=11)
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
    assert first.tags["trigger"] == "manual" and first.tags["training_window"] == "2025-11-22..2026-01-20"
    run = client.get_run(first.run_id)
    assert run.data.metrics["holdout.auc"] >= 0.7
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
