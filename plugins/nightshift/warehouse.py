"""The warehouse: the one place that knows table names and how partitions are replaced.

Two backends behind one interface, chosen by ``Settings.warehouse_uri``:

* **Embedded** (``duckdb:///path/warehouse.duckdb``). Each partition is a Parquet file,
  ``<dir>/tables/<schema>/<table>/<key>=<value>/…/part.parquet``. The DuckDB file holds only
  views over those files, so tasks running side by side never open it: writers replace
  Parquet files (write a temporary file, then rename), readers use an in-memory DuckDB.
  The file is opened read-write only to create a table's view the first time the table
  appears, under a cross-process lock. Analysts open it with ``duckdb -readonly``.
* **Production** (``postgresql://…``). Tables in schemas ``raw``, ``quarantine``, ``meta``…;
  a group of partition replacements is one transaction (delete the partition, COPY the
  new rows), so readers see the old partition or the new one, never a mix.

Every write replaces whole partitions: re-running a day replaces exactly that day.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import pandas as pd

# --- table names: nowhere else spells them ------------------------------------------

VALIDATION_RUNS = "meta.validation_runs"
FEATURE_SKEW = "monitoring.feature_skew"
MODEL_PROMOTIONS = "meta.model_promotions"


def raw_table(source: str) -> str:
    """Accepted rows of a landed source."""
    return f"raw.{source}"


def predictions_table(use_case: str) -> str:
    """Nightly scores of a use case, with its own key columns; one partition per scoring_date."""
    return f"predictions.{use_case}_daily"


def prediction_errors_table(use_case: str) -> str:
    """Entities of the day's population that could not be scored, with the reason."""
    return f"predictions.{use_case}_errors"


def shadow_predictions_table(use_case: str) -> str:
    """Scores of the `challenger` alias, for comparison only; never used downstream."""
    return f"predictions.{use_case}_shadow"


def scoring_staging_tables(use_case: str) -> tuple[str, str]:
    """Per-shard scores and errors of a scoring run before they are published."""
    return f"staging.{use_case}_scoring_shards", f"staging.{use_case}_scoring_errors"


def quarantine_table(source: str) -> str:
    """Refused rows of a landed source, with the reasons they were refused."""
    return f"quarantine.{source}"


PartitionKey = Mapping[str, "str | date | int"]


@dataclass(frozen=True)
class PartitionWrite:
    """Replace the rows of ``table`` matching ``partition`` (column -> value) with ``frame``."""

    table: str
    partition: PartitionKey
    frame: pd.DataFrame


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or written; the message says what to do."""


class Warehouse(ABC):
    """Partitioned tables, written by whole-partition replacement."""

    @staticmethod
    def from_uri(uri: str) -> Warehouse:
        """The backend for ``duckdb:///…`` or ``postgresql://…``."""
        scheme = urlparse(uri).scheme
        if scheme == "duckdb":
            return DuckDBWarehouse(Path(urlparse(uri).path))
        if scheme.startswith("postgres"):
            return PostgresWarehouse(uri)
        raise ValueError(f"warehouse URI {uri!r}: use duckdb:///path/file.duckdb or postgresql://…")

    @abstractmethod
    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> None:
        """Replace each partition with its frame; all of them or none become visible."""

    @abstractmethod
    def read(self, table: str, partition: PartitionKey | None = None) -> pd.DataFrame:
        """Rows of ``table`` (of one partition if given), sorted by nothing in particular."""

    @abstractmethod
    def read_range(self, table: str, column: str, first: Any, last: Any) -> pd.DataFrame:
        """Rows of ``table`` whose ``column`` lies in [first, last].

        Raises:
            WarehouseError: the table does not exist or cannot be read.
        """

    @abstractmethod
    def tables(self) -> list[str]:
        """``schema.table`` names that hold at least one partition."""

    @abstractmethod
    def max_value(self, table: str, column: str) -> Any:
        """The largest value of ``column`` in ``table`` (None when the table is empty).

        Raises:
            WarehouseError: the table does not exist.
        """


def _check_name(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    if not (schema.isidentifier() and name.isidentifier()):
        raise ValueError(f"table name {table!r} must be schema.table with identifier parts")
    return schema, name


def _check_column(column: str) -> str:
    if not column.isidentifier():
        raise ValueError(f"column name {column!r} must be an identifier")
    return column


def _partition_values(partition: PartitionKey) -> list[tuple[str, str]]:
    return [(k, v.isoformat() if isinstance(v, date) else str(v)) for k, v in partition.items()]


def _with_partition_columns(frame: pd.DataFrame, partition: PartitionKey) -> pd.DataFrame:
    """The frame with one constant column per partition key (typed even when empty)."""
    import pandas as pd
    import pyarrow as pa

    frame = frame.copy()
    for key, value in partition.items():
        if isinstance(value, date):
            frame[key] = pd.array([value] * len(frame), dtype=pd.ArrowDtype(pa.date32()))
        elif isinstance(value, int):
            frame[key] = pd.array([value] * len(frame), dtype="Int64")
        else:
            frame[key] = pd.array([value] * len(frame), dtype="string")
    return frame


# --- embedded: Parquet partitions + a DuckDB catalog of views -------------------------


class DuckDBWarehouse(Warehouse):
    """Parquet partitions, published as views in a DuckDB file."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.root = database.parent / "tables"

    def _table_dir(self, table: str) -> Path:
        schema, name = _check_name(table)
        return self.root / schema / name

    def _partition_file(self, table: str, partition: PartitionKey) -> Path:
        folder = self._table_dir(table)
        for key, value in _partition_values(partition):
            folder = folder / f"{key}={value}"
        return folder / "part.parquet"

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        staged: list[tuple[str, Path]] = []
        try:
            for write in writes:
                target = self._partition_file(write.table, write.partition)
                target.parent.mkdir(parents=True, exist_ok=True)
                frame = _with_partition_columns(write.frame, write.partition)
                table = pa.Table.from_pandas(_arrow_friendly(frame), preserve_index=False)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=".parquet.tmp")
                os.close(fd)
                staged.append((tmp, target))
                pq.write_table(table, tmp)
            # Every file is complete before the first rename; a kill here leaves each
            # partition either old or new, and a rerun of the same input converges.
            for tmp, target in staged:
                os.replace(tmp, target)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        self.publish({w.table for w in writes})

    def read(self, table: str, partition: PartitionKey | None = None) -> pd.DataFrame:
        import duckdb

        if partition:
            path = self._partition_file(table, partition)
            if not path.exists():
                raise WarehouseError(f"{table} has no partition {dict(partition)} (looked for {path})")
            source = f"read_parquet('{path}')"
        else:
            if not self._table_dir(table).exists():
                raise WarehouseError(f"{table} does not exist yet in {self.root}")
            source = self._scan(table)
        with duckdb.connect() as con:
            return _without_placeholder_rows(con.sql(f"select * from {source}").df())

    def read_range(self, table: str, column: str, first: Any, last: Any) -> pd.DataFrame:
        import duckdb

        if not self._table_dir(table).exists():
            raise WarehouseError(f"{table} does not exist yet in {self.root}")
        with duckdb.connect() as con:
            return _without_placeholder_rows(con.execute(
                f'select * from {self._scan(table)} where "{_check_column(column)}" between ? and ?', [first, last]).df())

    def tables(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            f"{schema.name}.{table.name}"
            for schema in self.root.iterdir()
            if schema.is_dir()
            for table in schema.iterdir()
            if table.is_dir() and any(table.rglob("part.parquet"))
        )

    def max_value(self, table: str, column: str) -> Any:
        import duckdb

        if not self._table_dir(table).exists():
            raise WarehouseError(f"{table} does not exist yet in {self.root}")
        with duckdb.connect() as con:
            return con.execute(f'select max("{column}") from {self._scan(table)}').fetchone()[0]

    def _scan(self, table: str) -> str:
        return f"read_parquet('{self._table_dir(table)}/**/part.parquet', union_by_name=true)"

    def publish(self, tables: set[str] | None = None, force: bool = False) -> None:
        """Create the catalog view of each table that does not have one yet."""
        wanted = sorted(tables if tables is not None else self.tables())
        pending = [t for t in wanted if force or not (self._table_dir(t) / ".published").exists()]
        if not pending:
            return
        import duckdb

        self.database.parent.mkdir(parents=True, exist_ok=True)
        with self._catalog_lock(), self._connect_catalog(duckdb) as con:
            for table in pending:
                schema, _ = _check_name(table)
                con.execute(f"create schema if not exists {schema}")
                columns = [row[0] for row in con.execute(f"describe select * from {self._scan(table)}").fetchall()]
                real_row = " or ".join(f'"{c}" is not null' for c in columns)
                con.execute(f"create or replace view {table} as select * from {self._scan(table)} where {real_row}")
                (self._table_dir(table) / ".published").touch()

    @contextlib.contextmanager
    def _catalog_lock(self) -> Iterator[None]:
        with open(self.database.parent / ".catalog.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _connect_catalog(self, duckdb: Any, attempts: int = 30) -> Any:
        for attempt in range(attempts):
            try:
                return duckdb.connect(str(self.database))
            except duckdb.IOException as exc:
                if attempt == attempts - 1:
                    raise WarehouseError(
                        f"the warehouse catalog {self.database} is held open by another process ({exc}). "
                        "The data is written; close that process (an open duckdb shell without -readonly?) "
                        "and re-run this task to publish the view"
                    ) from exc
                time.sleep(1)
        raise AssertionError("unreachable")


def _without_placeholder_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop rows whose every column is null.

    dbt-duckdb writes an empty external model as one all-null row (to keep its schema in the
    Parquet file); no real row of any Nightshift table is all null, so such a row is never data.
    """
    return frame.dropna(how="all").reset_index(drop=True) if len(frame) else frame


def _arrow_friendly(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns become strings so that even an empty partition carries its schema."""
    text = [c for c in frame.columns if frame[c].dtype == object and frame[c].map(_is_text).all()]
    return frame.astype({c: "string" for c in text}) if text else frame


def _is_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


# --- production: Postgres -----------------------------------------------------------


_PG_TYPES = {
    "Int64": "bigint",
    "int64": "bigint",
    "int32": "integer",
    "float64": "double precision",
    "bool": "boolean",
    "boolean": "boolean",
    "datetime64[ns]": "timestamp",
    "datetime64[us]": "timestamp",
    "date32[day][pyarrow]": "date",
    "string": "text",
}


class PostgresWarehouse(Warehouse):
    """Tables in Postgres; a group of partition replacements is one transaction."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _connect(self) -> Any:
        import psycopg2

        try:
            return psycopg2.connect(self.uri.replace("postgresql+psycopg2://", "postgresql://"))
        except psycopg2.OperationalError as exc:
            url = urlparse(self.uri)
            where = f"{url.hostname}:{url.port or 5432}{url.path}"  # never the password
            raise WarehouseError(
                f"cannot reach the Postgres warehouse at {where}: {' '.join(str(exc).split())}. "
                "Check NIGHTSHIFT_WAREHOUSE_URI "
                "and that the server is up; the task will retry"
            ) from exc

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> None:
        con = self._connect()
        try:
            with con, con.cursor() as cur:
                for write in writes:
                    frame = _with_partition_columns(write.frame, write.partition)
                    self._ensure_table(cur, write.table, frame)
                    where = " and ".join(f'"{k}" = %s' for k in write.partition)
                    cur.execute(f"delete from {write.table} where {where}", [v for _, v in _partition_values(write.partition)])
                    self._copy(cur, write.table, frame)
        finally:
            con.close()

    def _ensure_table(self, cur: Any, table: str, frame: pd.DataFrame) -> None:
        schema, _ = _check_name(table)
        columns = ", ".join(f'"{c}" {_pg_type(frame[c])}' for c in frame.columns)
        cur.execute(f"create schema if not exists {schema}")
        cur.execute(f"create table if not exists {table} ({columns})")

    def _copy(self, cur: Any, table: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f")
        buffer.seek(0)
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        cur.copy_expert(f"copy {table} ({columns}) from stdin with (format csv, null '\\N')", buffer)

    def read(self, table: str, partition: PartitionKey | None = None) -> pd.DataFrame:
        import pandas as pd

        _check_name(table)
        con = self._connect()
        try:
            with con.cursor() as cur:
                sql = f"select * from {table}"
                params: list[str] = []
                if partition:
                    sql += " where " + " and ".join(f'"{k}" = %s' for k in partition)
                    params = [v for _, v in _partition_values(partition)]
                try:
                    cur.execute(sql, params)
                except Exception as exc:
                    raise WarehouseError(f"cannot read {table}: {exc}") from exc
                names = [d[0] for d in cur.description]
                return pd.DataFrame(cur.fetchall(), columns=names)
        finally:
            con.close()

    def read_range(self, table: str, column: str, first: Any, last: Any) -> pd.DataFrame:
        import pandas as pd

        _check_name(table)
        con = self._connect()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(f'select * from {table} where "{_check_column(column)}" between %s and %s', [first, last])
                except Exception as exc:
                    raise WarehouseError(f"cannot read {table}: {exc}") from exc
                return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        finally:
            con.close()

    def max_value(self, table: str, column: str) -> Any:
        _check_name(table)
        con = self._connect()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(f'select max("{column}") from {table}')
                except Exception as exc:
                    raise WarehouseError(f"cannot read {table}: {exc}") from exc
                return cur.fetchone()[0]
        finally:
            con.close()

    def tables(self) -> list[str]:
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute(
                    "select table_schema || '.' || table_name from information_schema.tables "
                    "where table_schema not in ('pg_catalog', 'information_schema') order by 1"
                )
                return [r[0] for r in cur.fetchall()]
        finally:
            con.close()


def _pg_type(series: pd.Series) -> str:
    dtype = str(series.dtype)
    return _PG_TYPES.get(dtype, "text")
