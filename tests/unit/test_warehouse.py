"""The embedded warehouse: partition replacement, typed empty partitions, catalog views."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from unittest import mock

import duckdb
import pandas as pd
import pytest

from nightshift.warehouse import PartitionWrite, Warehouse, quarantine_table, raw_table


def frame(values: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"x": pd.array(values, dtype="Int64"), "s": pd.array([str(v) for v in values], dtype="string")})


def test_table_names_live_here() -> None:
    assert raw_table("activity") == "raw.activity" and quarantine_table("activity") == "quarantine.activity"
    with pytest.raises(ValueError, match="schema.table"):
        Warehouse.from_uri("duckdb:///tmp/x.duckdb").read("raw.activity; drop table x")


def test_partitions_replace_and_views_publish(tmp_path: Path) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    d1, d2 = {"batch_date": date(2026, 1, 1)}, {"batch_date": date(2026, 1, 2)}
    warehouse.replace_partitions([PartitionWrite("raw.t", d1, frame([1, 2])), PartitionWrite("raw.t", d2, frame([3]))])
    warehouse.replace_partitions([PartitionWrite("raw.t", d1, frame([5]))])
    assert sorted(warehouse.read("raw.t")["x"]) == [3, 5]
    assert warehouse.read("raw.t", d2)["x"].tolist() == [3]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert sorted(con.sql("select x from raw.t").fetchall()) == [(3,), (5,)]


def test_empty_partition_keeps_its_schema_and_replaces_old_rows(tmp_path: Path) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    key = {"batch_date": date(2026, 1, 1)}
    warehouse.replace_partitions([PartitionWrite("quarantine.t", key, frame([1]))])
    warehouse.replace_partitions([PartitionWrite("quarantine.t", key, frame([]))])
    empty = warehouse.read("quarantine.t")
    assert empty.empty and list(empty.columns) == ["x", "s", "batch_date"]


def test_a_failed_write_leaves_every_previous_partition_intact(tmp_path: Path) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    key = {"batch_date": date(2026, 1, 1)}
    warehouse.replace_partitions([PartitionWrite("raw.a", key, frame([1])), PartitionWrite("raw.b", key, frame([1]))])
    real_write = __import__("pyarrow.parquet", fromlist=["write_table"]).write_table
    calls = {"n": 0}

    def dies_on_second_file(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_write(*args, **kwargs)

    with mock.patch("pyarrow.parquet.write_table", dies_on_second_file), pytest.raises(OSError, match="disk full"):
        warehouse.replace_partitions([PartitionWrite("raw.a", key, frame([9])), PartitionWrite("raw.b", key, frame([9]))])
    assert warehouse.read("raw.a")["x"].tolist() == [1] and warehouse.read("raw.b")["x"].tolist() == [1]
    assert not list(tmp_path.rglob("*.tmp")), "no staged file is left behind"
    assert not any((tmp_path / "tables" / ".transactions").iterdir()), "no staging folder is left behind"


def test_unknown_warehouse_uri_is_refused() -> None:
    with pytest.raises(ValueError, match="use duckdb:///"):
        Warehouse.from_uri("mysql://x/y")


def _write_in_child(args: tuple[str, str]) -> str:
    database, table = args
    Warehouse.from_uri(f"duckdb:///{database}").replace_partitions(
        [PartitionWrite(table, {"batch_date": date(2026, 1, 1)}, frame([1, 2]))]
    )
    return table


def test_parallel_writers_in_separate_processes_do_not_collide(tmp_path: Path) -> None:
    """Parallel Airflow tasks are separate processes; each publishes its table's view once."""
    import multiprocessing

    database = str(tmp_path / "wh.duckdb")
    tables = [f"raw.t{i}" for i in range(6)]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        assert sorted(pool.map(_write_in_child, [(database, t) for t in tables])) == tables
    with duckdb.connect(database, read_only=True) as con:
        for table in tables:
            assert con.execute(f"select count(*) from {table}").fetchall() == [(2,)]


def test_placeholder_rows_of_empty_dbt_models_are_not_data(tmp_path) -> None:  # noqa: ANN001
    """dbt-duckdb writes an empty external model as one all-null row; neither reads nor views show it."""
    import duckdb
    import pandas as pd

    from nightshift.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    folder = tmp_path / "tables" / "labels" / "empty_labels"
    folder.mkdir(parents=True)
    pd.DataFrame({"key": [None], "label": [None]}, dtype="float64").to_parquet(folder / "part.parquet")
    assert warehouse.read("labels.empty_labels").empty
    assert warehouse.read_range("labels.empty_labels", "key", 0, 10).empty
    warehouse.publish({"labels.empty_labels"})
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from labels.empty_labels").fetchone()[0] == 0
