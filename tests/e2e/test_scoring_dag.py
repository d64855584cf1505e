"""The `score_churn` DAG through Airflow (`dag.test`, a real metadata DB) on a small real world: the
days_to_score sensor, one plan per day, shards mapped per day and shard, one publish per day, marts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightshift.warehouse import predictions_table, scoring_staging_tables
from tests.conftest import AirflowHarness
from tests.unit.test_features import LAST, World, build_world, customers_on
from tests.unit.test_scoring import register_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(airflow_harness: AirflowHarness) -> Iterator[World]:
    yield from build_world(Path(airflow_harness.env["NIGHTSHIFT_HOME"]).parent)


def test_a_manual_run_scores_its_day_and_leaves_no_staging(airflow_harness: AirflowHarness, world: World) -> None:
    version = register_model(world.settings, "champion")
    assert airflow_harness.run("score_churn", LAST) == {LAST: "success"}, airflow_harness.outputs[-1][-4000:]
    scores = world.warehouse.read(predictions_table("churn"), {"scoring_date": LAST})
    assert sorted(scores["customer_id"]) == customers_on(world, LAST)
    assert scores["airflow_run_id"].str.startswith("manual__").all() and set(scores["model_version"]) == {version}
    staging = [world.warehouse.read(table) for table in scoring_staging_tables("churn")
               if table in world.warehouse.tables()]
    assert all(frame.empty for frame in staging), "the run's staged shards are dropped once published"
