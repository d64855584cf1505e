"""The warehouse: the one place that knows table names and how partitions are replaced.

Two backends behind one interface, chosen by ``Settings.warehouse_uri``:

* **Embedded** (``duckdb:///path/warehouse.duckdb``). Each partition is a Parquet file,
  ``<dir>/tables/<schema>/<table>/<key>=<value>/…/part.parquet``. The DuckDB file holds only
  views over those files, so tasks running side by side never open it: readers use an
  in-memory DuckDB. A group of writes is a transaction: every new file is staged under
  ``tables/.transactions/<id>/``, then a manifest of (staged file, target) pairs is renamed
  into place (the commit point), then the files are renamed onto their targets. A process
  killed between two renames leaves a committed manifest, and the next call through this
  API (``from_uri``, every read, every write) rolls it forward before it reads, under a
  cross-process lock that writers also hold while they rename: API readers see a whole group
  or none of it. The catalog views (analysts, dbt) read the same files without that lock,
  so after a kill they show the rolled-forward result once any API call has run.
  The file is opened read-write only to create a table's view the first time the table
  appears, under a cross-process lock. Analysts open it with ``duckdb -readonly``.
* **Production** (``postgresql://…``). Tables in schemas ``raw``, ``quarantine``, ``meta``…;
  a group of partition replacements is one transaction (delete the partition, COPY the
  new rows), so readers see the old partition or the new one, never a mix.

Every write replaces whole partitions: re-running a day replaces exactly that day. Every name
put into SQL is a checked identifier or quoted, and every partition value becomes a folder
name only after it is checked (no ``/``, ``..`` or NUL).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import pandas as pd

# --- table names: nowhere else spells them ------------------------------------------

VALIDATION_RUNS = "meta.validation_runs"
FEATURE_SKEW = "monitoring.feature_skew"
MODEL_PROMOTIONS = "meta.model_promotions"
#: The last dbt build of each use case's day-partitioned models: what the next run builds from.
DBT_BUILDS = "meta.dbt_builds"


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


class WarehouseBusy(WarehouseError):
    """A read-only reader met a write group a killed process committed but did not apply: reading
    now could mix old and new partitions, and a read-only reader does not finish other writers' work."""


class TableMissing(WarehouseError):
    """The table, or the partition asked for, has not been written yet: no data, not a failure.

    Every other ``WarehouseError`` (a lost connection, a broken file) is a failure: callers that
    treat "nothing there yet" as data catch this one only.
    """


class Warehouse(ABC):
    """Partitioned tables, written by whole-partition replacement."""

    @staticmethod
    def from_uri(uri: str, read_only: bool = False) -> Warehouse:
        """The backend for ``duckdb:///…`` or ``postgresql://…``.

        An embedded warehouse first rolls forward any write group a killed process committed;
        a ``read_only`` one (the UI's views) never does, never writes, and takes shared locks only.
        """
        scheme = urlparse(uri).scheme
        if scheme == "duckdb":
            warehouse = DuckDBWarehouse(Path(urlparse(uri).path), read_only=read_only)
            if not read_only:
                warehouse.recover()
            return warehouse
        if scheme.startswith("postgres"):
            return PostgresWarehouse(uri)
        raise ValueError(f"warehouse URI {uri!r}: use duckdb:///path/file.duckdb or postgresql://…")

    @abstractmethod
    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> None:
        """Replace each partition with its frame; all of them or none become visible."""

    @abstractmethod
    def drop_partitions(self, table: str, partition: PartitionKey) -> None:
        """Delete every partition of ``table`` whose columns match ``partition`` (a key or a prefix of one).

        ``{"scoring_date": d, "run_key": k}`` drops every shard of that run. Nothing happens when
        nothing matches or the table does not exist.

        Raises:
            ValueError: ``partition`` is empty (that would drop the whole table) or not a valid key.
        """

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
    if not (isinstance(column, str) and column.isidentifier()):
        raise ValueError(f"column name {column!r} must be an identifier (letters, digits, underscores)")
    return column


def _quoted(column: str) -> str:
    """``column`` as a quoted SQL identifier, embedded double quotes doubled."""
    if "\x00" in str(column):
        raise ValueError(f"column name {column!r} contains a NUL character; rename the column")
    return '"' + str(column).replace('"', '""') + '"'


def _sql_text(value: str) -> str:
    """``value`` as a SQL string literal, embedded single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _partition_values(partition: PartitionKey) -> list[tuple[str, str]]:
    """(column, value as text) pairs of a partition key, each checked for use as a folder name."""
    pairs = []
    for key, value in partition.items():
        text = value.isoformat() if isinstance(value, date) else str(value)
        if "/" in text or ".." in text or "\x00" in text:
            raise ValueError(
                f"partition value {key}={text!r} contains '/', '..' or a NUL character, which cannot name "
                "a partition folder; pass a plain value (a date, a number, or a name)"
            )
        pairs.append((_check_column(key), text))
    return pairs


def _partition_text(partition: PartitionKey) -> str:
    """``k1=v1, k2=v2``: a partition key in a message."""
    return ", ".join(f"{key}={value}" for key, value in _partition_values(partition))


def _with_partition_columns(frame: pd.DataFrame, partition: PartitionKey) -> pd.DataFrame:
    """The frame with one constant column per partition key (typed even when empty)."""
    import pandas as pd
    import pyarrow as pa

    frame = frame.copy(deep=False)  # new columns only: the frame's own are shared, not copied
    for key, value in partition.items():
        if isinstance(value, date):
            frame[key] = pd.array([value] * len(frame), dtype=pd.ArrowDtype(pa.date32()))
        elif isinstance(value, int):
            frame[key] = pd.array([value] * len(frame), dtype="Int64")
        else:
            frame[key] = pd.array([value] * len(frame), dtype="string")
    return frame


# --- embedded: Parquet partitions + a DuckDB catalog of views -------------------------

_JOURNAL = ".transactions"


class DuckDBWarehouse(Warehouse):
    """Parquet partitions, published as views in a DuckDB file; write groups commit by manifest."""

    def __init__(self, database: Path, read_only: bool = False) -> None:
        self.database = database
        self.read_only = read_only
        self.root = database.parent / "tables"
        self.journal = self.root / _JOURNAL

    def _table_dir(self, table: str) -> Path:
        schema, name = _check_name(table)
        return self.root / schema / name

    def _partition_file(self, table: str, partition: PartitionKey) -> Path:
        folder = self._table_dir(table)
        for key, value in _partition_values(partition):
            folder = folder / f"{key}={value}"
        return folder / "part.parquet"

    def _has_rows(self, table: str) -> bool:
        folder = self._table_dir(table)
        return folder.is_dir() and next(folder.rglob("part.parquet"), None) is not None

    # writes ---------------------------------------------------------------------------

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        targets = [self._partition_file(w.table, w.partition) for w in writes]  # every name checked first
        with self._staging() as (stage, commit):
            moves: list[tuple[Path | None, Path]] = []
            for number, (write, target) in enumerate(zip(writes, targets)):
                frame = _with_partition_columns(write.frame, write.partition)
                staged = stage / f"{number}.parquet"
                pq.write_table(pa.Table.from_pandas(_arrow_friendly(frame), preserve_index=False), staged)
                _fsync(staged)
                moves.append((staged, target))
            commit(moves)
        self.publish({w.table for w in writes})

    def drop_partitions(self, table: str, partition: PartitionKey) -> None:
        wanted = dict(_partition_values(partition))
        if not wanted:
            raise ValueError(f"drop_partitions({table!r}) needs at least one partition column (an empty key drops all)")
        table_dir = self._table_dir(table)
        with self._reading():
            parts = sorted(table_dir.rglob("part.parquet")) if table_dir.is_dir() else []
            doomed = [p for p in parts if _matches(_folder_values(p.parent.relative_to(table_dir)), wanted)]
        if doomed:  # deleted as one group: a kill part-way is rolled forward like any other write
            with self._staging() as (_, commit):
                commit([(None, part) for part in doomed])

    @contextlib.contextmanager
    def _staging(self) -> Iterator[tuple[Path, Any]]:
        """A fresh staging folder, and the ``commit(moves)`` that publishes a group of moves.

        The folder's lock file is held for the life of this writer, so recovery in another
        process removes it only once this process is gone.
        """
        self._refuse_if_read_only()
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        stage, holder, manifest = self.journal / name, self.journal / f"{name}.lock", self.journal / f"{name}.json"
        with self._lock(fcntl.LOCK_SH):  # recovery (exclusive) never sees a folder without its held lock
            stage.mkdir(parents=True)
            handle = open(holder, "w")  # noqa: SIM115 - held until the group is done
            fcntl.flock(handle, fcntl.LOCK_EX)

        def commit(moves: Sequence[tuple[Path | None, Path]]) -> None:
            entries = [
                {"source": None if src is None else str(src.relative_to(self.root)),
                 "target": str(dst.relative_to(self.root))}
                for src, dst in moves
            ]
            with self._lock(fcntl.LOCK_EX):
                self._roll_forward()  # an earlier group killed mid-way lands before this one
                _write_durably(manifest, json.dumps(entries).encode())  # the commit point
                self._apply(manifest)

        try:
            yield stage, commit
        finally:
            if not manifest.exists():  # a committed group that failed mid-way is finished by recovery
                shutil.rmtree(stage, ignore_errors=True)
                holder.unlink(missing_ok=True)
            handle.close()

    def _apply(self, manifest: Path) -> None:
        """Do a committed group's moves (idempotent: a move already done is skipped), then forget it."""
        entries = json.loads(manifest.read_text())
        folders: set[Path] = set()
        for entry in entries:
            target = self.root / entry["target"]
            if entry["source"] is None:
                target.unlink(missing_ok=True)
                _prune_empty(target.parent, self.root)
            else:
                source = self.root / entry["source"]
                if source.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(source, target)
            if target.parent.exists():
                folders.add(target.parent)
        for folder in folders:
            _fsync(folder)
        manifest.unlink()
        _fsync(self.journal)
        name = manifest.name.removesuffix(".json")
        shutil.rmtree(self.journal / name, ignore_errors=True)
        (self.journal / f"{name}.lock").unlink(missing_ok=True)

    # recovery -------------------------------------------------------------------------

    def recover(self) -> None:
        """Roll forward every group a killed writer committed, and remove what killed writers staged."""
        if not self.journal.is_dir() or not any(self.journal.iterdir()):
            return
        with self._lock(fcntl.LOCK_EX):
            self._roll_forward()
            self._sweep()

    def _committed(self) -> list[Path]:
        return sorted(self.journal.glob("*.json")) if self.journal.is_dir() else []

    def _roll_forward(self) -> None:
        for manifest in self._committed():
            self._apply(manifest)

    def _sweep(self) -> None:
        """Remove staging folders and half-written manifests of writers that are gone."""
        for leftover in self.journal.glob("*.json.tmp"):  # written under the exclusive lock we hold
            leftover.unlink(missing_ok=True)
        for holder in self.journal.glob("*.lock"):
            if holder.with_suffix(".json").exists():
                continue  # committed: only rolling forward may touch its files
            with open(holder, "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is still staging
                shutil.rmtree(holder.with_suffix(""), ignore_errors=True)
                holder.unlink(missing_ok=True)
        for folder in self.journal.iterdir():
            if folder.is_dir() and not folder.with_suffix(".lock").exists():
                shutil.rmtree(folder, ignore_errors=True)

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise WarehouseError(f"this handle on {self.root} is read-only (the UI's views): it never writes")

    @contextlib.contextmanager
    def _lock(self, mode: int) -> Iterator[IO[str]]:
        self.database.parent.mkdir(parents=True, exist_ok=True)
        with open(self.database.parent / ".warehouse.lock", "a") as handle:
            fcntl.flock(handle, mode)
            yield handle

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A shared lock for one read, taken after any committed group is rolled forward."""
        if not self.database.parent.exists():
            yield
            return
        with self._lock(fcntl.LOCK_SH) as handle:
            if self.read_only and self._committed():
                raise WarehouseBusy(
                    f"the warehouse in {self.root} holds a write group that a killed task committed but did not apply; "
                    "the next Nightshift task that touches the warehouse applies it. Reload this page after that")
            while self._committed():
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._roll_forward()
                fcntl.flock(handle, fcntl.LOCK_SH)
            yield

    # reads ----------------------------------------------------------------------------

    def read(self, table: str, partition: PartitionKey | None = None) -> pd.DataFrame:
        import duckdb

        path = self._partition_file(table, partition) if partition else None
        with self._reading():
            if path is not None:
                if not path.exists():
                    raise TableMissing(f"{table} has no partition {dict(partition or {})} (looked for {path})")
                source = f"read_parquet({_sql_text(str(path))})"
            else:
                if not self._has_rows(table):
                    raise TableMissing(f"{table} does not exist yet in {self.root}")
                source = self._scan(table)
            with duckdb.connect() as con:
                return _without_placeholder_rows(con.sql(f"select * from {source}").df())

    def read_range(self, table: str, column: str, first: Any, last: Any) -> pd.DataFrame:
        import duckdb

        where = f"{_quoted(_check_column(column))} between ? and ?"
        with self._reading():
            if not self._has_rows(table):
                raise TableMissing(f"{table} does not exist yet in {self.root}")
            with duckdb.connect() as con:
                found = con.execute(f"select * from {self._scan(table)} where {where}", [first, last]).df()
                return _without_placeholder_rows(found)

    def tables(self) -> list[str]:
        with self._reading():
            if not self.root.exists():
                return []
            return sorted(
                f"{schema.name}.{table.name}"
                for schema in self.root.iterdir()
                if schema.is_dir() and not schema.name.startswith(".")
                for table in schema.iterdir()
                if table.is_dir() and any(table.rglob("part.parquet"))
            )

    def max_value(self, table: str, column: str) -> Any:
        import duckdb

        largest = f"max({_quoted(_check_column(column))})"
        with self._reading():
            if not self._has_rows(table):
                raise TableMissing(f"{table} does not exist yet in {self.root}")
            with duckdb.connect() as con:
                row = con.execute(f"select {largest} from {self._scan(table)}").fetchone()
                return row[0] if row else None

    def _scan(self, table: str) -> str:
        return f"read_parquet({_sql_text(f'{self._table_dir(table)}/**/part.parquet')}, union_by_name=true)"

    # catalog --------------------------------------------------------------------------

    def publish(self, tables: set[str] | None = None, force: bool = False) -> None:
        """Create the catalog view of each table that does not have one yet."""
        self._refuse_if_read_only()
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
                real_row = " or ".join(f"{_quoted(c)} is not null" for c in columns)
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


def _folder_values(relative: Path) -> dict[str, str]:
    return dict(part.split("=", 1) for part in relative.parts if "=" in part)


def _matches(found: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(found.get(key) == value for key, value in wanted.items())


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents while they are empty partition folders (``key=value``)."""
    while folder != root and "=" in folder.name and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, content: bytes) -> None:
    """Write ``path`` so that it exists complete or not at all, even after a crash."""
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    _fsync(path.parent)


def _without_placeholder_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop rows whose every column is null.

    dbt-duckdb writes an empty external model as one all-null row (to keep its schema in the
    Parquet file); no real row of any Nightshift table is all null, so such a row is never data.
    """
    return frame.dropna(how="all").reset_index(drop=True) if len(frame) else frame


def _arrow_friendly(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns become strings so that even an empty partition carries its schema."""
    text = [c for c in frame.columns if frame[c].dtype == object and frame[c].map(_is_text).all()]
    if not text:
        return frame
    out = frame.copy(deep=False)  # ``astype`` with a mapping would copy every column
    for column in text:
        out[column] = frame[column].astype("string")
    return out


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
            raise WarehouseError(
                f"cannot reach the Postgres warehouse at {self._where()}: {' '.join(str(exc).split())}. "
                "Check NIGHTSHIFT_WAREHOUSE_URI "
                "and that the server is up; the task will retry"
            ) from exc

    def _where(self) -> str:
        """``host:port/database`` of the warehouse, never the password."""
        url = urlparse(self.uri)
        return f"{url.hostname}:{url.port or 5432}{url.path}"

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> None:
        import psycopg2

        for write in writes:  # every name checked before the first statement
            _check_name(write.table)
            _partition_values(write.partition)
        con = self._connect()
        try:
            with con, con.cursor() as cur:
                for write in writes:
                    frame = _with_partition_columns(write.frame, write.partition)
                    self._ensure_table(cur, write.table, frame)
                    where, values = _pg_where(write.partition)
                    cur.execute(f"delete from {write.table} where {where}", values)
                    self._copy(cur, write.table, frame)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if not con.closed:  # a live connection's error (a deadlock, a timeout, a full disk) is reported as it is
                raise
            what = "; ".join(f"{w.table} ({_partition_text(w.partition)})" for w in writes)
            cause: BaseException = exc  # the rollback on a dead connection hides what the server said
            while isinstance(cause.__context__, psycopg2.Error):
                cause = cause.__context__
            raise WarehouseError(
                f"the Postgres warehouse at {self._where()} dropped the connection while replacing {what}: "
                f"{' '.join(str(cause).split()).rstrip('.')}. The write was one transaction: all of it or none of it "
                "was applied, never part of a partition. Once the server is up again the task's retry replaces them "
                "whole (or clear the task)"
            ) from exc
        finally:
            con.close()

    def drop_partitions(self, table: str, partition: PartitionKey) -> None:
        _check_name(table)
        if not partition:
            raise ValueError(f"drop_partitions({table!r}) needs at least one partition column (an empty key drops all)")
        where, values = _pg_where(partition)
        con = self._connect()
        try:
            with con, con.cursor() as cur:
                cur.execute("select to_regclass(%s)", [table])
                if cur.fetchone()[0] is None:
                    return
                cur.execute(f"delete from {table} where {where}", values)
        finally:
            con.close()

    def _ensure_table(self, cur: Any, table: str, frame: pd.DataFrame) -> None:
        schema, _ = _check_name(table)
        columns = ", ".join(f"{_quoted(c)} {_pg_type(frame[c])}" for c in frame.columns)
        cur.execute(f"create schema if not exists {schema}")
        cur.execute(f"create table if not exists {table} ({columns})")
        # A column added by a later release (e.g. validation_runs.ignored_files) joins an existing
        # table; rows written before it read as null. Only a missing column is altered: `alter table`
        # takes an exclusive lock that would block every reader until this write commits.
        schema_name, table_name = table.split(".", 1)
        cur.execute("select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                    [schema_name, table_name])
        present = {row[0] for row in cur.fetchall()}
        for column in (c for c in frame.columns if c not in present):
            cur.execute(f"alter table {table} add column if not exists {_quoted(column)} {_pg_type(frame[column])}")

    def _copy(self, cur: Any, table: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        columns = ", ".join(_quoted(c) for c in frame.columns)
        cur.copy_expert(f"copy {table} ({columns}) from stdin", _copy_text(frame))

    def read(self, table: str, partition: PartitionKey | None = None) -> pd.DataFrame:
        import pandas as pd

        _check_name(table)
        params: list[str]
        sql, params = f"select * from {table}", []
        if partition:
            where, params = _pg_where(partition)
            sql += f" where {where}"
        con = self._connect()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(sql, params)
                except Exception as exc:
                    raise _read_error(table, exc) from exc
                names = [d[0] for d in cur.description]
                return pd.DataFrame(cur.fetchall(), columns=names)
        finally:
            con.close()

    def read_range(self, table: str, column: str, first: Any, last: Any) -> pd.DataFrame:
        import pandas as pd

        _check_name(table)
        where = f"{_quoted(_check_column(column))} between %s and %s"
        con = self._connect()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(f"select * from {table} where {where}", [first, last])
                except Exception as exc:
                    raise _read_error(table, exc) from exc
                return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        finally:
            con.close()

    def max_value(self, table: str, column: str) -> Any:
        _check_name(table)
        largest = f"max({_quoted(_check_column(column))})"
        con = self._connect()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(f"select {largest} from {table}")
                except Exception as exc:
                    raise _read_error(table, exc) from exc
                return cur.fetchone()[0]
        finally:
            con.close()

    def tables(self) -> list[str]:
        con = self._connect()
        try:
            with con.cursor() as cur:
                try:
                    cur.execute(
                        "select table_schema || '.' || table_name from information_schema.tables "
                        "where table_schema not in ('pg_catalog', 'information_schema') order by 1"
                    )
                    return [r[0] for r in cur.fetchall()]
                except Exception as exc:
                    raise WarehouseError(f"cannot list the warehouse's tables: {exc}; the task will retry") from exc
        finally:
            con.close()


def _read_error(table: str, exc: Exception) -> WarehouseError:
    """``TableMissing`` when Postgres says the table does not exist (42P01), else a ``WarehouseError``."""
    if getattr(exc, "pgcode", None) == "42P01":
        return TableMissing(f"{table} does not exist yet in the Postgres warehouse")
    return WarehouseError(f"cannot read {table}: {' '.join(str(exc).split())}; the task will retry")


def _pg_where(partition: PartitionKey) -> tuple[str, list[str]]:
    """``"k1" = %s and "k2" = %s`` and its parameters, for a checked partition key."""
    pairs = _partition_values(partition)
    return " and ".join(f"{_quoted(k)} = %s" for k, _ in pairs), [v for _, v in pairs]


def _pg_type(series: pd.Series) -> str:
    dtype = str(series.dtype)
    return _PG_TYPES.get(dtype, "text")


_COPY_NULL = "\\N"
# COPY's text format: a backslash starts an escape, so each of these is written as its escape and a
# literal ``\N`` in the data arrives as the two characters it is, never as the null marker.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(frame: pd.DataFrame) -> io.StringIO:
    """``frame`` in COPY's text format: a missing value is ``\\N``, every other value escaped."""
    import numpy as np
    import pandas as pd

    columns = []
    for name in frame.columns:
        series = frame[name]
        missing = series.isna().to_numpy()
        if isinstance(series.dtype, pd.DatetimeTZDtype) or getattr(series.dtype, "type", None) is np.datetime64:
            text = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f").to_numpy(dtype=object)
        else:
            text = series.to_numpy(dtype=object)
        columns.append([_COPY_NULL if gone else str(v).translate(_COPY_ESCAPES) for v, gone in zip(text, missing)])
    return io.StringIO("".join("\t".join(row) + "\n" for row in zip(*columns)))
