"""Day-partitioned dbt models: a nightly run builds its day, and ends exactly where a full rebuild would.

Each world is real: demo data landed and ingested by the library, ``dbt build`` on the project
(DuckDB). The use case's feature, population and label tables after a sequence of nightly runs
(and a backfill of a changed earlier day) are compared row for row with one full build over the
same raw data. The same comparison on Postgres is in tests/production/test_dbt_days_production.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from nightshift import features
from nightshift.features.builds import BuildPlan, definition_fingerprint, last_build
from nightshift.ingest import configured_source, ingest_batch
from nightshift.settings import Settings
from nightshift.usecase import use_case_of
from nightshift.warehouse import PartitionWrite, Warehouse, raw_table

START = date(2026, 1, 1)
#: More than the longest window (28 days) and the churn label's horizon and lateness (32 days).
DAYS = 40
FIRST_NIGHTLY = START + timedelta(days=DAYS - 3)
LAST = START + timedelta(days=DAYS - 1)

MODELS = {
    "churn": {"features.customer_activity_daily": ["customer_id", "feature_date"],
              "features.customer_profile_daily": ["customer_id", "feature_date"],
              "populations.churn_population": ["customer_id", "as_of_date"],
              "labels.churn_labels": ["customer_id", "as_of_date"]},
    "demand": {"features.store_daily": ["store_id", "feature_date"],
               "features.product_daily": ["product_id", "feature_date"],
               "features.store_product_daily": ["store_id", "product_id", "feature_date"],
               "populations.demand_population": ["store_id", "product_id", "as_of_date"],
               "labels.demand_labels": ["store_id", "product_id", "as_of_date"]},
}


def ingest_day(settings: Settings, use_case: str, day: date) -> None:
    now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=6)
    for source in use_case_of(settings, use_case).sources:
        ingest_batch(settings, configured_source(settings, source), day, now=now)


def land(settings: Settings, use_case: str) -> None:
    if use_case == "churn":
        from nightshift.demo.churn_data import DatagenSpec, write_landing

        write_landing(DatagenSpec(customers=60, start=START, days=DAYS, seed=3), settings.landing_uri)
    else:
        from nightshift.demo.demand_data import DemandSpec
        from nightshift.demo.demand_data import write_landing as write_demand

        write_demand(DemandSpec(stores=3, products=12, start=START, days=DAYS, seed=4), settings.landing_uri)


def nightly(settings: Settings, use_case: str, day: date, full_refresh: bool = False) -> BuildPlan:
    """What the features DAG does for ``day``: plan, dbt build the planned days, record the build."""
    plan = features.days_to_build(settings, use_case_of(settings, use_case), day, full_refresh=full_refresh)
    features.run_dbt(settings, features.features_build(use_case), days=plan.dbt_days)
    features.record_build(settings, plan)
    return plan


def snapshot(settings: Settings, use_case: str) -> dict[str, pd.DataFrame]:
    """Every built table of the use case, rows in key order, empty files ignored."""
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    tables = {}
    for table, keys in MODELS[use_case].items():
        frame = warehouse.read(table)
        frame = frame[[c for c in frame.columns if c != "batch_date"]]
        tables[table] = frame.sort_values(keys).reset_index(drop=True)
    return tables


def assert_same_tables(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    for table, frame in want.items():
        assert len(frame) > 0, f"{table} is empty: the world is too small to test anything"
        pd.testing.assert_frame_equal(got[table][frame.columns], frame, check_dtype=False, check_exact=True, obj=table)


@pytest.fixture(scope="module", params=["churn", "demand"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A use case ingested up to the day before FIRST_NIGHTLY and built whole."""
    use_case = request.param
    root = tmp_path_factory.mktemp(f"days_{use_case}")
    with pytest.MonkeyPatch.context() as patch:
        for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI",
                    "NIGHTSHIFT_REDIS_URL", "NIGHTSHIFT_MLFLOW_URI"):
            patch.delenv(key, raising=False)
        patch.setenv("NIGHTSHIFT_HOME", str(root / "state"))
        settings = Settings.from_env()
        land(settings, use_case)
        for offset in range(DAYS - 3):
            ingest_day(settings, use_case, START + timedelta(days=offset))
        plan = nightly(settings, use_case, FIRST_NIGHTLY - timedelta(days=1))
        assert plan.full and plan.reason == "no earlier build is recorded"
        yield settings, use_case


def full_rebuild_of(settings: Settings, use_case: str) -> Callable[[], dict[str, pd.DataFrame]]:
    """The tables one full build over the same raw data writes."""
    def build() -> dict[str, pd.DataFrame]:
        features.run_dbt(settings, features.features_build(use_case))
        return snapshot(settings, use_case)
    return build


def day_files(settings: Settings, use_case: str) -> dict[Path, int]:
    """Each day file of the use case's feature tables, with its modification time (ns)."""
    tables = settings.warehouse_dir / "tables"
    return {path: path.stat().st_mtime_ns
            for table in MODELS[use_case] if table.startswith("features.")
            for path in (tables / Path(*table.split("."))).glob("feature_date=*/part.parquet")}


def test_nightly_runs_build_one_day_and_end_as_a_full_build(history: tuple[Settings, str]) -> None:
    settings, use_case = history
    earlier_files = day_files(settings, use_case)
    plans = []
    for day in (FIRST_NIGHTLY + timedelta(days=i) for i in range(3)):
        ingest_day(settings, use_case, day)
        plans.append(nightly(settings, use_case, day))
    assert [(p.first, p.last) for p in plans] == [(d, d) for d in (FIRST_NIGHTLY + timedelta(days=i) for i in range(3))]
    assert last_build(settings, use_case)["built_through"] == LAST
    nightly_tables = snapshot(settings, use_case)
    assert earlier_files and day_files(settings, use_case) == {
        **earlier_files, **{path: mtime for path, mtime in day_files(settings, use_case).items() if path not in earlier_files}
    }, "a nightly run rewrote a day before the one it was for"
    assert len(day_files(settings, use_case)) == len(earlier_files) + 3 * len(
        [t for t in MODELS[use_case] if t.startswith("features.")])

    assert_same_tables(nightly_tables, full_rebuild_of(settings, use_case)())


def test_a_changed_earlier_day_rebuilds_it_and_every_day_after(history: tuple[Settings, str]) -> None:
    """A fixed file for an earlier day is re-ingested and its features run again: the days after it
    change too (their windows include it), exactly as a full build has them."""
    settings, use_case = history
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    fixed_day = LAST - timedelta(days=4)
    source = "activity" if use_case == "churn" else "sales"
    rows = warehouse.read(raw_table(source), {"batch_date": fixed_day}).drop(columns="batch_date")
    column = "sessions" if use_case == "churn" else "units"
    rows.loc[rows.index[0], column] = rows[column].iloc[0] + 40
    warehouse.replace_partitions([PartitionWrite(raw_table(source), {"batch_date": fixed_day}, rows)])
    before = snapshot(settings, use_case)

    plan = nightly(settings, use_case, fixed_day)

    assert (plan.first, plan.last, plan.full) == (fixed_day, LAST, False), plan.reason
    after = snapshot(settings, use_case)
    table = "features.customer_activity_daily" if use_case == "churn" else "features.store_product_daily"
    changed = after[table].merge(before[table], how="outer", indicator=True)
    assert (changed["_merge"] != "both").any(), "the fix changed no feature row: the test proves nothing"
    assert_same_tables(after, full_rebuild_of(settings, use_case)())


def test_a_definition_change_or_the_runs_conf_plans_a_full_build(history: tuple[Settings, str], tmp_path: Path) -> None:
    settings, use_case = history
    use_case_config = use_case_of(settings, use_case)
    assert features.days_to_build(settings, use_case_config, LAST, full_refresh=True).full
    incremental = features.days_to_build(settings, use_case_config, LAST)
    assert not incremental.full

    manifest = json.loads(settings.dbt_manifest.read_text())
    model = next(uid for uid, node in manifest["nodes"].items()
                 if node.get("resource_type") == "model" and use_case in node.get("tags", [])
                 and node.get("path", "").startswith("features/"))
    manifest["nodes"][model]["checksum"]["checksum"] = "edited"
    edited = tmp_path / "manifest.json"
    edited.write_text(json.dumps(manifest))
    assert definition_fingerprint(edited, use_case_config) != incremental.fingerprint

    changed = features.days_to_build(dataclasses.replace(settings, dbt_manifest=edited), use_case_config, LAST)
    assert changed.full and "definitions changed" in changed.reason


def test_days_asked_of_a_model_never_built_fail_saying_to_build_it_whole(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI",
                "NIGHTSHIFT_REDIS_URL", "NIGHTSHIFT_MLFLOW_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "state"))
    settings = Settings.from_env()
    from nightshift.demo.churn_data import DatagenSpec, write_landing

    write_landing(DatagenSpec(customers=20, start=START, days=1, seed=3), settings.landing_uri)
    ingest_day(settings, "churn", START)
    with pytest.raises(features.DbtFailed) as failed:
        features.run_dbt(settings, ["build", "--select", "customer_profile_daily"], days=f"{START}:{START}")
    assert "has not been built yet" in str(failed.value) and "build it whole first" in str(failed.value)


# --- the marts by scoring day ---------------------------------------------------------------------

#: The label models' horizon + lateness (their restate_days): a label of D is known that many days after D.
LABEL_DAYS = {"churn": 32, "demand": 9}
MARTS = ("predictions_latest", "predictions_history", "score_summary", "model_performance_daily")
MART_KEYS = {"predictions_latest": [], "predictions_history": ["scoring_date"],
             "score_summary": ["scoring_date", "model_version", "decile", "band"],
             "model_performance_daily": ["scoring_date", "model_version"]}


def publish_scores(settings: Settings, use_case: str, day: date, seed: int, drop: int = 0) -> pd.DataFrame:
    """Scores for ``day``'s population (less its first ``drop`` entities), as the score DAG publishes
    them; returns the keys of the entities left out."""
    import numpy as np

    from nightshift.warehouse import predictions_table

    config = use_case_of(settings, use_case)
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    population = warehouse.read_range(f"populations.{use_case}_population", "as_of_date", day, day)
    population = population.sort_values(list(config.keys), ignore_index=True)
    dropped = population[list(config.keys)].iloc[:drop]
    scores = population[list(config.keys)].iloc[drop:].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    scores["score"] = rng.random(len(scores))
    scores = scores.sort_values("score", ascending=False, ignore_index=True)
    scores["decile"] = np.ceil(np.arange(1, len(scores) + 1) * 10 / len(scores)).astype("int64")
    scores["band"] = np.where(scores["score"] > 0.7, "high", np.where(scores["score"] > 0.3, "medium", "low")) \
        if config.task == "binary" else None
    scores = scores.assign(model_name=f"nightshift_{use_case}", model_version=str(1 + seed % 2),
                           feature_service=f"{use_case}_v1", features_missing=0, airflow_run_id=f"run-{seed}",
                           scored_at=pd.Timestamp("2026-03-01")).astype(
        {c: "string" for c in ["model_name", "model_version", "feature_service", "airflow_run_id", "band"]})
    warehouse.replace_partitions([PartitionWrite(predictions_table(use_case), {"scoring_date": day}, scores)])
    return dropped


def mart_snapshot(settings: Settings, use_case: str) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    keys = list(use_case_of(settings, use_case).keys)
    out = {}
    for mart in MARTS:
        frame = warehouse.read(f"marts.{use_case}_{mart}")
        by_entity = mart in ("predictions_latest", "predictions_history")
        out[mart] = frame.sort_values(MART_KEYS[mart] + (keys if by_entity else [])).reset_index(drop=True)
    return out


def change_a_label(settings: Settings, use_case: str, as_of: date) -> None:
    """One label of ``as_of`` changes, as when an outcome lands late (the label model's table, edited)."""
    table = f"{use_case}_labels"
    if settings.profile == "embedded":
        path = settings.warehouse_dir / "tables" / "labels" / table / f"as_of_date={as_of}" / "part.parquet"
        labels = pd.read_parquet(path)
        labels.loc[labels.index[0], "label"] = 1 - labels["label"].iloc[0] if use_case == "churn" else labels["label"].iloc[0] + 5
        labels.to_parquet(path, index=False)
        return
    import sqlalchemy

    change = "1 - label" if use_case == "churn" else "label + 5"
    with sqlalchemy.create_engine(settings.warehouse_uri).begin() as con:
        con.execute(sqlalchemy.text(
            f"update labels.{table} set label = {change} where ctid = "
            f"(select ctid from labels.{table} where as_of_date = :day limit 1)"), {"day": as_of})


def marts_night(settings: Settings, use_case: str, first: date, last: date) -> BuildPlan:
    """What the score DAG does after publishing ``first``..``last``: choose the days, build the marts, record."""
    plan = features.days_to_build(settings, use_case_of(settings, use_case), last, scope="marts", first_day=first)
    features.run_dbt(settings, features.marts_build(use_case), days=plan.dbt_days)
    features.record_build(settings, plan)
    return plan


def test_marts_rebuilt_by_scoring_day_end_as_a_full_build(history: tuple[Settings, str]) -> None:
    """Nightly marts runs, a re-scored earlier day that no longer scores some entities, and a
    backfill of several days at once all leave every mart equal to a full build's."""
    settings, use_case = history
    for day in (FIRST_NIGHTLY + timedelta(days=i) for i in range(3)):  # when run alone: land the last days
        if last_build(settings, use_case)["built_through"] < day:
            ingest_day(settings, use_case, day)
            nightly(settings, use_case, day)
    label_days = LABEL_DAYS[use_case]
    # scored days from before the last labelled one (LAST - label_days) to LAST
    scored = [LAST - timedelta(days=i) for i in range(label_days + 3, -1, -1)]
    for number, day in enumerate(scored[:-3]):
        publish_scores(settings, use_case, day, seed=number)
    assert marts_night(settings, use_case, scored[0], scored[-4]).full
    for number, day in enumerate(scored[-3:]):
        publish_scores(settings, use_case, day, seed=100 + number)
        plan = marts_night(settings, use_case, day, day)
        assert (plan.first, plan.last) == (day, day), plan.reason
    # a labelled day scored again, without its first three entities (its population changed)
    publish_scores(settings, use_case, scored[1], seed=42, drop=3)
    plan = marts_night(settings, use_case, scored[1], scored[1])
    assert (plan.first, plan.last) == (scored[1], LAST), plan.reason
    # a label of the oldest day a night can still decide lands late, then the last day is scored again
    before = mart_snapshot(settings, use_case)["model_performance_daily"]
    change_a_label(settings, use_case, LAST - timedelta(days=label_days))
    # the last day scored again without three entities: their latest score is now the day before
    dropped = publish_scores(settings, use_case, LAST, seed=43, drop=3)
    assert (marts_night(settings, use_case, LAST, LAST).first, LAST) == (LAST, LAST)
    built = mart_snapshot(settings, use_case)
    earlier = built["predictions_latest"].merge(dropped, on=list(dropped.columns))
    assert len(earlier) == 3 and (pd.to_datetime(earlier["scoring_date"]).dt.date < LAST).all(), earlier
    performance = built["model_performance_daily"]
    relabelled = pd.to_datetime(performance["scoring_date"]).dt.date == LAST - timedelta(days=label_days)
    assert relabelled.any() and not performance[relabelled].reset_index(drop=True).equals(
        before[pd.to_datetime(before["scoring_date"]).dt.date == LAST - timedelta(days=label_days)].reset_index(drop=True)
    ), "the late label did not reach the performance mart"
    assert len(built["model_performance_daily"]) > 0, "no labelled scoring day: the performance mart is untested"

    features.run_dbt(settings, features.marts_build(use_case))
    full = mart_snapshot(settings, use_case)
    for mart in MARTS:
        # averages over a day's scores: DuckDB may add a parallel aggregate's parts in any order
        pd.testing.assert_frame_equal(built[mart][full[mart].columns], full[mart], check_dtype=False,
                                      rtol=1e-12, obj=mart)
