"""Nightly scoring without Airflow, on a real world: ingested days, dbt features, Feast, a champion
registered in MLflow (SQLite), the DuckDB/Parquet warehouse; then the marts built by dbt."""

from __future__ import annotations

import dataclasses
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml

from nightshift import days, features, scoring
from nightshift.modeling import inputs, registry
from nightshift.usecase import use_case_of
from nightshift.settings import Settings
from nightshift.warehouse import (
    PartitionWrite, Warehouse, WarehouseError, prediction_errors_table, predictions_table, raw_table,
    scoring_staging_tables, shadow_predictions_table,
)
from tests.unit.test_features import LAST, START, World, build_world, customers_on, spine

LINEAGE = ["scored_at", "airflow_run_id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("scoring_world"))


def register_model(settings: Settings, alias: str, extra_feature: str | None = None, seed: int = 0,
                   rounds: int = 20) -> str:
    """A LightGBM on the world's churn_v1 features, registered and given ``alias``; returns its version."""
    import mlflow

    use_case = use_case_of(settings, "churn")
    names = features.feature_names(settings, "churn_v1")
    ids = customers_on_day(settings, START)
    frame = features.training_frame(settings, "churn_v1", spine(ids, START))
    if extra_feature:
        frame[extra_feature] = 1.0
        names = [*names, extra_feature]
    labels = (frame["sessions_28d"].fillna(0) < frame["sessions_28d"].median()).astype(int)
    categorical = use_case.training["categorical"]
    booster = lgb.train({"objective": "binary", "verbosity": -1, "seed": seed, "min_data_in_leaf": 5},
                        lgb.Dataset(inputs.model_input(frame, names, categorical), labels), rounds)
    client = registry.connect(settings)
    experiment = registry.ensure_experiment(settings, use_case)
    with mlflow.start_run(experiment_id=experiment) as run:
        uri = mlflow.lightgbm.log_model(booster, name="model").model_uri
    version = registry.register(client, "churn", uri, run.info.run_id, {"gate": "passed", "feature_service": "churn_v1"})
    client.set_registered_model_alias("churn", alias, str(version.version))
    return str(version.version)


def customers_on_day(settings: Settings, day) -> list[int]:
    frame = Warehouse.from_uri(settings.warehouse_uri).read(raw_table("customers"), {"batch_date": day})
    return sorted(int(c) for c in frame["customer_id"])


@pytest.fixture(scope="module")
def champion(world: World) -> str:
    return register_model(world.settings, "champion")


def with_config(settings: Settings, tmp_path: Path, **scoring_config: object) -> Settings:
    """Settings whose use-case file has ``scoring:`` overridden (config is data)."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    data = yaml.safe_load((settings.config_dir / "churn.yaml").read_text())
    data["scoring"] = {**data.get("scoring", {}), **scoring_config}
    (config_dir / "churn.yaml").write_text(yaml.safe_dump(data))
    return dataclasses.replace(settings, config_dir=config_dir)


PREDICTIONS = predictions_table("churn")


def published(world: World, table: str = PREDICTIONS) -> pd.DataFrame:
    frame = world.warehouse.read(table, {"scoring_date": LAST})
    return frame.sort_values("customer_id", ignore_index=True)


def test_no_champion_is_a_clear_failure(world: World, tmp_path: Path) -> None:
    empty = dataclasses.replace(world.settings, mlflow_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(scoring.NoChampion, match=r"no model has passed the gate yet.*run the `retrain_churn` DAG"):
        scoring.plan(empty, "churn", LAST)


def test_every_customer_is_scored_with_lineage(world: World, champion: str) -> None:
    result = scoring.score_day(world.settings, "churn", LAST, airflow_run_id="manual__test")
    scores = published(world)
    ids = customers_on(world, LAST)

    assert result["scored"] + result["errors"] == result["spine"] == len(ids)
    assert scores["customer_id"].tolist() == ids and result["errors"] == 0
    assert scores["score"].between(0, 1).all()
    assert set(scores["decile"]) == set(range(1, 11))
    top = scores[scores["decile"] == 1]["score"].min()
    assert (scores[scores["decile"] > 1]["score"] <= top).all(), "decile 1 holds the highest scores"
    assert set(scores["band"]) <= {"high", "medium", "low"}
    assert (scores["band"] == "high").eq(scores["score"] >= 0.30).all()
    assert set(scores["model_name"]) == {"churn"} and set(scores["model_version"]) == {champion}
    assert set(scores["feature_service"]) == {"churn_v1"} and set(scores["airflow_run_id"]) == {"manual__test"}
    offline = features.training_frame(world.settings, "churn_v1", spine(ids, LAST))
    expected_missing = offline[features.feature_names(world.settings, "churn_v1")].isna().sum(axis=1)
    assert scores["features_missing"].tolist() == expected_missing.tolist() and scores["scored_at"].notna().all()


def test_rerunning_a_day_replaces_exactly_that_day(world: World, champion: str) -> None:
    scoring.score_day(world.settings, "churn", START)
    scoring.score_day(world.settings, "churn", LAST)
    first, other_day = published(world), world.warehouse.read(PREDICTIONS, {"scoring_date": START})
    scoring.score_day(world.settings, "churn", LAST)
    pd.testing.assert_frame_equal(first.drop(columns=LINEAGE), published(world).drop(columns=LINEAGE))
    pd.testing.assert_frame_equal(world.warehouse.read(PREDICTIONS, {"scoring_date": START}), other_day)


def test_sharded_result_equals_unsharded(world: World, champion: str, tmp_path: Path) -> None:
    scoring.score_day(world.settings, "churn", LAST)
    unsharded = published(world)
    sharded_settings = with_config(world.settings, tmp_path, shards=3, chunk_rows=17)
    plan = scoring.plan(sharded_settings, "churn", LAST)
    assert plan.shards == 3
    counts = [scoring.score_shard(sharded_settings, plan, shard)["scored"] for shard in range(3)]
    assert all(counts) and sum(counts) == len(unsharded)
    scoring.publish(sharded_settings, plan)
    pd.testing.assert_frame_equal(unsharded.drop(columns=LINEAGE), published(world).drop(columns=LINEAGE))


def test_shards_are_a_stable_partition_of_the_keys() -> None:
    ids = pd.DataFrame({"customer_id": np.arange(1, 10_001)})
    first, again = scoring.shard_of(ids, 4), scoring.shard_of(ids[::-1], 4)[::-1]
    assert (first == again).all() and set(first) == {0, 1, 2, 3}
    assert np.bincount(first).min() > 2_200, "roughly even shards"
    pairs = pd.DataFrame({"store_id": [f"S{i % 7}" for i in range(5000)], "product_id": [f"P{i}" for i in range(5000)]})
    composite = scoring.shard_of(pairs, 3)
    assert (composite == scoring.shard_of(pairs.copy(), 3)).all() and set(composite) == {0, 1, 2}


def test_missing_features_are_counted_and_unscorable_entities_go_to_errors(world: World, champion: str) -> None:
    settings, warehouse = world.settings, world.warehouse
    tables = settings.warehouse_dir / "tables"
    population_file = tables / "populations" / "churn_population" / f"as_of_date={LAST}" / "part.parquet"
    population = pd.read_parquet(population_file)
    customers = population[population["as_of_date"] == pd.Timestamp(LAST).date()]
    activity_files = sorted((tables / "features" / "customer_activity_daily").glob("feature_date=*/part.parquet"))
    activity = {path: pd.read_parquet(path) for path in activity_files}
    no_activity = customers_on(world, LAST)[:2]
    stranger = customers.head(1).assign(customer_id=999_999)  # in the day's population, unknown to every feature view
    try:
        pd.concat([population, stranger]).to_parquet(population_file, index=False)
        for path, rows in activity.items():
            rows[~rows["customer_id"].isin(no_activity)].to_parquet(path, index=False)

        result = scoring.score_day(settings, "churn", LAST)

        scores = published(world).set_index("customer_id")
        errors = warehouse.read(prediction_errors_table("churn"), {"scoring_date": LAST})
        assert result["scored"] + result["errors"] == result["spine"] == len(customers) + 1
        assert errors["customer_id"].tolist() == [999_999], "the use case's own key, in its own type"
        assert "no feature of churn_v1 is known for it" in errors["reason"].iloc[0]
        assert (scores.loc[no_activity, "features_missing"] == 12).all(), "activity's 12 features missing, scored anyway"
        assert scores.drop(index=no_activity)["features_missing"].lt(12).all()
    finally:
        population.to_parquet(population_file, index=False)
        for path, rows in activity.items():
            rows.to_parquet(path, index=False)


def test_failed_write_leaves_the_previous_partition(world: World, champion: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    scoring.score_day(world.settings, "churn", LAST, airflow_run_id="before")
    before = published(world)
    real_write = pq.write_table

    def dies_midway(table, where, *args, **kwargs):  # noqa: ANN001
        real_write(table.slice(0, 1), where, *args, **kwargs)  # a partial file, then the process "dies"
        raise OSError("disk full (injected)")

    monkeypatch.setattr(pq, "write_table", dies_midway)
    with pytest.raises(OSError, match="injected"):
        scoring.score_day(world.settings, "churn", LAST, airflow_run_id="failed")
    pd.testing.assert_frame_equal(published(world), before)

    monkeypatch.undo()
    scoring.score_day(world.settings, "churn", LAST, airflow_run_id="retry")
    assert set(published(world)["airflow_run_id"]) == {"retry"}


def test_model_needing_a_feature_its_service_lacks_is_refused(world: World, champion: str) -> None:
    version = register_model(world.settings, "challenger", extra_feature="discount_28d")
    try:
        with pytest.raises(scoring.FeatureContractBroken, match=rf"version {version} needs features \['discount_28d'\]"):
            scoring.plan(world.settings, "churn", LAST, alias="challenger")
    finally:
        registry.connect(world.settings).delete_registered_model_alias("churn", "challenger")


def test_no_features_for_the_day_names_it_and_the_features_dag(world: World, champion: str) -> None:
    later = LAST + timedelta(days=1)
    with pytest.raises(features.FeatureDataMissing, match=rf"no features for {later}.*run the `features_churn` DAG"):
        scoring.plan(world.settings, "churn", later)


def test_shadow_scores_the_challenger_and_leaves_daily_alone(world: World, champion: str) -> None:
    assert scoring.score_day(world.settings, "churn", LAST, alias="challenger") is None, "no challenger yet"
    scoring.score_day(world.settings, "churn", LAST)
    daily = published(world)
    challenger = register_model(world.settings, "challenger", seed=3)
    try:
        result = scoring.score_day(world.settings, "churn", LAST, alias="challenger")
        shadow = published(world, shadow_predictions_table("churn"))
        assert result["table"] == shadow_predictions_table("churn") and len(shadow) == len(daily)
        assert set(shadow["model_version"]) == {challenger} != set(daily["model_version"])
        pd.testing.assert_frame_equal(published(world), daily)
    finally:
        registry.connect(world.settings).delete_registered_model_alias("churn", "challenger")


def test_marts_build_their_tests_pass_and_docs_generate(world: World, champion: str) -> None:
    import duckdb

    scoring.score_day(world.settings, "churn", START)
    scoring.score_day(world.settings, "churn", LAST)
    output = features.run_dbt(world.settings, features.marts_build("churn"))
    assert "ERROR=0" in output and "PASS=" in output
    features.publish_dbt_tables(world.settings)
    catalog = world.settings.warehouse_uri.removeprefix("duckdb://")
    with duckdb.connect(catalog, read_only=True) as con:
        latest = con.sql("select * from marts.churn_predictions_latest").df()
        performance = con.sql("select * from marts.churn_model_performance_daily").df()
        history = con.execute("select count(*) from marts.churn_predictions_history").fetchone()[0]
        bands = con.execute("select sum(entities) from marts.churn_score_summary where scoring_date = ?", [LAST]).fetchone()[0]
    assert len(latest) == latest["customer_id"].nunique() == len(set(customers_on(world, START)) | set(customers_on(world, LAST)))
    assert history == len(customers_on(world, START)) + len(customers_on(world, LAST))
    assert bands == len(customers_on(world, LAST))
    assert performance.empty, "no label of a 3-day world has landed: nothing to report yet"
    docs = features.run_dbt(world.settings, ["docs", "generate"])
    assert "Catalog written" in docs
    assert (world.settings.home / "dbt" / "dbt" / "target" / "index.html").exists()
    shutil.rmtree(world.settings.home / "dbt" / "dbt" / "target", ignore_errors=True)


def test_a_lost_connection_is_not_an_unscored_day(world: World, champion: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a table not written yet means "nobody scored D"; a failed read fails the scheduled run
    (which retries), instead of scoring D again over the run that did."""
    scoring.score_day(world.settings, "churn", LAST, airflow_run_id="asset_triggered__features_of_the_day")
    assert scoring.scored_by(world.settings, "churn", LAST)["airflow_run_id"] == "asset_triggered__features_of_the_day"
    assert scoring.scored_by(world.settings, "churn", START - timedelta(days=1)) is None, "never written: no scores"

    def lost(self, table, partition=None):  # noqa: ANN001, ANN202 - the warehouse's read, failing
        raise WarehouseError(f"cannot read {table}: server closed the connection unexpectedly")

    monkeypatch.setattr(type(world.warehouse), "read", lost)
    with pytest.raises(WarehouseError, match="server closed the connection"):
        scoring.scored_by(world.settings, "churn", LAST)
    with pytest.raises(WarehouseError, match="server closed the connection"):
        scoring.days_to_score(world.settings, "churn", [LAST], scheduled=True)


# --- which days a run scores (every day with features, exactly once) ----------------------------

MIDDLE = START + timedelta(days=1)


def score_dag_tasks() -> dict[str, Callable[..., Any]]:
    """The Python callables of the `score_churn` DAG's tasks, as Airflow would call them."""
    from airflow.dag_processing.dagbag import DagBag

    from nightshift.settings import PROJECT_ROOT

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "score.py"))
    assert not bag.import_errors, bag.import_errors
    tasks = bag.dags["score_churn"].task_dict
    return {task_id: getattr(task, "python_callable", None) or task.partial_kwargs["python_callable"]
            for task_id, task in tasks.items() if task_id in ("days_to_score", "plan", "shards", "score_shard", "publish")}


def test_a_run_triggered_for_several_feature_days_scores_every_day(world: World, champion: str) -> None:
    # features caught up three days after a late upstream; Airflow merged their events into one run
    for day in (START, MIDDLE, LAST):
        world.warehouse.drop_partitions(PREDICTIONS, {"scoring_date": day})
    events = {"features/churn": [SimpleNamespace(extra={"feature_date": str(d)}) for d in (LAST, START, MIDDLE)]}
    run = SimpleNamespace(run_id="asset_triggered__catch_up", run_type="asset_triggered")
    task = score_dag_tasks()

    poke = task["days_to_score"]("churn", ds=None, triggering_asset_events=events, dag_run=run)
    assert poke.is_done and poke.xcom_value == [str(START), str(MIDDLE), str(LAST)], "every day, oldest first"
    plans = task["plan"]("churn", poke.xcom_value, dag_run=run)
    assert {p["model_version"] for p in plans} == {champion}, "one version pinned for every day of the run"
    for kwargs in task["shards"](plans):
        task["score_shard"](**kwargs)
    outlet_events: dict = defaultdict(SimpleNamespace)
    emitted = []
    for scoring_plan in plans:
        task["publish"](scoring_plan, dag_run=run, outlet_events=outlet_events)
        emitted.append(next(iter(outlet_events.values())).extra["scoring_date"])

    assert emitted == [str(START), str(MIDDLE), str(LAST)], "one predictions event per day"
    for day in (START, MIDDLE, LAST):
        scores = world.warehouse.read(PREDICTIONS, {"scoring_date": day})
        assert sorted(scores["customer_id"]) == customers_on(world, day), f"{day} is scored"
        assert set(scores["airflow_run_id"]) == {run.run_id} and set(scores["model_version"]) == {champion}


def test_a_scheduled_run_skips_a_scored_day_naming_the_run_and_version(world: World, champion: str) -> None:
    scoring.score_day(world.settings, "churn", LAST, airflow_run_id="asset_triggered__features_of_the_day")
    with pytest.raises(scoring.DayAlreadyScored, match=rf"{LAST} is already scored for churn: predictions.churn_daily "
                       rf"holds model version {champion} from run asset_triggered__features_of_the_day"):
        scoring.days_to_score(world.settings, "churn", [LAST], scheduled=True)


def test_a_scheduled_run_waits_for_missing_features_then_fails_naming_the_day(world: World, champion: str,
                                                                               tmp_path: Path) -> None:
    later = LAST + timedelta(days=1)  # ingested and built for nobody: its features never landed
    use_case = use_case_of(world.settings, "churn")
    deadline = scoring.scoring_deadline(use_case, later)
    assert deadline == days.end_of_day(later) + timedelta(hours=12), "default scoring.wait_hours"

    assert scoring.days_to_score(world.settings, "churn", [later], scheduled=True,
                                 now=deadline - timedelta(minutes=1)) is None, "waits (reschedule) until the deadline"
    with pytest.raises(scoring.DayNotScored, match=rf"churn {later} was not scored: no run scored it by "
                       rf"{deadline:%Y-%m-%d %H:%M} UTC.*Run the `features_churn` DAG for {later}"):
        scoring.days_to_score(world.settings, "churn", [later], scheduled=True, now=deadline)

    sooner = with_config(world.settings, tmp_path, wait_hours=2)
    assert scoring.scoring_deadline(use_case_of(sooner, "churn"), later) == days.end_of_day(later) + timedelta(hours=2)
    with pytest.raises(scoring.DayNotScored):
        scoring.days_to_score(sooner, "churn", [later], scheduled=True, now=days.end_of_day(later) + timedelta(hours=2))


def test_a_scheduled_run_scores_a_day_nobody_scored_by_the_deadline(world: World, champion: str) -> None:
    world.warehouse.drop_partitions(PREDICTIONS, {"scoring_date": MIDDLE})  # its features-triggered run never came
    deadline = scoring.scoring_deadline(use_case_of(world.settings, "churn"), MIDDLE)
    assert scoring.days_to_score(world.settings, "churn", [MIDDLE], scheduled=True,
                                 now=deadline - timedelta(hours=1)) is None, "the features-triggered run may still come"
    assert scoring.days_to_score(world.settings, "churn", [MIDDLE], scheduled=True, now=deadline) == [MIDDLE]
    assert scoring.days_to_score(world.settings, "churn", [MIDDLE], scheduled=False) == [MIDDLE], "by hand: at once"


# --- concurrent runs for one day -------------------------------------------------------------------


def test_two_runs_for_one_day_publish_only_their_own_scores(world: World, champion: str, tmp_path: Path) -> None:
    settings = with_config(world.settings, tmp_path, shards=2)
    client = registry.connect(settings)
    scoring.score_day(settings, "churn", LAST)
    alone_first = published(world)
    first = scoring.plan(settings, "churn", LAST, airflow_run_id="backfill__2026-01-03")
    other = register_model(settings, "champion", rounds=3)  # the alias moves: a later manual run scores with it
    try:
        scoring.score_day(settings, "churn", LAST)
        alone_second = published(world)
        second = scoring.plan(settings, "churn", LAST, airflow_run_id="manual__2026-01-03")
        assert (first.model_version, second.model_version) == (champion, other)
        assert first.run_key != second.run_key == scoring.run_key_of("manual__2026-01-03", other, "champion")
        assert not np.allclose(alone_first["score"], alone_second["score"]), "two models that score differently"

        # both runs stage every shard of the same day before either publishes
        for shard in range(2):
            scoring.score_shard(settings, first, shard)
            scoring.score_shard(settings, second, shard)
        scoring.publish(settings, first)
        by_first = published(world)
        assert scoring.publish(settings, first)["already_published"], "a retried publish of the same run is a no-op"
        scoring.publish(settings, second)
        by_second = published(world)
    finally:
        client.set_registered_model_alias("churn", "champion", champion)

    for result, alone, scoring_plan in ((by_first, alone_first, first), (by_second, alone_second, second)):
        assert set(result["airflow_run_id"]) == {scoring_plan.airflow_run_id}
        assert set(result["model_version"]) == {scoring_plan.model_version}
        pd.testing.assert_frame_equal(result.drop(columns=LINEAGE), alone.drop(columns=LINEAGE))
    for scoring_plan in (first, second):
        for table in scoring_staging_tables("churn"):
            for shard in range(2):
                with pytest.raises(WarehouseError, match="has no partition"):
                    world.warehouse.read(table, scoring_plan.staging_partition(shard))
