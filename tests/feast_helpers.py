"""Throwaway Feast repos for the offline-store and batch-engine tests.

Builds, inside a test's ``tmp_path``: small Parquet histories (written with pandas), two feature
views over them, the feature services, and a ``FeatureStore`` configured in code (no YAML, no
``feast apply`` subprocess). Stock and Nightshift stores are built from the same definitions so a
test can compare them row for row. Never imported by library code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.types import Float64, Int64, String
from feast.value_type import ValueType
from pydantic import StrictStr

ASOF_OFFLINE_STORE = {"type": "nightshift.features.offline.AsofDuckDBOfflineStore"}
STOCK_DUCKDB_OFFLINE_STORE = {"type": "duckdb"}
STOCK_DUCKDB_CREATED_FILTER_OFFLINE_STORE = {"type": "tests.feast_helpers.CreatedFilterDuckDBOfflineStore"}


class CreatedFilterDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """Config of :class:`CreatedFilterDuckDBOfflineStore` (Feast looks it up by this name)."""

    type: StrictStr = "tests.feast_helpers.CreatedFilterDuckDBOfflineStore"


class CreatedFilterDuckDBOfflineStore(DuckDBOfflineStore):
    """Feast's stock DuckDB store with its ``filter_by_created_timestamp`` code switched on.

    Its retrieval (``get_historical_features_ibis``) implements the flag; only the class attribute
    that lets ``FeatureStore`` pass it is off. The reference for the flag's semantics.
    """

    supports_filter_by_created_timestamp = True
CHUNKED_ENGINE = {"type": "nightshift.features.engine.LatestPerKeyEngine"}

# The profile view's lookback: rows older than this before the entity timestamp are invisible.
PROFILE_TTL = timedelta(days=5)
PLANS = np.array(["free", "pro", "team"], dtype=object)


@dataclass(frozen=True)
class FeatureRepo:
    """The objects applied to one store, kept so tests can use them as feature lists."""

    store: FeatureStore
    activity_fv: FeatureView
    profile_fv: FeatureView
    churn_v1: FeatureService
    churn_spend_v1: FeatureService


def repo_objects(activity_path: Path, profile_path: Path) -> list[Any]:
    """Entity, both feature views and the two feature services over the given Parquet files.

    Built fresh per store: Feast mutates applied objects (timestamps, inferred fields).
    """
    # The customer, the only entity in these repos.
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    # Daily activity with a created timestamp: late corrections share the event timestamp.
    activity_source = FileSource(
        name="customer_activity_source",
        path=str(activity_path),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    # No ttl: any earlier row is visible, however old.
    activity_fv = FeatureView(
        name="customer_activity",
        entities=[customer],
        ttl=timedelta(0),
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="sessions", dtype=Int64),
            Field(name="spend", dtype=Float64),
        ],
        source=activity_source,
    )
    # Sparse profile snapshots, no created timestamp.
    profile_source = FileSource(
        name="customer_profile_source", path=str(profile_path), timestamp_field="event_timestamp"
    )
    # A snapshot is valid for PROFILE_TTL after its event timestamp.
    profile_fv = FeatureView(
        name="customer_profile",
        entities=[customer],
        ttl=PROFILE_TTL,
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="plan", dtype=String),
            Field(name="tenure_days", dtype=Int64),
        ],
        source=profile_source,
    )
    # Every feature of both views.
    churn_v1 = FeatureService(name="churn_v1", features=[activity_fv, profile_fv])
    # A projection: one of the activity view's features, all of the profile's.
    churn_spend_v1 = FeatureService(name="churn_spend_v1", features=[activity_fv[["spend"]], profile_fv])
    return [customer, activity_fv, profile_fv, churn_v1, churn_spend_v1]


def make_repo(
    root: Path,
    name: str,
    activity_path: Path,
    profile_path: Path,
    offline_store: dict[str, Any],
    batch_engine: dict[str, Any] | None = None,
    extra_objects: list[Any] | None = None,
) -> FeatureRepo:
    """A store with its own registry and SQLite online store under ``root/name``; definitions applied.

    ``batch_engine=None`` leaves the key out of the config, i.e. Feast's stock local engine.
    ``extra_objects`` are applied along with the standard ones.
    """
    repo_path = root / name
    repo_path.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "project": f"nightshift_{name}",
        "provider": "local",
        "registry": str(repo_path / "registry.db"),
        "offline_store": dict(offline_store),
        "online_store": {"type": "sqlite", "path": str(repo_path / "online_store.db")},
        "entity_key_serialization_version": 3,
        "repo_path": repo_path,
    }
    if batch_engine is not None:
        settings["batch_engine"] = dict(batch_engine)
    store = FeatureStore(config=RepoConfig(**settings))
    objects = repo_objects(activity_path, profile_path)
    store.apply(objects + list(extra_objects or []))
    _, activity_fv, profile_fv, churn_v1, churn_spend_v1 = objects
    return FeatureRepo(store, activity_fv, profile_fv, churn_v1, churn_spend_v1)


# --------------------------------------------------------------------------------------------------
# synthetic histories
# --------------------------------------------------------------------------------------------------
def activity_history(n_customers: int, start: str, n_days: int, seed: int = 0) -> pd.DataFrame:
    """One row per customer per day at midnight (about 60 % present), plus tie rows.

    A correction repeats a row's (customer, event_timestamp) with a later ``created`` and values
    100 higher; an uncreated row repeats one with a null ``created`` and values -1. Picking the wrong
    row of a tie shows in the values. Rows are shuffled: file order means nothing.
    """
    rng = np.random.default_rng(seed)
    days = pd.date_range(start, periods=n_days, freq="D")
    customer_id = np.repeat(np.arange(1, n_customers + 1, dtype=np.int64), n_days)
    day = np.tile(days.values, n_customers)
    keep = rng.random(len(customer_id)) < 0.6
    customer_id, day = customer_id[keep], day[keep]
    n = len(customer_id)
    sessions = pd.array(rng.integers(0, 20, n), dtype="Int64")
    sessions[rng.random(n) < 0.05] = pd.NA
    spend = rng.normal(50, 10, n).round(2)
    spend[rng.random(n) < 0.05] = np.nan
    history = pd.DataFrame(
        {
            "customer_id": customer_id,
            "event_timestamp": day,
            "created": day + (3600 + rng.integers(0, 3600, n)).astype("timedelta64[s]"),
            "sessions": sessions,
            "spend": spend,
        }
    )
    corrections = history.sample(frac=0.15, random_state=seed).copy()
    corrections["created"] += pd.to_timedelta(rng.integers(60, 36_000, len(corrections)), unit="s")
    corrections["sessions"] = corrections["sessions"] + 100
    corrections["spend"] = corrections["spend"] + 100
    # Rows without a created timestamp lose every tie (Feast sorts created descending, nulls last).
    uncreated = history.sample(frac=0.03, random_state=seed + 1).copy()
    uncreated["created"] = pd.NaT
    uncreated["sessions"] = -1
    uncreated["spend"] = -1.0
    history = pd.concat([history, corrections, uncreated], ignore_index=True)
    return history.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def profile_history(n_customers: int, start: str, n_days: int, seed: int = 1) -> pd.DataFrame:
    """One to three snapshots per customer at random seconds over ``n_days``: the 5-day ttl often cuts."""
    rng = np.random.default_rng(seed)
    base = pd.Timestamp(start)
    rows = []
    for customer_id in range(1, n_customers + 1):
        for offset in np.sort(rng.choice(n_days * 86_400, size=int(rng.integers(1, 4)), replace=False)):
            rows.append(
                (customer_id, base + pd.Timedelta(seconds=int(offset)), rng.choice(PLANS), int(rng.integers(0, 3000)))
            )
    history = pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "plan", "tenure_days"])
    return history.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def entity_frame(
    activity: pd.DataFrame, profile: pd.DataFrame, n_random: int, n_customers: int, start: str, end: str, seed: int = 2
) -> pd.DataFrame:
    """Entity rows that reach every rule of the point-in-time join.

    Random rows over ``[start, end)`` for customers ``1 .. n_customers + 5`` (the last five have no
    history), plus rows exactly at feature timestamps, exactly ``PROFILE_TTL`` after a snapshot and one
    microsecond later, one microsecond before a feature row, and repeated (customer, timestamp) pairs.
    Carries a ``label`` and a unique ``row_id``.
    """
    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    random_rows = pd.DataFrame(
        {
            "customer_id": rng.integers(1, n_customers + 6, n_random).astype(np.int64),
            "event_timestamp": t0
            + pd.to_timedelta(rng.integers(0, int((t1 - t0).total_seconds()), n_random), unit="s"),
        }
    )
    at_activity = activity.sample(n=40, random_state=seed)[["customer_id", "event_timestamp"]]
    snapshots = profile.sample(n=30, random_state=seed)[["customer_id", "event_timestamp"]]
    boundary_rows = [
        at_activity,
        at_activity.assign(event_timestamp=at_activity["event_timestamp"] - pd.Timedelta(microseconds=1)),
        snapshots,
        snapshots.assign(event_timestamp=snapshots["event_timestamp"] + PROFILE_TTL),
        snapshots.assign(event_timestamp=snapshots["event_timestamp"] + PROFILE_TTL + pd.Timedelta(microseconds=1)),
    ]
    entities = pd.concat([random_rows, *boundary_rows], ignore_index=True)
    entities = pd.concat([entities, entities.sample(n=20, random_state=seed)], ignore_index=True)
    entities["event_timestamp"] = entities["event_timestamp"].astype("datetime64[us]")
    entities["label"] = rng.integers(0, 2, len(entities)).astype(np.int64)
    entities["row_id"] = np.arange(len(entities), dtype=np.int64)
    return entities.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def online_values(repo: FeatureRepo, customer_ids: list[int]) -> pd.DataFrame:
    """``get_online_features`` for every feature of ``churn_v1``, one row per customer id."""
    rows = [{"customer_id": customer_id} for customer_id in customer_ids]
    return repo.store.get_online_features(features=repo.churn_v1, entity_rows=rows).to_df()


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as one Parquet file at ``path`` (parents created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


# --------------------------------------------------------------------------------------------------
# comparing results
# --------------------------------------------------------------------------------------------------
def normalized(frame: pd.DataFrame, sort_by: list[str]) -> pd.DataFrame:
    """Rows sorted by ``sort_by``; timestamps as UTC; missing values (None, NaN, NA, NaT) as None.

    Numbers become floats, so Int64 vs float64 (a null in an integer column) compares equal.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = pd.to_datetime(values, utc=True)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            values = values.astype("float64")
        out[column] = values
    out = out.sort_values(sort_by, kind="stable").reset_index(drop=True)
    return out.astype(object).where(out.notna(), None)


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, sort_by: list[str]) -> None:
    """Same columns (any order) and, after ``normalized``, the same values row for row."""
    assert sorted(actual.columns) == sorted(expected.columns)
    assert len(actual) == len(expected)
    left = normalized(actual, sort_by)
    right = normalized(expected, sort_by)[list(left.columns)]
    mismatched = {}
    for column in left.columns:
        same = (left[column] == right[column]) | (left[column].isna() & right[column].isna())
        if not same.all():
            mismatched[column] = ~same
    if mismatched:
        column, diff = next(iter(mismatched.items()))
        sample = pd.concat(
            [left.loc[diff, sort_by + [column]], right.loc[diff, [column]].add_suffix("_expected")], axis=1
        )
        counts = {c: int(d.sum()) for c, d in mismatched.items()}
        raise AssertionError(f"mismatched values per column: {counts}; first rows of {column!r}:\n{sample.head(5)}")
