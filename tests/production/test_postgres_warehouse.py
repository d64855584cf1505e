"""The Postgres warehouse over a real connection, in a database the test creates and drops."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from nightshift.ingest import ingest_batch
from nightshift.landing import Landing
from nightshift.settings import Settings
from nightshift.usecase import SourceConfig
from nightshift.warehouse import VALIDATION_RUNS, PartitionWrite, PostgresWarehouse, Warehouse, WarehouseError
from tests.conftest import csv_bytes
from tests.unit.test_validation import HEADER, good_row, with_value

pytestmark = pytest.mark.production
DAY = date(2026, 1, 3)
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)


def pg_settings(tmp_path: Path, url: str) -> Settings:
    return Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path), "NIGHTSHIFT_WAREHOUSE_URI": url})


def test_ingest_into_postgres_is_typed_and_idempotent(tmp_path: Path, postgres_url: str) -> None:
    settings = pg_settings(tmp_path, postgres_url)
    assert settings.profile == "production"
    Landing(settings.landing_uri).write_bytes("activity", DAY, "a.csv", csv_bytes(HEADER, [good_row(1), with_value(2, "sessions", "x")]))
    source = SourceConfig("activity", "activity")
    ingest_batch(settings, source, DAY, NOW)
    ingest_batch(settings, source, DAY, NOW)
    warehouse = Warehouse.from_uri(postgres_url)
    assert isinstance(warehouse, PostgresWarehouse)
    raw = warehouse.read("raw.activity")
    assert raw["event_id"].tolist() == ["a-1"] and raw["batch_date"].tolist() == [DAY]
    assert raw["event_time"].tolist() == [pd.Timestamp("2026-01-03T01:15:00")]
    quarantine = warehouse.read("quarantine.activity")
    assert quarantine[["event_id", "sessions", "quarantine_reasons"]].values.tolist() == [
        ["a-2", "x", "expect_column_values_to_be_of_type(sessions)"]
    ]
    assert warehouse.read(VALIDATION_RUNS)[["landed_rows", "accepted_rows", "quarantined_rows"]].values.tolist() == [[2, 1, 1]]
    assert {"raw.activity", "quarantine.activity", VALIDATION_RUNS} <= set(warehouse.tables())


def test_failure_mid_write_rolls_back_every_partition(postgres_url: str) -> None:
    warehouse = Warehouse.from_uri(postgres_url)
    key = {"batch_date": DAY}
    old = pd.DataFrame({"x": pd.array([1], dtype="Int64")})
    warehouse.replace_partitions([PartitionWrite("raw.a", key, old), PartitionWrite("raw.b", key, old)])
    new = pd.DataFrame({"x": pd.array([2, 3], dtype="Int64")})
    real_copy = PostgresWarehouse._copy
    calls = {"n": 0}

    def connection_drops_on_second_table(self, cur, table, frame):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("server closed the connection unexpectedly")
        return real_copy(self, cur, table, frame)

    with mock.patch.object(PostgresWarehouse, "_copy", connection_drops_on_second_table), pytest.raises(ConnectionError):
        warehouse.replace_partitions([PartitionWrite("raw.a", key, new), PartitionWrite("raw.b", key, new)])
    assert warehouse.read("raw.a")["x"].tolist() == [1] and warehouse.read("raw.b")["x"].tolist() == [1]
    warehouse.replace_partitions([PartitionWrite("raw.a", key, new), PartitionWrite("raw.b", key, new)])
    assert sorted(warehouse.read("raw.b")["x"]) == [2, 3], "the retry succeeds"


def test_unreachable_postgres_says_what_to_check() -> None:
    warehouse = Warehouse.from_uri("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(WarehouseError, match="cannot reach the Postgres warehouse.*NIGHTSHIFT_WAREHOUSE_URI"):
        warehouse.read("raw.activity")
