"""Every name the embedded warehouse puts into SQL or a folder path is checked or quoted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from nightshift.warehouse import PartitionWrite, Warehouse

KEY = {"batch_date": date(2026, 1, 3)}


def rows(values: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"x": pd.array(values, dtype="Int64")})


def test_a_warehouse_path_with_a_quote_reads_and_publishes(tmp_path: Path) -> None:
    database = tmp_path / "it's here" / "wh.duckdb"
    warehouse = Warehouse.from_uri(f"duckdb:///{database}")
    warehouse.replace_partitions([PartitionWrite("raw.t", KEY, rows([1, 2]))])
    assert warehouse.read("raw.t", KEY)["x"].tolist() == [1, 2]
    assert sorted(warehouse.read("raw.t")["x"]) == [1, 2]
    assert warehouse.read_range("raw.t", "x", 2, 5)["x"].tolist() == [2]
    assert warehouse.max_value("raw.t", "x") == 2
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("select count(*) from raw.t").fetchone()[0] == 2


def test_max_value_refuses_a_column_that_is_not_an_identifier(tmp_path: Path) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    warehouse.replace_partitions([PartitionWrite("raw.t", KEY, rows([1]))])
    with pytest.raises(ValueError, match="must be an identifier"):
        warehouse.max_value("raw.t", 'x") from (select 42 as "x") --')
    with pytest.raises(ValueError, match="must be an identifier"):
        warehouse.read_range("raw.t", 'x" or 1=1 --', 0, 0)


@pytest.mark.parametrize("value", ["../../escaped", "a/b", "..", "x\x00y"])
def test_a_partition_value_that_is_not_a_folder_name_is_refused(tmp_path: Path, value: str) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    with pytest.raises(ValueError, match="cannot name a partition folder"):
        key = {"batch_date": "2026-01-03", "source": value}
        warehouse.replace_partitions([PartitionWrite("raw.t", key, rows([1]))])
    with pytest.raises(ValueError, match="cannot name a partition folder"):
        warehouse.read("raw.t", {"source": value})
    with pytest.raises(ValueError, match="cannot name a partition folder"):
        warehouse.drop_partitions("raw.t", {"source": value})
    assert not list(tmp_path.rglob("part.parquet")), "nothing was written anywhere"


@pytest.mark.parametrize("key", ['source"', "a=b", "a/b", ""])
def test_a_partition_key_must_be_an_identifier(tmp_path: Path, key: str) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    with pytest.raises(ValueError, match="must be an identifier"):
        warehouse.replace_partitions([PartitionWrite("raw.t", {key: "x"}, rows([1]))])
    assert not list(tmp_path.rglob("part.parquet"))


def test_a_data_column_with_a_double_quote_is_quoted_in_the_catalog_view(tmp_path: Path) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    frame = pd.DataFrame({'say "hi"': pd.array(["a"], dtype="string")})
    warehouse.replace_partitions([PartitionWrite("raw.t", KEY, frame)])
    assert warehouse.read("raw.t")['say "hi"'].tolist() == ["a"]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute('select "say ""hi""" from raw.t').fetchall() == [("a",)]
