"""The features pipeline on the production profile, over real connections: raw tables and dbt
models in Postgres (dbt-postgres), Feast's SQL registry and Postgres offline store, the Redis
online store, chunked materialization and the skew check. Same code as the embedded profile."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightshift import features
from tests.unit.test_features import LAST, World, build_world, customers_on, spine

pytestmark = pytest.mark.production
# Redis database 13 on the first (or only) test process, 14 on the second: two pytest-xdist
# workers never empty each other's database.
REDIS_DB = 13 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database emptied before and after the test."""
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()


@pytest.fixture
def production_world(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[World]:
    yield from build_world(tmp_path, {"NIGHTSHIFT_WAREHOUSE_URI": postgres_url, "NIGHTSHIFT_REDIS_URL": redis_url})


def test_features_on_postgres_and_redis(production_world: World) -> None:
    import redis

    settings = production_world.settings
    assert settings.profile == "production"
    store = features.feature_store(settings)
    assert type(store.registry).__name__ == "SqlRegistry"
    assert store.config.online_store.type == "redis"

    ids = customers_on(production_world, LAST)
    table = production_world.warehouse.read("features.customer_activity_daily")
    assert len(table) == len(production_world.warehouse.read("raw.customers"))

    # online (Redis) equals offline (Postgres point-in-time) for every customer of the day
    report = features.check_skew(settings, "churn", LAST)
    assert report.sampled == len(ids) and report.mismatched_entities == 0
    assert redis.Redis.from_url(settings.redis_url).dbsize() >= len(ids)

    offline = features.training_frame(settings, "churn_v1", spine(ids, LAST)).set_index("customer_id")
    expected = table[table["feature_date"] == LAST].set_index("customer_id").loc[ids]
    assert offline.loc[ids, "sessions_28d"].tolist() == expected["sessions_28d"].tolist()


def test_a_flushed_redis_is_flagged_by_the_skew_check_and_restored_by_the_next_materialization(
    production_world: World,
) -> None:
    """Redis loses every key (a flush, a failover to an empty replica): the registry still says the
    online store holds D. The skew check flags the gap meanwhile; the next nightly materialization
    writes the store back, and online equals offline again."""
    import redis

    settings = production_world.settings
    ids = customers_on(production_world, LAST)
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    with pytest.raises(features.SkewDetected) as flagged:
        features.check_skew(settings, "churn", LAST)
    assert "sessions_28d" in str(flagged.value), str(flagged.value)

    features.materialize(settings, LAST)
    assert client.dbsize() >= len(ids)
    report = features.check_skew(settings, "churn", LAST)
    assert report.sampled == len(ids) and report.mismatched_entities == 0


def test_a_training_spine_with_a_date_column_comes_back_whole_and_in_order_from_postgres(production_world: World) -> None:
    """Feast's Postgres offline store uploads the entity frame, which takes no date column, and
    returns rows in its own order: the training spine (keys, event time, the label's date, a
    label) comes back unchanged, in its own order, with the features of each row."""
    settings = production_world.settings
    ids = customers_on(production_world, LAST)
    frame = spine(ids, LAST)
    frame = frame.assign(as_of_date=LAST, label=[i % 2 for i in range(len(frame))]).iloc[::-1].reset_index(drop=True)
    joined = features.training_frame(settings, "churn_v1", frame)
    assert joined[list(frame.columns)].equals(frame), "the spine's columns and order are kept"
    table = production_world.warehouse.read("features.customer_activity_daily")
    expected = table[table["feature_date"] == LAST].set_index("customer_id").loc[frame["customer_id"], "sessions_28d"]
    assert joined["sessions_28d"].tolist() == expected.tolist()
