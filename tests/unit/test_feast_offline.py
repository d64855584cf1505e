"""AsofDuckDBOfflineStore: Feast's point-in-time join, answered by one DuckDB ASOF JOIN.

The reference is Feast's stock ``duckdb`` (ibis) offline store, fed the same repo, entity rows and
feature selection; results must match row for row. Feast's stock ``file`` (dask) store is not used
as a reference because it is wrong on exactly the cases checked here (seen with Feast 0.67 and
dask 2026.8 on the data of these tests):

* entity rows whose key has feature rows, none of them inside ``[ts - ttl, ts]`` (an entity row
  earlier than any feature row, or one the ttl cuts) are dropped from the result instead of getting
  null features (``_filter_ttl`` filters the left-joined frame);
* entity rows sharing keys and timestamp collapse into one, whatever their other columns
  (``_drop_duplicates``);
* ties on the event timestamp are not resolved by the created timestamp: its sort by created, then a
  second distributed sort by event timestamp, loses the created order, so a stale or even a
  null-created row can win.

Every test builds throwaway repos in ``tmp_path`` with ``tests/feast_helpers.py``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64
from feast.value_type import ValueType

from tests.feast_helpers import (
    ASOF_OFFLINE_STORE,
    PROFILE_TTL,
    STOCK_DUCKDB_CREATED_FILTER_OFFLINE_STORE,
    STOCK_DUCKDB_OFFLINE_STORE,
    FeatureRepo,
    activity_history,
    assert_same_rows,
    entity_frame,
    make_repo,
    normalized,
    profile_history,
    write_parquet,
)

N_CUSTOMERS = 40
SORT_BY = ["customer_id", "event_timestamp", "row_id"]
FEATURE_COLUMNS = ["sessions", "spend", "plan", "tenure_days"]


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Random histories, entity rows reaching every join rule, and a Nightshift and a stock store over them."""
    root = tmp_path_factory.mktemp("feast_parity")
    activity = activity_history(N_CUSTOMERS, "2024-01-01", 30)
    profile = profile_history(N_CUSTOMERS, "2023-12-20", 40)
    activity_path = write_parquet(activity, root / "data" / "customer_activity.parquet")
    profile_path = write_parquet(profile, root / "data" / "customer_profile.parquet")
    return {
        "activity": activity,
        "profile": profile,
        "entities": entity_frame(activity, profile, 150, N_CUSTOMERS, "2023-12-28", "2024-02-05"),
        "asof": make_repo(root, "asof", activity_path, profile_path, ASOF_OFFLINE_STORE),
        "stock": make_repo(root, "stock", activity_path, profile_path, STOCK_DUCKDB_OFFLINE_STORE),
    }


def historical(
    repo: FeatureRepo, entities: pd.DataFrame, features: str | list[str], full_names: bool = False
) -> pd.DataFrame:
    """``get_historical_features(...).to_df()``; a str names a feature service of the repo's store."""
    selection = repo.store.get_feature_service(features) if isinstance(features, str) else features
    # Feast's ibis store converts a string timestamp column in the caller's frame; give each call a copy
    return repo.store.get_historical_features(
        entity_df=entities.copy(), features=selection, full_feature_names=full_names
    ).to_df()


# --------------------------------------------------------------------------------------------------
# 1. parity with the stock duckdb store
# --------------------------------------------------------------------------------------------------
def test_parity_entities_reach_every_rule(parity: dict[str, Any]) -> None:
    """Guards the fixture: the entity rows hit each rule the parity test claims to compare."""
    entities, activity, profile = parity["entities"], parity["activity"], parity["profile"]
    activity_pairs = entities.merge(activity, on="customer_id", suffixes=("", "_feature"))
    activity_pairs = activity_pairs[activity_pairs["event_timestamp_feature"] <= activity_pairs["event_timestamp"]]
    latest = activity_pairs.groupby("row_id")["event_timestamp_feature"].transform("max")
    winners = activity_pairs[activity_pairs["event_timestamp_feature"] == latest].groupby("row_id")["created"]
    profile_pairs = entities.merge(profile, on="customer_id", suffixes=("", "_feature"))
    profile_pairs = profile_pairs[profile_pairs["event_timestamp_feature"] <= profile_pairs["event_timestamp"]]
    profile_age = profile_pairs.groupby("row_id").apply(
        lambda g: (g["event_timestamp"] - g["event_timestamp_feature"]).min(), include_groups=False
    )
    known = entities["customer_id"] <= N_CUSTOMERS

    assert (~known).sum() >= 5, "entity rows for keys without any feature row"
    assert (known & ~entities["row_id"].isin(activity_pairs["row_id"])).sum() >= 5, "rows before any feature row"
    assert (winners.size() > 1).sum() >= 10, "rows whose latest feature row is a tie"
    assert (winners.apply(lambda c: c.isna().any()) & (winners.size() > 1)).sum() >= 1, "ties with a null created"
    assert (profile_age > PROFILE_TTL).sum() >= 10, "rows whose latest profile the ttl cuts"
    assert (profile_age == PROFILE_TTL).sum() >= 10, "rows exactly ttl after a profile"
    assert entities.duplicated(["customer_id", "event_timestamp"]).sum() >= 10, "duplicate entity rows"


@pytest.mark.parametrize("full_names", [False, True], ids=["short_names", "full_names"])
@pytest.mark.parametrize(
    "features",
    [
        "churn_v1",
        # the service's projection: one of customer_activity's two features
        "churn_spend_v1",
        ["customer_profile:tenure_days", "customer_activity:sessions"],
    ],
    ids=["service", "projection", "refs"],
)
def test_matches_stock_duckdb_store(parity: dict[str, Any], features: str | list[str], full_names: bool) -> None:
    ours = historical(parity["asof"], parity["entities"], features, full_names)
    stock = historical(parity["stock"], parity["entities"], features, full_names)
    assert list(ours.columns) == list(stock.columns)
    assert_same_rows(ours, stock, SORT_BY)


def test_a_source_unique_on_key_and_event_time_skips_the_created_tie_break_and_matches_stock(
    parity: dict[str, Any], tmp_path: Path
) -> None:
    """Where no two rows share (key, event time), as in a daily model, the ASOF compares event times
    alone; where late corrections share them, the created tie-break stays. Both match stock."""
    unique = parity["activity"].drop_duplicates(["customer_id", "event_timestamp"])
    assert len(unique) < len(parity["activity"]), "the parity history must hold ties for this test to mean anything"
    activity_path = write_parquet(unique, tmp_path / "data" / "customer_activity.parquet")
    profile_path = write_parquet(parity["profile"], tmp_path / "data" / "customer_profile.parquet")
    asof = make_repo(tmp_path, "asof", activity_path, profile_path, ASOF_OFFLINE_STORE)
    stock = make_repo(tmp_path, "stock", activity_path, profile_path, STOCK_DUCKDB_OFFLINE_STORE)

    job = asof.store.get_historical_features(entity_df=parity["entities"].copy(),
                                             features=asof.store.get_feature_service("churn_v1"))
    assert_same_rows(job.to_df(), historical(stock, parity["entities"], "churn_v1"), SORT_BY)
    assert "__tc" not in job.to_sql(), "a unique source still paid the (event, created) key"

    tied = parity["asof"].store.get_historical_features(entity_df=parity["entities"].copy(),
                                                        features=parity["asof"].store.get_feature_service("churn_v1"))
    assert "__tc" in tied.to_sql(), "a source with ties on (key, event time) lost its created tie-break"


def _one_time_spines(parity: dict[str, Any]) -> list[pd.DataFrame]:
    """Nightly-scoring spines: every customer (and five without history, and repeated rows) at one
    timestamp T; T exactly at feature rows (ties on the event time), exactly ``PROFILE_TTL`` after a
    snapshot and one microsecond later, and at a random instant."""
    activity, profile = parity["activity"], parity["profile"]
    tied = activity[activity.duplicated(["customer_id", "event_timestamp"], keep=False)]["event_timestamp"].iloc[0]
    snapshot = profile["event_timestamp"].iloc[len(profile) // 2]
    times = [tied, snapshot + PROFILE_TTL, snapshot + PROFILE_TTL + pd.Timedelta(microseconds=1),
             pd.Timestamp("2024-01-17 13:14:15.123456")]
    customers = np.concatenate([np.arange(1, N_CUSTOMERS + 6), np.arange(1, 11)]).astype(np.int64)
    return [pd.DataFrame({"customer_id": customers, "event_timestamp": pd.Timestamp(t),
                          "row_id": np.arange(len(customers), dtype=np.int64)})
            .astype({"event_timestamp": "datetime64[us]"}).sample(frac=1.0, random_state=3).reset_index(drop=True)
            for t in times]


@pytest.mark.parametrize("features", ["churn_v1", ["customer_profile:tenure_days", "customer_activity:sessions"]],
                         ids=["service", "refs"])
def test_one_timestamp_spine_takes_the_latest_row_per_key_and_matches_stock(parity: dict[str, Any],
                                                                            features: str | list[str]) -> None:
    """A spine whose rows share one timestamp (a nightly score) is answered by the latest row per key
    inside the ttl window (a hash aggregate, no ASOF join): still row for row what stock Feast gives,
    ties on the event time broken by the created time."""
    for spine in _one_time_spines(parity):
        selection = parity["asof"].store.get_feature_service(features) if isinstance(features, str) else features
        job = parity["asof"].store.get_historical_features(entity_df=spine.copy(), features=selection)
        assert "arg_max" in job.to_sql() and "ASOF" not in job.to_sql()
        ours = job.to_df()
        stock = historical(parity["stock"], spine, features)
        assert list(ours.columns) == list(stock.columns)
        assert ours["row_id"].tolist() == spine["row_id"].tolist(), "rows come back in the spine's order"
        assert_same_rows(ours, stock, ["customer_id", "row_id"])
        assert ours[FEATURE_COLUMNS[:1] if "sessions" in ours else ["tenure_days"]].notna().any().all()


def test_a_few_entities_read_only_their_own_feature_rows(parity: dict[str, Any]) -> None:
    """A scoring chunk of three customers reads their feature rows, not the window's: the key filter
    is on the source's own column (unqualified, `customer_id = customer_id` bound to the subquery's
    column and kept every row, so each call cost as much as the whole population's)."""
    from nightshift.features import offline

    assert parity["activity"]["customer_id"].nunique() > 3, "the window holds other customers' rows to leave out"
    spine = _one_time_spines(parity)[3].head(3)
    for features in ("churn_v1", ["customer_activity:sessions"]):
        selection = parity["asof"].store.get_feature_service(features) if isinstance(features, str) else features
        for one_time in (True, False):
            entities = spine if one_time else spine.assign(
                event_timestamp=spine["event_timestamp"] + pd.to_timedelta(np.arange(len(spine)), unit="h"))
            job = parity["asof"].store.get_historical_features(entity_df=entities.copy(), features=selection)
            con = offline._connect(job._config)
            try:
                sql, _ = job._build(con)
                ctes = sql[:sql.index(" SELECT e.")]
                view = "__fv1" if isinstance(features, str) else "__fv0"  # churn_v1: profile, then activity
                keys = con.sql(f"{ctes} SELECT DISTINCT __k0 FROM {view}").fetchall()
            finally:
                con.close()
            assert {k for (k,) in keys} <= set(spine["customer_id"]), "rows of other customers were read"
            assert keys, "the three customers' own rows were filtered out"


def test_projection_returns_only_the_selected_features(parity: dict[str, Any]) -> None:
    short = historical(parity["asof"], parity["entities"], "churn_spend_v1")
    full = historical(parity["asof"], parity["entities"], "churn_spend_v1", full_names=True)
    entity_columns = list(parity["entities"].columns)
    assert list(short.columns) == entity_columns + ["spend", "plan", "tenure_days"]
    assert list(full.columns) == entity_columns + [
        "customer_activity__spend",
        "customer_profile__plan",
        "customer_profile__tenure_days",
    ]
    # the correction rows (values +100) must win their ties somewhere, or the comparison proves little
    assert (short["spend"] > 100).sum() >= 10


# --------------------------------------------------------------------------------------------------
# 2. known answers
# --------------------------------------------------------------------------------------------------
T = pd.Timestamp
MICROSECOND = pd.Timedelta(microseconds=1)
# Customer 1's activity: day 1, 3 and 5, and two more rows tied with day 3's event timestamp;
# customer 3: one three-way tie. The winner of a tie is first in the file for customer 1 and last
# for customer 3, so no fixed file position can stand in for the tie-break.
KNOWN_ACTIVITY = pd.DataFrame(
    [
        (1, T("2024-01-05"), T("2024-01-05 01:00"), 5, 5.0),
        (1, T("2024-01-03"), T("2024-01-03 05:00"), 33, 33.0),  # latest created: wins day 3
        (1, T("2024-01-03"), pd.NaT, 333, 333.0),  # no created timestamp: loses every tie
        (1, T("2024-01-03"), T("2024-01-03 01:00"), 3, 3.0),
        (1, T("2024-01-01"), T("2024-01-01 01:00"), 1, 1.0),
        (3, T("2024-01-01"), T("2024-01-01 01:00"), 7, 7.0),
        (3, T("2024-01-01"), pd.NaT, 777, 777.0),
        (3, T("2024-01-01"), T("2024-01-01 02:00"), 77, 77.0),  # latest created: wins
    ],
    columns=["customer_id", "event_timestamp", "created", "sessions", "spend"],
)
# Profiles valid for PROFILE_TTL (5 days); customer 1 has a second one far in the future.
KNOWN_PROFILE = pd.DataFrame(
    [
        (1, T("2024-01-20"), "team", 30),
        (1, T("2024-01-02 12:00"), "pro", 10),
        (3, T("2024-01-02 12:00"), "free", 1),
    ],
    columns=["customer_id", "event_timestamp", "plan", "tenure_days"],
)
# (customer_id, event_timestamp) -> (sessions, spend, plan, tenure_days) expected.
KNOWN_ANSWERS = [
    ((1, T("2024-01-04")), (33, 33.0, "pro", 10)),  # day 3's latest-created row, not day 5's
    ((1, T("2024-01-03")), (33, 33.0, "pro", 10)),  # a feature row at exactly the entity time is visible
    ((1, T("2024-01-03") - MICROSECOND), (1, 1.0, "pro", 10)),  # one microsecond before it: not yet
    ((1, T("2023-12-31 12:00")), (None, None, None, None)),  # earlier than any feature row
    ((2, T("2024-01-04")), (None, None, None, None)),  # no feature rows for the key at all
    ((1, T("2024-01-07 12:00")), (5, 5.0, "pro", 10)),  # profile exactly ttl old: still visible
    ((1, T("2024-01-07 12:00") + MICROSECOND), (5, 5.0, None, None)),  # one microsecond older: gone
    ((3, T("2024-01-07 12:00")), (77, 77.0, "free", 1)),
    ((3, T("2024-01-07 12:00") + MICROSECOND), (77, 77.0, None, None)),
    ((1, T("2024-01-20")), (5, 5.0, "team", 30)),
    ((1, T("2024-02-09")), (5, 5.0, None, None)),  # no ttl on activity: any age is visible
]


@pytest.fixture(scope="module")
def known_answer_repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FeatureRepo]:
    root = tmp_path_factory.mktemp("feast_known_answers")
    activity_path = write_parquet(KNOWN_ACTIVITY, root / "data" / "customer_activity.parquet")
    profile_path = write_parquet(KNOWN_PROFILE, root / "data" / "customer_profile.parquet")
    return {
        "asof": make_repo(root, "asof", activity_path, profile_path, ASOF_OFFLINE_STORE),
        # the stock store must give the same answers: they are Feast's semantics, not ours
        "stock_duckdb": make_repo(root, "stock", activity_path, profile_path, STOCK_DUCKDB_OFFLINE_STORE),
    }


@pytest.mark.parametrize("store", ["asof", "stock_duckdb"])
def test_known_answers(known_answer_repos: dict[str, FeatureRepo], store: str) -> None:
    entities = pd.DataFrame([key for key, _ in KNOWN_ANSWERS], columns=["customer_id", "event_timestamp"])
    entities["event_timestamp"] = entities["event_timestamp"].dt.tz_localize("UTC")
    entities["row_id"] = np.arange(len(entities))
    expected = entities.join(pd.DataFrame([answer for _, answer in KNOWN_ANSWERS], columns=FEATURE_COLUMNS))

    result = historical(known_answer_repos[store], entities, "churn_v1")

    assert_same_rows(result, expected, SORT_BY)


# --------------------------------------------------------------------------------------------------
# 3. row order, row count, entity columns
# --------------------------------------------------------------------------------------------------
def test_rows_come_back_in_entity_order_with_entity_columns_untouched(parity: dict[str, Any]) -> None:
    # tz-aware UTC on purpose: FeatureStore itself localizes naive entity timestamps before any offline
    # store sees them, so only an already-UTC column can come back bit for bit.
    entities = parity["entities"].assign(event_timestamp=parity["entities"]["event_timestamp"].dt.tz_localize("UTC"))
    # a scrambled index: "entity order" means position, the index labels are not used
    entities.index = np.random.default_rng(3).permutation(len(entities)) + 1000
    before = entities.copy()

    result = parity["asof"].store.get_historical_features(entity_df=entities, features=parity["asof"].churn_v1).to_df()

    pd.testing.assert_frame_equal(entities, before)  # the caller's frame is not modified
    assert len(result) == len(entities)
    assert list(result.columns) == list(entities.columns) + FEATURE_COLUMNS
    pd.testing.assert_frame_equal(result[list(entities.columns)], entities.reset_index(drop=True))
    # and the features are those of each row, not of a row re-sorted into its place
    stock = historical(parity["stock"], entities.reset_index(drop=True), "churn_v1")
    assert_same_rows(result, stock, SORT_BY)


# --------------------------------------------------------------------------------------------------
# 4. a declared column missing from the source
# --------------------------------------------------------------------------------------------------
def test_missing_source_column_is_named(tmp_path: Path, parity: dict[str, Any]) -> None:
    activity_path = write_parquet(parity["activity"], tmp_path / "data" / "customer_activity.parquet")
    profile_path = write_parquet(parity["profile"], tmp_path / "data" / "customer_profile.parquet")
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    # declares `discount`, which the activity file does not have
    discounts_fv = FeatureView(
        name="customer_discounts",
        entities=[customer],
        ttl=timedelta(days=3),
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="discount", dtype=Float64),
            Field(name="sessions", dtype=Int64),
        ],
        source=FileSource(name="customer_discounts_source", path=str(activity_path), timestamp_field="event_timestamp"),
    )
    repo = make_repo(tmp_path, "asof", activity_path, profile_path, ASOF_OFFLINE_STORE, extra_objects=[discounts_fv])

    # names the view and exactly the missing column (not `sessions`, which is there)
    with pytest.raises(ValueError, match=r"customer_discounts.*\['discount'\]"):
        historical(repo, parity["entities"], ["customer_discounts:discount", "customer_discounts:sessions"])


# --------------------------------------------------------------------------------------------------
# edge cases
# --------------------------------------------------------------------------------------------------
def test_empty_entity_frame_gives_an_empty_result(parity: dict[str, Any]) -> None:
    empty = parity["entities"].iloc[:0]
    stock = historical(parity["stock"], empty, "churn_v1")
    result = historical(parity["asof"], empty, "churn_v1")
    assert result.empty and list(result.columns) == list(stock.columns)


# --------------------------------------------------------------------------------------------------
# 5. timestamp columns of any physical type, and filter_by_created_timestamp
# --------------------------------------------------------------------------------------------------
def test_reads_after_feasts_own_offline_write_stores_timestamps_as_text(tmp_path: Path, parity: dict[str, Any]) -> None:
    """``write_to_offline_store`` rewrites a tz-aware Parquet file with its timestamps as text; reads go on.

    Same rows and repo in both stores, same write through Feast; the stock store is the reference.
    """
    activity = parity["activity"].assign(
        event_timestamp=parity["activity"]["event_timestamp"].dt.tz_localize("UTC"),
        created=parity["activity"]["created"].dt.tz_localize("UTC"),
    )
    late = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "event_timestamp": [T("2024-02-01", tz="UTC"), T("2024-02-02", tz="UTC")],
            "created": [T("2024-02-01 01:00", tz="UTC"), pd.NaT],
            "sessions": [555, 666],
            "spend": [5.5, 6.5],
        }
    ).astype({"created": "datetime64[ns, UTC]"})
    entities = parity["entities"]
    repos = {}
    for name, offline_store in (("asof", ASOF_OFFLINE_STORE), ("stock", STOCK_DUCKDB_OFFLINE_STORE)):
        activity_path = write_parquet(activity, tmp_path / name / "data" / "customer_activity.parquet")
        profile_path = write_parquet(parity["profile"], tmp_path / name / "data" / "customer_profile.parquet")
        repos[name] = make_repo(tmp_path / name, name, activity_path, profile_path, offline_store)
        repos[name].store.write_to_offline_store("customer_activity", late[list(activity.columns)])
        # the condition this test is about: Feast left the timestamps as text
        types = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{activity_path}')").df().set_index("column_name")
        assert types.loc[["event_timestamp", "created"], "column_type"].tolist() == ["VARCHAR", "VARCHAR"]

    assert_same_rows(historical(repos["asof"], entities, "churn_v1"), historical(repos["stock"], entities, "churn_v1"),
                     SORT_BY)
    after = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": T("2024-02-03", tz="UTC")})
    assert historical(repos["asof"], after, "churn_v1")["sessions"].tolist() == [555, 666], "the written rows are the latest"


@pytest.fixture(scope="module")
def created_filter_stock(tmp_path_factory: pytest.TempPathFactory, parity: dict[str, Any]) -> FeatureRepo:
    """Feast's stock DuckDB retrieval with the created-timestamp filter allowed, over the parity files."""
    root = tmp_path_factory.mktemp("feast_created_filter")
    activity_path = write_parquet(parity["activity"], root / "data" / "customer_activity.parquet")
    profile_path = write_parquet(parity["profile"], root / "data" / "customer_profile.parquet")
    return make_repo(root, "stock", activity_path, profile_path, STOCK_DUCKDB_CREATED_FILTER_OFFLINE_STORE)


@pytest.mark.parametrize("features", ["churn_v1", "churn_spend_v1"], ids=["service", "projection"])
def test_filter_by_created_timestamp_matches_stock(
    parity: dict[str, Any], created_filter_stock: FeatureRepo, features: str
) -> None:
    def read(repo: FeatureRepo) -> pd.DataFrame:
        return repo.store.get_historical_features(
            entity_df=parity["entities"].copy(),
            features=repo.store.get_feature_service(features),
            filter_by_created_timestamp=True,
        ).to_df()

    ours, stock = read(parity["asof"]), read(created_filter_stock)
    unfiltered = historical(parity["asof"], parity["entities"], features)

    assert list(ours.columns) == list(stock.columns)
    assert_same_rows(ours, stock, SORT_BY)
    # the filter must change answers on these rows, or the comparison proves little
    changed = ~normalized(ours, SORT_BY)["spend"].eq(normalized(unfiltered, SORT_BY)["spend"])
    assert changed.sum() >= 10


def test_filter_by_created_timestamp_known_answers(known_answer_repos: dict[str, FeatureRepo]) -> None:
    """Customer 1's day-3 rows were created at 01:00 and 05:00 (and one never): as of 03:00 only the 01:00 row counts."""
    entities = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 3],
            "event_timestamp": [T("2024-01-03 03:00"), T("2024-01-03 06:00"), T("2024-01-03 00:30"), T("2024-01-01 01:30")],
            "row_id": [0, 1, 2, 3],
        }
    )
    entities["event_timestamp"] = entities["event_timestamp"].dt.tz_localize("UTC")
    result = known_answer_repos["asof"].store.get_historical_features(
        entity_df=entities, features=known_answer_repos["asof"].store.get_feature_service("churn_v1"),
        filter_by_created_timestamp=True,
    ).to_df()
    # 00:30: day 3's rows are not created yet and day 1's (created 01:00 on day 1) counts; on customer 3,
    # as of 01:30 only the 01:00 row of the three-way tie exists
    assert result.sort_values("row_id")["sessions"].tolist() == [3, 33, 1, 7]
