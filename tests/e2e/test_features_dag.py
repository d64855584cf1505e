"""The features_churn DAG through Airflow: dbt via Cosmos, feast apply, chunked materialization
and the skew check, after three ingested days; then its two refusals."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from nightshift import features
from nightshift.demo.churn_data import DatagenSpec, write_landing
from nightshift.warehouse import FEATURE_SKEW, PartitionWrite, Warehouse, raw_table
from tests.conftest import AirflowHarness

pytestmark = pytest.mark.e2e
START = date(2026, 1, 1)
DAY3 = START + timedelta(days=2)


@pytest.fixture(scope="module")
def ingested(airflow_harness: AirflowHarness) -> AirflowHarness:
    write_landing(DatagenSpec(customers=120, start=START, days=3, seed=4), airflow_harness.settings.landing_uri)
    assert set(airflow_harness.ingest(START, days=3, use_cases=["churn"]).values()) == {"success"}
    return airflow_harness


def test_features_run_builds_materializes_and_checks_skew(ingested: AirflowHarness) -> None:
    assert ingested.run("features_churn", DAY3) == {DAY3: "success"}, ingested.outputs[-1][-4000:]
    settings = ingested.settings
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    profile = warehouse.read("features.customer_profile_daily")
    customers = warehouse.read(raw_table("customers"))
    assert len(profile) == len(customers), "one feature row per customer per snapshot day"
    population = warehouse.read("populations.churn_population")
    assert len(population) == len(customers), "the population model: one row per customer per snapshot day"
    skew = warehouse.read(FEATURE_SKEW)
    assert set(skew["use_case"]) == {"churn"} and (skew["mismatches"] == 0).all()
    assert skew["sampled"].iloc[0] == min(200, (customers["batch_date"].dt.date == DAY3).sum())

    store = features.feature_store(settings)
    some = customers[customers["batch_date"].dt.date == DAY3]["customer_id"].head(5).tolist()
    online = store.get_online_features(features=store.get_feature_service("churn_v1"), entity_rows=[{"customer_id": c} for c in some]).to_df()
    expected = profile[(profile["feature_date"].dt.date == DAY3) & profile["customer_id"].isin(some)].set_index("customer_id")
    assert online.set_index("customer_id").loc[some, "plan"].tolist() == expected.loc[some, "plan"].tolist()


def test_a_second_run_for_the_day_builds_that_day_only(ingested: AirflowHarness) -> None:
    """Through Cosmos the planned days reach dbt: the run rewrites D's files and no earlier day's."""
    from nightshift.features.builds import last_build

    settings = ingested.settings
    folder = settings.warehouse_dir / "tables" / "features" / "customer_activity_daily"
    before = {path: path.stat().st_mtime_ns for path in folder.glob("feature_date=*/part.parquet")}
    assert len(before) == 3, sorted(before)

    assert ingested.run("features_churn", DAY3) == {DAY3: "success"}, ingested.outputs[-1][-4000:]

    build = last_build(settings, "churn")
    assert not build["full_build"] and pd.Timestamp(build["first_day"]).date() == DAY3, build
    rewritten = {path.parent.name for path, mtime in before.items() if path.stat().st_mtime_ns != mtime}
    assert rewritten == {f"feature_date={DAY3}"}, rewritten


def test_no_raw_data_for_the_day_fails_naming_the_ingest_dag(ingested: AirflowHarness) -> None:
    missing_day = START + timedelta(days=9)
    assert ingested.run("features_churn", missing_day) == {missing_day: "failed"}
    assert f"on {missing_day} (use case churn): run the `ingest_activity`" in ingested.outputs[-1]
    assert f"`ingest_customers` DAG for {missing_day} first" in ingested.outputs[-1]


def test_failing_dbt_test_stops_before_materialization_and_names_the_test(ingested: AirflowHarness) -> None:
    settings = ingested.settings
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    bad_day = START + timedelta(days=3)
    good = warehouse.read(raw_table("customers"), {"batch_date": DAY3}).drop(columns="batch_date")
    bad = good.assign(plan=pd.array(["platinum"] * len(good), dtype="string"))  # a value the models refuse
    for source in ("activity", "cancellations"):
        frame = warehouse.read(raw_table(source), {"batch_date": DAY3}).drop(columns="batch_date")
        warehouse.replace_partitions([PartitionWrite(raw_table(source), {"batch_date": bad_day}, frame)])
    warehouse.replace_partitions([PartitionWrite(raw_table("customers"), {"batch_date": bad_day}, bad)])
    runs = warehouse.read("meta.validation_runs")
    fake = runs[runs["batch_date"].dt.date == DAY3].drop(columns="batch_date")
    for source in fake["source"]:
        row = fake[fake["source"] == source].drop(columns="source")
        warehouse.replace_partitions([PartitionWrite("meta.validation_runs", {"source": source, "batch_date": bad_day}, row)])
    before = features.feature_store(settings).get_feature_view("customer_profile").most_recent_end_time

    assert ingested.run("features_churn", bad_day) == {bad_day: "failed"}
    assert "accepted_values_stg_customers_plan" in ingested.outputs[-1]
    after = features.feature_store(settings).get_feature_view("customer_profile").most_recent_end_time
    assert after == before, "nothing was materialized"
