"""The embedded warehouse publishes a group of tables atomically, even when the writer is killed
between two renames (a subprocess SIGKILLs itself inside the publish step), a reader blocks on the
warehouse lock while a group is half renamed, and partitions can be dropped."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from nightshift.warehouse import (
    VALIDATION_RUNS, DuckDBWarehouse, PartitionWrite, Warehouse, WarehouseError, prediction_errors_table,
    predictions_table, quarantine_table, raw_table,
)
from tests.conftest import wait_until

DAY = date(2026, 1, 3)
INGEST = [(raw_table("t"), {"batch_date": DAY}), (quarantine_table("t"), {"batch_date": DAY}),
          (VALIDATION_RUNS, {"source": "t", "batch_date": DAY})]
SCORING = [(predictions_table("u"), {"scoring_date": DAY}), (prediction_errors_table("u"), {"scoring_date": DAY})]


def rows(value: int) -> pd.DataFrame:
    return pd.DataFrame({"x": pd.array([value], dtype="Int64")})


def group(tables: list[tuple[str, dict]], value: int) -> list[PartitionWrite]:
    return [PartitionWrite(table, key, rows(value)) for table, key in tables]


def _write_then_stop(database: str, tables: list[tuple[str, dict]], value: int, stop_at: str, pause: str = "") -> None:
    """In a child: write the group; at ``stop_at`` either SIGKILL this process or wait for ``pause`` to vanish.

    ``between``: after the first partition file is renamed into place, before the second.
    ``commit``: when the group's manifest is about to be renamed into place (its commit point).
    """
    real_replace = os.replace
    renamed: list[str] = []
    stopped: list[bool] = []

    def replace(source: str, target: str) -> None:
        target = str(target)
        if not stopped and (
            (stop_at == "between" and renamed and target.endswith("part.parquet"))
            or (stop_at == "commit" and target.endswith(".json"))
        ):
            stopped.append(True)
            if not pause:
                os.kill(os.getpid(), signal.SIGKILL)
            Path(pause).touch()
            wait_until(f"the test to remove {pause} (the writer is paused between two renames)",
                       Path(pause).exists, lambda exists: not exists, timeout=120, interval=0.01)
        real_replace(source, target)
        if target.endswith("part.parquet"):
            renamed.append(target)

    os.replace = replace
    Warehouse.from_uri(f"duckdb:///{database}").replace_partitions(group(tables, value))


def run_child(database: Path, tables: list, value: int, stop_at: str) -> int:
    args = (str(database), tables, value, stop_at)
    child = multiprocessing.get_context("spawn").Process(target=_write_then_stop, args=args)
    child.start()
    child.join(120)
    assert child.exitcode is not None, "the writer did not finish"
    return child.exitcode


def on_disk(root: Path, tables: list) -> list[int]:
    """What each partition file holds right now, read without the warehouse (no recovery)."""
    warehouse = DuckDBWarehouse(root / "wh.duckdb")
    return [pq.read_table(warehouse._partition_file(t, k)).column("x").to_pylist()[0] for t, k in tables]


@pytest.mark.parametrize("tables", [INGEST, SCORING], ids=["raw+quarantine+validation_runs", "predictions+errors"])
@pytest.mark.parametrize("next_process", ["from_uri", "read"])
def test_a_writer_killed_between_renames_is_rolled_forward(tmp_path: Path, tables: list, next_process: str) -> None:
    database = tmp_path / "wh.duckdb"
    Warehouse.from_uri(f"duckdb:///{database}").replace_partitions(group(tables, 1))
    assert run_child(database, tables, 2, "between") == -signal.SIGKILL
    assert on_disk(tmp_path, tables) == [2] + [1] * (len(tables) - 1), "the kill landed between two renames"

    warehouse = Warehouse.from_uri(f"duckdb:///{database}") if next_process == "from_uri" else DuckDBWarehouse(database)
    assert [warehouse.read(t, k)["x"].tolist() for t, k in tables] == [[2]] * len(tables), "all new, never a mix"
    assert not any((tmp_path / "tables" / ".transactions").iterdir()), "the group is finished and forgotten"
    with duckdb.connect(str(database), read_only=True) as con:
        assert [con.execute(f"select x from {t}").fetchall() for t, _ in tables] == [[(2,)]] * len(tables)


@pytest.mark.parametrize("tables", [INGEST, SCORING], ids=["raw+quarantine+validation_runs", "predictions+errors"])
def test_a_writer_killed_before_its_commit_leaves_every_table_old(tmp_path: Path, tables: list) -> None:
    database = tmp_path / "wh.duckdb"
    Warehouse.from_uri(f"duckdb:///{database}").replace_partitions(group(tables, 1))
    assert run_child(database, tables, 2, "commit") == -signal.SIGKILL
    warehouse = Warehouse.from_uri(f"duckdb:///{database}")
    assert [warehouse.read(t, k)["x"].tolist() for t, k in tables] == [[1]] * len(tables)
    assert not any((tmp_path / "tables" / ".transactions").iterdir()), "the dead writer's staged files are removed"
    warehouse.replace_partitions(group(tables, 3))
    assert [warehouse.read(t, k)["x"].tolist() for t, k in tables] == [[3]] * len(tables), "the rerun converges"


def test_a_reader_waits_while_a_group_is_being_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer is paused after renaming raw, before quarantine: a reader must be seen blocked on the
    warehouse lock (a reader without that lock returns the old quarantine row at once), then see it new."""
    database, pause = tmp_path / "wh.duckdb", tmp_path / "paused"
    Warehouse.from_uri(f"duckdb:///{database}").replace_partitions(group(INGEST, 1))
    child = multiprocessing.get_context("spawn").Process(
        target=_write_then_stop, args=(str(database), INGEST, 2, "between", str(pause))
    )
    child.start()
    try:
        wait_until("the writer to pause at its second rename", lambda: (pause.exists(), child.exitcode),
                   lambda state: state[0] or state[1] is not None, timeout=120, interval=0.05)
        assert pause.exists(), f"the writer never reached its second rename (exit code {child.exitcode})"
        assert on_disk(tmp_path, INGEST) == [2, 1, 1]

        blocked = threading.Event()
        real_flock = fcntl.flock

        def flock(handle: object, operation: int) -> None:
            """Try without blocking first, so that having to wait for the warehouse lock is seen."""
            if operation & (fcntl.LOCK_NB | fcntl.LOCK_UN):
                return real_flock(handle, operation)
            try:
                return real_flock(handle, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                if str(getattr(handle, "name", "")).endswith(".warehouse.lock"):
                    blocked.set()
                return real_flock(handle, operation)

        monkeypatch.setattr(fcntl, "flock", flock)
        seen: list[list[int]] = []

        def read_quarantine() -> None:
            seen.append(Warehouse.from_uri(f"duckdb:///{database}").read(INGEST[1][0])["x"].tolist())

        reader = threading.Thread(target=read_quarantine, daemon=True)
        reader.start()
        wait_until("the reader to block on the warehouse lock (or to return)",
                   lambda: (blocked.is_set(), reader.is_alive()),
                   lambda state: state[0] or not state[1], timeout=60, interval=0.05)
        assert blocked.is_set() and reader.is_alive() and seen == [], (
            f"the reader did not wait for the writer's lock: it returned {seen} (raw already new, quarantine old)")

        pause.unlink()
        wait_until("the reader to return once the writer finished", reader.is_alive, lambda alive: not alive,
                   timeout=60, interval=0.05)
        assert seen == [[2]], "the reader saw the whole group, not new raw with old quarantine"
    finally:
        pause.unlink(missing_ok=True)
        child.join(60)
    assert child.exitcode == 0


def test_drop_partitions_removes_a_subtree_and_nothing_else(tmp_path: Path) -> None:
    warehouse = Warehouse.from_uri(f"duckdb:///{tmp_path}/wh.duckdb")
    shards = "staging.u_scoring_shards"
    keys = [{"scoring_date": DAY, "run_key": run, "shard": shard} for run in ("abc", "def") for shard in (0, 1)]
    warehouse.replace_partitions([PartitionWrite(shards, key, rows(i)) for i, key in enumerate(keys)])
    warehouse.drop_partitions(shards, {"scoring_date": DAY, "run_key": "abc"})
    assert sorted(warehouse.read(shards)["x"]) == [2, 3]
    assert not (tmp_path / "tables" / "staging" / "u_scoring_shards" / f"scoring_date={DAY}" / "run_key=abc").exists()
    warehouse.drop_partitions(shards, {"shard": 1})  # not a prefix: matched on the folder values
    assert warehouse.read(shards)["x"].tolist() == [2]
    warehouse.drop_partitions(shards, {"scoring_date": DAY, "run_key": "nothing"})
    warehouse.drop_partitions("staging.never_written", {"scoring_date": DAY})
    warehouse.drop_partitions(shards, {"scoring_date": DAY})
    with pytest.raises(WarehouseError, match="does not exist yet"):
        warehouse.read(shards)
    with pytest.raises(ValueError, match="at least one partition column"):
        warehouse.drop_partitions(shards, {})
    assert not any((tmp_path / "tables" / ".transactions").iterdir())
