"""A scoring publish killed inside the warehouse's publish step, through the real scoring code:
predictions.churn_daily and predictions.churn_errors of the day become visible together or not at
all (embedded profile).

Day D holds a previous run's scores and errors. A new run stages its shards in this process;
a spawned child runs that run's real :func:`nightshift.scoring.publish` and SIGKILLs itself after
the predictions file is renamed into place and before the errors file is (``between``), or just
before the group's manifest is renamed (``commit``).
"""

from __future__ import annotations

import signal
from typing import Any

import pandas as pd
import pytest

from nightshift import scoring
from nightshift.scoring import ScoringPlan
from nightshift.warehouse import Warehouse, prediction_errors_table, predictions_table
from tests.unit.test_features import LAST, World, customers_on
from tests.unit.test_ingest_publish_killed import (
    child_settings, in_catalog, on_disk, run_killed, settings_env, stop_inside_publish,
)
from tests.unit.test_scoring import champion, world  # noqa: F401 - fixtures: this module's own world and champion

PARTITIONS: list[tuple[str, dict[str, Any]]] = [
    (predictions_table("churn"), {"scoring_date": LAST}), (prediction_errors_table("churn"), {"scoring_date": LAST}),
]
UNSCORABLE = 999_999
OLD_RUN, NEW_RUN = "scheduled__old_run", "manual__new_run"


def _publish(env: dict[str, str], plan_fields: dict[str, Any], stop_at: str) -> None:
    """In a child: publish the staged run ``plan_fields``, killed at ``stop_at`` inside the publish step."""
    settings = child_settings(env)
    stop_inside_publish(settings, stop_at)
    scoring.publish(settings, ScoringPlan(**plan_fields))


@pytest.fixture(scope="module")
def with_an_unscorable_entity(world: World, champion: str) -> World:  # noqa: F811
    """The world with one entity in LAST's population that no feature view knows: it goes to the errors table."""
    population_file = (world.settings.warehouse_dir / "tables" / "populations" / "churn_population"
                       / f"as_of_date={LAST}" / "part.parquet")
    population = pd.read_parquet(population_file)
    stranger = population[population["as_of_date"] == pd.Timestamp(LAST).date()].head(1).assign(customer_id=UNSCORABLE)
    pd.concat([population, stranger]).to_parquet(population_file, index=False)
    return world


@pytest.fixture
def new_run_staged(with_an_unscorable_entity: World) -> ScoringPlan:
    """LAST published by OLD_RUN (scores and one error), then NEW_RUN planned and its shards staged."""
    settings = with_an_unscorable_entity.settings
    assert scoring.score_day(settings, "churn", LAST, airflow_run_id=OLD_RUN)["errors"] == 1
    (plan,) = scoring.plans_for(settings, "churn", [LAST], airflow_run_id=NEW_RUN)
    for shard in range(plan.shards):
        scoring.score_shard(settings, plan, shard)
    return plan


def published_runs(world: World) -> list[set[str]]:
    """The runs each of LAST's two tables holds, read through a fresh warehouse (which recovers)."""
    warehouse = Warehouse.from_uri(world.settings.warehouse_uri)
    return [set(warehouse.read(t, k)["airflow_run_id"]) for t, k in PARTITIONS]


def catalog_runs(world: World) -> list[list[tuple]]:
    return [in_catalog(world.settings, f"select distinct airflow_run_id from {t} where scoring_date = ?", [LAST])
            for t, _ in PARTITIONS]


def test_a_publish_killed_between_predictions_and_errors_is_rolled_forward(
    with_an_unscorable_entity: World, new_run_staged: ScoringPlan,
) -> None:
    world, settings = with_an_unscorable_entity, with_an_unscorable_entity.settings

    assert run_killed(_publish, settings_env(settings), new_run_staged.as_dict(), "between") == -signal.SIGKILL
    assert on_disk(settings, PARTITIONS, "airflow_run_id") == [{NEW_RUN}, {OLD_RUN}], \
        "killed after the predictions file was renamed, before the errors file"

    assert published_runs(world) == [{NEW_RUN}, {NEW_RUN}], "both from the new run, never new scores with old errors"
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    scores, errors = (warehouse.read(t, k) for t, k in PARTITIONS)
    assert sorted(scores["customer_id"]) == customers_on(world, LAST) and errors["customer_id"].tolist() == [UNSCORABLE]
    assert set(scores["scored_at"]) == set(errors["scored_at"]), "one publish wrote both"
    assert catalog_runs(world) == [[(NEW_RUN,)], [(NEW_RUN,)]], "the analysts' views agree once rolled forward"
    assert not any((settings.warehouse_dir / "tables" / ".transactions").iterdir())


def test_a_publish_killed_before_its_commit_leaves_both_tables_old(
    with_an_unscorable_entity: World, new_run_staged: ScoringPlan,
) -> None:
    world, settings = with_an_unscorable_entity, with_an_unscorable_entity.settings

    assert run_killed(_publish, settings_env(settings), new_run_staged.as_dict(), "commit") == -signal.SIGKILL

    assert published_runs(world) == [{OLD_RUN}, {OLD_RUN}], "nothing of the killed publish is visible"
    assert catalog_runs(world) == [[(OLD_RUN,)], [(OLD_RUN,)]]
    assert not any((settings.warehouse_dir / "tables" / ".transactions").iterdir()), "its staged files are removed"
    scoring.publish(settings, new_run_staged)  # the task's retry: the run's shards are still staged
    assert published_runs(world) == [{NEW_RUN}, {NEW_RUN}], "the retry converges"
