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
    rows = [good_row(1), with_value(2, "sessions", "x"), *map(good_row, range(3, 7))]  # 1 bad in 6: under the batch limit
    Landing(settings.landing_uri).write_bytes("activity", DAY, "a.csv", csv_bytes(HEADER, rows))
    source = SourceConfig("activity", "activity")
    ingest_batch(settings, source, DAY, NOW)
    ingest_batch(settings, source, DAY, NOW)
    warehouse = Warehouse.from_uri(postgres_url)
    assert isinstance(warehouse, PostgresWarehouse)
    raw = warehouse.read("raw.activity").sort_values("event_id", ignore_index=True)
    assert raw["event_id"].tolist() == ["a-1", "a-3", "a-4", "a-5", "a-6"] and set(raw["batch_date"]) == {DAY}
    assert raw["event_time"].tolist()[0] == pd.Timestamp("2026-01-03T01:15:00")
    quarantine = warehouse.read("quarantine.activity")
    assert quarantine[["event_id", "sessions", "quarantine_reasons"]].values.tolist() == [
        ["a-2", "x", "expect_column_values_to_be_of_type(sessions)"]
    ]
    counts = warehouse.read(VALIDATION_RUNS)[["landed_rows", "accepted_rows", "quarantined_rows"]]
    assert counts.values.tolist() == [[6, 5, 1]]
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


def test_text_values_round_trip_exactly_and_nulls_stay_null(postgres_url: str) -> None:
    """A landed literal ``\\N`` (or "", or "NULL") is text; only a missing value is NULL."""
    warehouse = Warehouse.from_uri(postgres_url)
    texts = ["\\N", "", "NULL", "null", None, "tab\there", "line\nbreak\r", "back\\slash", 'quote"d', "comma,semi;"]
    frame = pd.DataFrame({
        "s": pd.array(texts, dtype="string"),
        "o": pd.Series(texts, dtype=object),
        "n": pd.array([1, None] * 5, dtype="Int64"),
        "f": [0.1, float("nan")] * 5,
        "t": pd.to_datetime(["2026-01-03 01:15:00.123456", None] * 5),
    })
    warehouse.replace_partitions([PartitionWrite("raw.texts", {"batch_date": DAY}, frame)])
    back = warehouse.read("raw.texts")
    assert back["s"].tolist() == texts and back["o"].tolist() == texts
    assert [None if pd.isna(v) else v for v in back["n"]] == [1, None] * 5
    assert back["f"].tolist()[0] == 0.1 and back["f"].isna().tolist() == [False, True] * 5
    assert back["t"].tolist()[0] == pd.Timestamp("2026-01-03 01:15:00.123456")
    assert back["t"].isna().tolist() == [False, True] * 5


def test_drop_partitions_deletes_a_prefix_in_one_transaction(postgres_url: str) -> None:
    warehouse = Warehouse.from_uri(postgres_url)
    shards = "staging.u_scoring_shards"
    keys = [{"scoring_date": DAY, "run_key": run, "shard": shard} for run in ("abc", "def") for shard in (0, 1)]
    warehouse.replace_partitions(
        [PartitionWrite(shards, key, pd.DataFrame({"x": pd.array([i], dtype="Int64")})) for i, key in enumerate(keys)]
    )
    warehouse.drop_partitions(shards, {"scoring_date": DAY, "run_key": "abc"})
    assert sorted(warehouse.read(shards)["x"]) == [2, 3]
    warehouse.drop_partitions(shards, {"shard": 1})
    assert warehouse.read(shards)["x"].tolist() == [2]
    warehouse.drop_partitions(shards, {"run_key": "nothing"})
    warehouse.drop_partitions("staging.never_written", {"scoring_date": DAY})
    with pytest.raises(ValueError, match="at least one partition column"):
        warehouse.drop_partitions(shards, {})
    assert warehouse.read(shards)["x"].tolist() == [2]


def test_names_are_quoted_or_refused_on_postgres(postgres_url: str) -> None:
    """The same rules as the embedded warehouse: quoted data columns, identifier keys, folder-safe values."""
    warehouse = Warehouse.from_uri(postgres_url)
    frame = pd.DataFrame({'say "hi"': pd.array(["a"], dtype="string"), "x": pd.array([1], dtype="Int64")})
    warehouse.replace_partitions([PartitionWrite("raw.t", {"batch_date": DAY}, frame)])
    assert warehouse.read("raw.t")['say "hi"'].tolist() == ["a"]
    with pytest.raises(ValueError, match="must be an identifier"):
        warehouse.max_value("raw.t", 'x") from (select 42 as "x") --')
    with pytest.raises(ValueError, match="must be an identifier"):
        warehouse.replace_partitions([PartitionWrite("raw.t", {'batch_date" = batch_date or "x': DAY}, frame)])
    with pytest.raises(ValueError, match="cannot name a partition folder"):
        warehouse.replace_partitions([PartitionWrite("raw.t", {"batch_date": "../x"}, frame)])
    assert warehouse.read("raw.t")["x"].tolist() == [1]


def test_a_column_added_by_a_later_release_joins_the_existing_table(postgres_url: str) -> None:
    """A table created before a release added a column (validation_runs.ignored_files) takes the new rows."""
    warehouse = Warehouse.from_uri(postgres_url)
    old = pd.DataFrame({"rows": pd.array([3], dtype="Int64")})
    warehouse.replace_partitions([PartitionWrite("meta.evolving", {"batch_date": DAY}, old)])
    new = old.assign(ignored_files=pd.array(["README.txt"], dtype="string"))
    warehouse.replace_partitions([PartitionWrite("meta.evolving", {"batch_date": date(2026, 1, 4)}, new)])
    back = warehouse.read("meta.evolving").sort_values("batch_date")
    assert back["rows"].tolist() == [3, 3]
    assert [None if pd.isna(v) else v for v in back["ignored_files"]] == [None, "README.txt"]


def test_a_write_does_not_lock_out_readers_of_the_table(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing a partition of an existing table takes no exclusive lock: an analyst's open read
    transaction does not block it (an `alter table` per write would wait for it)."""
    import psycopg2

    warehouse = Warehouse.from_uri(postgres_url)
    frame = pd.DataFrame({"rows": pd.array([3], dtype="Int64")})
    warehouse.replace_partitions([PartitionWrite("meta.busy", {"batch_date": DAY}, frame)])
    analyst = psycopg2.connect(postgres_url)
    try:
        with analyst.cursor() as cur:
            cur.execute("select count(*) from meta.busy")  # holds its read lock until the transaction ends
            monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=3000")  # fail instead of waiting
            warehouse.replace_partitions([PartitionWrite("meta.busy", {"batch_date": date(2026, 1, 4)}, frame)])
    finally:
        analyst.rollback()
        analyst.close()
    assert len(warehouse.read("meta.busy")) == 2


def test_an_error_on_a_live_connection_is_raised_as_it_is_not_as_a_lost_server(postgres_url: str) -> None:
    """A lock timeout (or a deadlock, a statement timeout) is psycopg2's ``OperationalError`` too, on a
    connection that is still up: it must not be reported as the server going away."""
    import psycopg2
    import psycopg2.errors

    key = {"batch_date": DAY}
    frame = pd.DataFrame({"x": pd.array([1], dtype="Int64")})
    Warehouse.from_uri(postgres_url).replace_partitions([PartitionWrite("raw.a", key, frame)])
    locker = psycopg2.connect(postgres_url)
    locker.cursor().execute("lock table raw.a in access exclusive mode")
    impatient = Warehouse.from_uri(f"{postgres_url}?options=-c%20lock_timeout%3D200")
    try:
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            impatient.replace_partitions([PartitionWrite("raw.a", key, frame)])
    finally:
        locker.close()
    assert Warehouse.from_uri(postgres_url).read("raw.a")["x"].tolist() == [1]
