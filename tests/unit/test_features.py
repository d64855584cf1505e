"""Features without Airflow: dbt builds the tables, Feast applies and materializes them, the skew
check catches what it must, late rows never leak into the past, and a data team can add a
feature as a new feature service version with no Python change.

Each world is real: demo data landed and ingested by the library, ``dbt build`` on the project,
``feast apply`` on a registry in the test's state directory, a SQLite online store.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from nightshift import days, features
from nightshift.demo.churn_data import DatagenSpec, write_landing
from nightshift.ingest import configured_source, ingest_batch
from nightshift.settings import Settings
from nightshift.usecase import use_case_of
from nightshift.warehouse import FEATURE_SKEW, PartitionWrite, Warehouse, raw_table

START = date(2026, 1, 1)
DAYS = 3
LAST = START + timedelta(days=DAYS - 1)
SOURCES = ("customers", "activity", "cancellations")


@dataclass
class World:
    """One ingested, built, applied and materialized Nightshift home."""

    settings: Settings
    warehouse: Warehouse


def build_world(root: Path, env: dict[str, str] | None = None, spec: DatagenSpec | None = None) -> Iterator[World]:
    """Land and ingest ``spec``'s days (default: three days), dbt build, feast apply, materialize
    up to the last day.

    ``env`` adds ``NIGHTSHIFT_*`` variables (a Postgres warehouse, a Redis online store).
    """
    spec = spec or DatagenSpec(customers=80, start=START, days=DAYS, seed=5)
    last = spec.start + timedelta(days=spec.days - 1)
    now = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=6)
    with pytest.MonkeyPatch.context() as patch:
        for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI",
                    "NIGHTSHIFT_REDIS_URL", "NIGHTSHIFT_MLFLOW_URI"):
            patch.delenv(key, raising=False)
        for key, value in {"NIGHTSHIFT_HOME": str(root / "state"), **(env or {})}.items():
            patch.setenv(key, value)
        settings = Settings.from_env()
        write_landing(spec, settings.landing_uri)
        for day in (spec.start + timedelta(days=i) for i in range(spec.days)):
            for source in SOURCES:
                # as if ingested the morning after the last day: event times may not lie in the future
                ingest_batch(settings, configured_source(settings, source), day, now=now)
        features.run_dbt(settings, features.features_build("churn"))
        features.publish_dbt_tables(settings)
        features.apply_definitions(settings, "churn")
        features.materialize(settings, last)
        yield World(settings, Warehouse.from_uri(settings.warehouse_uri))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("features_world"))


def customers_on(world: World, day: date) -> list[int]:
    frame = world.warehouse.read(raw_table("customers"), {"batch_date": day})
    return sorted(int(c) for c in frame["customer_id"])


def spine(customer_ids: list[int], day: date) -> pd.DataFrame:
    """Entity rows asking for each customer's features as known at the end of ``day``."""
    return pd.DataFrame({"customer_id": customer_ids, "event_timestamp": pd.Timestamp(days.end_of_day(day))})


# --- apply ------------------------------------------------------------------------------


def test_definitions_apply_to_a_fresh_registry(world: World) -> None:
    store = features.feature_store(world.settings)
    assert sorted(fv.name for fv in store.list_feature_views()) == ["customer_activity", "customer_profile"]
    assert store.get_feature_service("churn_v1").name == "churn_v1"
    assert "sessions_7d" in features.feature_names(world.settings, "churn_v1")
    assert (world.settings.home / "feast" / "registry.db").exists()


def test_definition_naming_a_missing_column_fails_at_apply_before_the_registry_changes(
    world: World, tmp_path: Path
) -> None:
    repo = tmp_path / "feature_repo"
    shutil.copytree(features.FEATURE_REPO, repo)
    definitions = repo / "churn.py"
    text = definitions.read_text()
    declared = '        Field(name="days_since_last_activity", dtype=Float64),\n'
    assert declared in text
    definitions.write_text(text.replace(declared, declared + '        Field(name="discount_28d", dtype=Float64),\n'))

    with pytest.raises(ValueError, match=r"customer_activity.*\['discount_28d'\].*customer_activity_daily"):
        features.apply_definitions(world.settings, "churn", repo_path=repo)

    store = features.feature_store(world.settings)
    assert "discount_28d" not in [f.name for f in store.get_feature_view("customer_activity").features]


def test_feature_tables_are_queryable_in_the_warehouse_catalog(world: World) -> None:
    import duckdb

    catalog = Path(world.settings.warehouse_uri.removeprefix("duckdb://"))
    with duckdb.connect(str(catalog), read_only=True) as con:
        counts = dict(
            con.sql(
                "select 'activity', count(*) from features.customer_activity_daily "
                "union all select 'profile', count(*) from features.customer_profile_daily"
            ).fetchall()
        )
    snapshots = len(world.warehouse.read(raw_table("customers")))
    assert counts == {"activity": snapshots, "profile": snapshots}, "one row per customer per snapshot day"


# --- materialization and skew ---------------------------------------------------------------


def test_online_store_serves_the_last_days_values(world: World) -> None:
    ids = customers_on(world, LAST)[:10]
    store = features.feature_store(world.settings)
    online = store.get_online_features(
        features=store.get_feature_service("churn_v1"), entity_rows=[{"customer_id": i} for i in ids]
    ).to_df().set_index("customer_id")
    table = world.warehouse.read("features.customer_activity_daily")
    expected = table[table["feature_date"].dt.date == LAST].set_index("customer_id").loc[ids]
    assert online.loc[ids, "sessions_28d"].tolist() == expected["sessions_28d"].tolist()
    assert online.loc[ids, "sessions_28d"].notna().all()


def test_materialize_again_rewrites_the_day_and_keeps_the_end(world: World) -> None:
    before = {fv.name: fv.most_recent_end_time for fv in features.feature_store(world.settings).list_feature_views()}
    result = features.materialize(world.settings, LAST)
    assert {start for start, _ in result.windows.values()} == {days.end_of_day(LAST - timedelta(days=1)).isoformat()}
    assert sorted(result.rewritten) == ["customer_activity", "customer_profile"]
    after = {fv.name: fv.most_recent_end_time for fv in features.feature_store(world.settings).list_feature_views()}
    assert after == before, "re-running a day never moves the online store"


def test_skew_check_passes_when_online_equals_offline(world: World) -> None:
    report = features.check_skew(world.settings, "churn", LAST)
    assert report.sampled == len(customers_on(world, LAST))
    assert report.mismatched_entities == 0 and set(report.mismatches_by_feature.values()) == {0}
    assert report.compared_as_of == days.end_of_day(LAST).isoformat()
    recorded = world.warehouse.read(FEATURE_SKEW, {"use_case": "churn", "check_date": LAST})
    assert set(recorded["feature"]) == set(features.feature_names(world.settings, "churn_v1"))
    assert (recorded["mismatches"] == 0).all()


def feature_file(world: World, model: str, day: date) -> Path:
    """The Parquet file of ``day`` in the folder a feature view reads in the embedded profile."""
    store = features.feature_store(world.settings)
    view = next(v for v in store.list_feature_views() if v.tags.get("dbt_model") == model)
    path = Path(view.batch_source.path) / f"feature_date={day}" / "part.parquet"
    assert path.is_file(), f"expected the day file of {model} for {day}: {path}"
    return path


def test_changed_offline_rows_are_caught_then_rematerialized(world: World) -> None:
    """Three customers' ``sessions_7d`` change offline after materialization: the skew check fails on
    them, and Nightshift's own materialization of the day (not a direct write) repairs the online store."""
    skewed = customers_on(world, LAST)[:3]
    path = feature_file(world, "customer_activity_daily", LAST)
    original = path.read_bytes()
    table = pd.read_parquet(path)
    changed = (pd.to_datetime(table["feature_date"]).dt.date == LAST) & table["customer_id"].isin(skewed)
    table.loc[changed, "sessions_7d"] += 1000
    table.to_parquet(path, index=False)
    try:
        with pytest.raises(features.SkewDetected) as caught:
            features.check_skew(world.settings, "churn", LAST)
        message = str(caught.value)
        assert "['sessions_7d']" in message
        assert all(str(c) in message for c in skewed)
        recorded = world.warehouse.read(FEATURE_SKEW, {"use_case": "churn", "check_date": LAST}).set_index("feature")
        assert recorded.loc["sessions_7d", "mismatches"] == 3
        assert sorted(int(c) for c in recorded.loc["sessions_7d", "example_entities"].split(",")) == skewed
        assert recorded.drop(index="sessions_7d")["mismatches"].eq(0).all()

        # the operator's repair: re-run materialization for the day
        result = features.materialize(world.settings, LAST)
        assert features.check_skew(world.settings, "churn", LAST).mismatched_entities == 0
        assert "customer_activity" in result.rewritten
        store = features.feature_store(world.settings)
        online = store.get_online_features(
            features=store.get_feature_service("churn_v1"), entity_rows=[{"customer_id": c} for c in skewed]
        ).to_df().set_index("customer_id")
        assert online.loc[skewed, "sessions_7d"].tolist() == table[changed].set_index("customer_id").loc[
            skewed, "sessions_7d"].tolist()
    finally:
        path.write_bytes(original)
        features.materialize(world.settings, LAST)
    assert features.check_skew(world.settings, "churn", LAST).mismatched_entities == 0


def reingest_fixed_file(world: World, day: date, customer: int, extra_sessions: int) -> None:
    """Land a corrected ``activity`` file for ``day`` (``customer`` had ``extra_sessions`` more), ingest
    it again, and rebuild the features as the features DAG does (dbt, publish, apply)."""
    from nightshift.landing import Landing

    settings = world.settings
    landing = Landing(settings.landing_uri)
    (landed,) = landing.list_batch("activity", day)
    batch = pd.read_csv(io.BytesIO(landing.read_bytes(landed)), dtype=str, keep_default_na=False)
    rows = batch.index[batch["customer_id"].astype(int) == customer]
    assert len(rows) >= 1, f"customer {customer} has no activity on {day}"
    batch.loc[rows[0], "sessions"] = str(int(batch.loc[rows[0], "sessions"]) + extra_sessions)
    landing.write_bytes("activity", day, landed.uri.rsplit("/", 1)[-1], batch.to_csv(index=False).encode())
    now = datetime.combine(LAST + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=6)
    ingest_batch(settings, configured_source(settings, "activity"), day, now=now)
    features.run_dbt(settings, features.features_build("churn"))
    features.publish_dbt_tables(settings)
    features.apply_definitions(settings, "churn")


def test_features_run_for_a_past_day_after_a_fixed_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Day 2's activity file is fixed and ingested again while the online store holds day 3.

    The run for day 2 rewrites the online rows from day 2 on (day 3's rolling sums include day 2),
    keeps the online store at day 3, and its skew check compares both sides as of day 3, saying so
    in ``monitoring.feature_skew``. A fix of day 3 itself then refreshes day 3's online rows.
    """
    middle = START + timedelta(days=1)
    for world in build_world(tmp_path_factory.mktemp("past_day_world")):
        active = [set(world.warehouse.read(raw_table("activity"), {"batch_date": d})["customer_id"].astype(int))
                  for d in (middle, LAST)]
        customer = next(c for c in customers_on(world, LAST) if all(c in a for a in active))
        store = features.feature_store(world.settings)

        def online_sessions() -> float:
            return store.get_online_features(
                features=["customer_activity:sessions_7d"], entity_rows=[{"customer_id": customer}]
            ).to_df()["sessions_7d"].iloc[0]

        served = online_sessions()
        ends = {fv.name: fv.most_recent_end_time for fv in store.list_feature_views()}

        reingest_fixed_file(world, middle, customer, 50)
        result = features.materialize(world.settings, middle)
        report = features.check_skew(world.settings, "churn", middle)

        assert sorted(result.rewritten) == ["customer_activity", "customer_profile"]
        assert {fv.name: fv.most_recent_end_time for fv in store.list_feature_views()} == ends, "still day 3"
        assert online_sessions() == served + 50, "day 3's online row counts the fixed day-2 sessions"
        assert report.mismatched_entities == 0 and report.sampled == len(customers_on(world, LAST))
        assert report.compared_as_of == days.end_of_day(LAST).isoformat()
        recorded = world.warehouse.read(FEATURE_SKEW, {"use_case": "churn", "check_date": middle})
        assert (recorded["mismatches"] == 0).all()
        assert set(pd.to_datetime(recorded["compared_as_of"])) == {pd.Timestamp(days.end_of_day(LAST)).tz_localize(None)}

        reingest_fixed_file(world, LAST, customer, 7)
        assert sorted(features.materialize(world.settings, LAST).rewritten) == ["customer_activity", "customer_profile"]
        assert online_sessions() == served + 57, "re-running the latest day refreshes its online rows"
        assert features.check_skew(world.settings, "churn", LAST).mismatched_entities == 0


# --- point-in-time correctness on the real models ---------------------------------------------


def test_late_row_is_invisible_as_of_earlier_days(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An event of day 2 that lands with day 3's batch counts from the end of day 3, never for day 2.

    Policy: a feature row's timestamp (and created timestamp) is the end of the day its inputs
    landed, so a point-in-time read as of D sees only what had landed by the end of D.
    """
    for world in build_world(tmp_path_factory.mktemp("late_world")):
        customer = customers_on(world, LAST)[0]
        before = features.training_frame(world.settings, "churn_v1", spine([customer, customer], START)).copy()
        as_of = pd.concat([spine([customer], LAST - timedelta(days=1)), spine([customer], LAST)], ignore_index=True)
        baseline = features.training_frame(world.settings, "churn_v1", as_of)

        late = world.warehouse.read(raw_table("activity"), {"batch_date": LAST}).drop(columns="batch_date").head(1)
        late = late.assign(
            event_id="late-event-1",
            customer_id=customer,
            event_time=pd.Timestamp(LAST - timedelta(days=1)) + pd.Timedelta(hours=20),
            sessions=50,
        )
        partition = world.warehouse.read(raw_table("activity"), {"batch_date": LAST}).drop(columns="batch_date")
        world.warehouse.replace_partitions(
            [PartitionWrite(raw_table("activity"), {"batch_date": LAST}, pd.concat([partition, late]))]
        )
        features.run_dbt(world.settings, features.features_build("churn"))
        after = features.training_frame(world.settings, "churn_v1", as_of)

        assert after.loc[0, "sessions_7d"] == baseline.loc[0, "sessions_7d"], "a late row leaked into the past"
        assert after.loc[1, "sessions_7d"] == baseline.loc[1, "sessions_7d"] + 50, "the late row counts on arrival"
        assert features.training_frame(world.settings, "churn_v1", spine([customer, customer], START)).equals(before)


# --- a data team adds a feature ------------------------------------------------------------------


def test_adding_a_feature_in_a_new_service_version_needs_no_python_change(
    world: World, tmp_path: Path
) -> None:
    """The README's walk-through, step by step, on copies of dbt/ and feature_repo/."""
    dbt_project = tmp_path / "dbt"
    repo = tmp_path / "feature_repo"
    shutil.copytree(features.DBT_PROJECT, dbt_project, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(features.FEATURE_REPO, repo)

    # 1. the dbt model computes the new column
    model = dbt_project / "models" / "features" / "churn" / "customer_activity_daily.sql"
    last_column = "        ) as days_since_last_activity\n"
    text = model.read_text()
    assert last_column in text
    model.write_text(
        text.replace(
            last_column,
            last_column.rstrip("\n") + ",\n"
            "        cast(spend_28d / nullif(sessions_28d, 0) as double precision) as spend_per_session_28d\n",
        )
    )
    # 2. its YAML documents it
    schema = dbt_project / "models" / "features" / "churn" / "_churn_features.yml"
    documented = "      - name: days_since_last_activity\n"
    schema.write_text(
        schema.read_text().replace(
            documented,
            "      - name: spend_per_session_28d\n        description: Spend per session over 28 days.\n" + documented,
        )
    )
    # 3. the feature view declares it and a new service version serves it (churn_v1 lists its
    #    features by name, so it stays exactly as released)
    definitions = repo / "churn.py"
    declared = '        Field(name="days_since_last_activity", dtype=Float64),\n'
    text = definitions.read_text()
    text = text.replace(declared, declared + '        Field(name="spend_per_session_28d", dtype=Float64),\n')
    text += (
        "\n# Version 2 of the churn model's inputs: every feature of both views.\n"
        "churn_v2 = FeatureService(\n"
        "    name=\"churn_v2\",\n"
        "    features=[customer_activity_fv, customer_profile_fv],\n"
        "    tags={\"owner\": \"data-platform\", \"use_case\": \"churn\"},\n"
        ")\n"
    )
    definitions.write_text(text)

    # 4. build, apply, read
    features.run_dbt(world.settings, features.features_build("churn"), project_dir=dbt_project)
    features.apply_definitions(world.settings, "churn", repo_path=repo)
    ids = customers_on(world, LAST)
    v2 = features.training_frame(world.settings, "churn_v2", spine(ids, LAST))
    v1 = features.training_frame(world.settings, "churn_v1", spine(ids, LAST))

    assert "spend_per_session_28d" not in v1.columns
    assert features.feature_names(world.settings, "churn_v2") == features.feature_names(world.settings, "churn_v1")[
        :12
    ] + ["spend_per_session_28d"] + features.feature_names(world.settings, "churn_v1")[12:]
    expected = v2["spend_28d"] / v2["sessions_28d"].where(v2["sessions_28d"] != 0)
    pd.testing.assert_series_equal(v2["spend_per_session_28d"], expected, check_names=False)
    assert v2["spend_per_session_28d"].notna().sum() > len(ids) // 2
    # restore the shipped definitions for the other tests of this world
    features.run_dbt(world.settings, features.features_build("churn"))
    features.apply_definitions(world.settings, "churn")


# --- which day a run is for ----------------------------------------------------------------------


@dataclass
class FakeEvent:
    """What Airflow hands a task as a triggering asset event: only ``extra`` is read."""

    extra: dict


def test_candidate_days_come_from_triggering_events_latest_first() -> None:
    events = {
        "raw/customers": [FakeEvent({"batch_date": "2026-01-02"}), FakeEvent({"batch_date": "2026-01-03"})],
        "raw/activity": [FakeEvent({"batch_date": "2026-01-02"}), FakeEvent({})],
    }
    assert days.candidate_days(None, events) == [date(2026, 1, 3), date(2026, 1, 2)]
    assert days.candidate_days("2026-01-05", {}) == [date(2026, 1, 5)]
    with pytest.raises(ValueError, match="neither a logical date"):
        days.candidate_days(None, {})


def test_resolve_day_takes_the_latest_day_every_source_finished(world: World) -> None:
    later = LAST + timedelta(days=1)
    churn = use_case_of(world.settings, "churn")
    assert features.resolve_day(world.settings, churn, [later, LAST, START]) == LAST
    with pytest.raises(features.FeatureDataMissing) as missing:
        features.resolve_day(world.settings, churn, [later])
    assert str(missing.value).startswith(
        f"no raw data for ['activity', 'cancellations', 'customers'] on {later} (use case churn): run the "
        f"`ingest_activity`, `ingest_cancellations`, `ingest_customers` DAG for {later} first"
    )


def test_a_features_run_for_several_landed_days_announces_every_ready_day(world: World) -> None:
    """A late upstream lands three days at once: their ingest events merge into one features run,
    which builds D (the latest) and announces every ready day, so scoring scores each of them."""
    from collections import defaultdict
    from types import SimpleNamespace

    from airflow.dag_processing.dagbag import DagBag

    from nightshift.settings import PROJECT_ROOT

    later = LAST + timedelta(days=1)  # named by an event, but not every source has landed it
    events = {f"raw/{source}": [FakeEvent({"batch_date": str(START + timedelta(days=i))}) for i in range(DAYS)]
              for source in SOURCES}
    events["raw/activity"].append(FakeEvent({"batch_date": str(later)}))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "features.py"))
    assert not bag.import_errors, bag.import_errors
    skew_check = bag.dags["features_churn"].task_dict["skew_check"].python_callable
    outlet_events: dict = defaultdict(SimpleNamespace)

    skew_check("churn", str(LAST), ds=None, triggering_asset_events=events, outlet_events=outlet_events)

    extra = next(iter(outlet_events.values())).extra
    every_day = [str(START + timedelta(days=i)) for i in range(DAYS)]
    assert extra == {"feature_date": str(LAST), "feature_dates": every_day}
    # and the score DAG reads every one of them from the event
    assert days.candidate_days(None, {"features/churn": [FakeEvent(extra)]}, key="feature_date") == [
        date.fromisoformat(d) for d in reversed(every_day)]
