"""A re-ingest killed inside its publish step, through the real ingest code: raw, quarantine and
meta.validation_runs of the day become visible together or not at all (embedded profile).

A spawned child re-ingests a day that already holds an older batch and SIGKILLs itself inside
``replace_partitions``: after the raw file is renamed into place and before the quarantine file
is (``between``), or just before the group's manifest is renamed (``commit``). The helpers here
(:func:`run_killed`, :func:`stop_inside_publish`) are shared with the scoring test of the same kind.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from nightshift.ingest import ingest_batch
from nightshift.landing import Landing, batch_id
from nightshift.settings import Settings
from nightshift.usecase import SourceConfig
from nightshift.warehouse import VALIDATION_RUNS, DuckDBWarehouse, Warehouse, quarantine_table, raw_table
from tests.conftest import csv_bytes
from tests.unit.test_validation import HEADER, good_row, with_value

DAY = date(2026, 1, 3)
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
ACTIVITY = SourceConfig(name="activity", suite="activity", wait_hours=6)
#: The day's three partitions, in the order write_batch publishes them.
PARTITIONS: list[tuple[str, dict[str, Any]]] = [
    (raw_table("activity"), {"batch_date": DAY}), (quarantine_table("activity"), {"batch_date": DAY}),
    (VALIDATION_RUNS, {"source": "activity", "batch_date": DAY}),
]
CHILD_TIMEOUT = 300  # seconds: a spawned child imports pandas, GX and the scoring stack before it writes


# --- shared with tests/unit/test_scoring_publish_killed.py -----------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``NIGHTSHIFT_*`` variables that make :meth:`Settings.from_env` in a child equal ``settings``."""
    return {
        "NIGHTSHIFT_HOME": str(settings.home), "NIGHTSHIFT_LANDING_URI": settings.landing_uri,
        "NIGHTSHIFT_WAREHOUSE_URI": settings.warehouse_uri, "NIGHTSHIFT_ARTIFACTS_URI": settings.artifacts_uri,
        "NIGHTSHIFT_MLFLOW_URI": settings.mlflow_uri, "NIGHTSHIFT_CONFIG_DIR": str(settings.config_dir),
        "NIGHTSHIFT_EXPECTATIONS_DIR": str(settings.expectations_dir),
        "NIGHTSHIFT_DBT_MANIFEST": str(settings.dbt_manifest),
    }


def child_settings(env: dict[str, str]) -> Settings:
    """In a child: set the parent's variables, then read the settings as a task would."""
    os.environ.update(env)
    return Settings.from_env()


def stop_inside_publish(settings: Settings, stop_at: str) -> None:
    """From now on this process SIGKILLs itself inside the warehouse's publish step, at ``stop_at``.

    ``between``: after the first partition file of the group is renamed into place, before the second.
    ``commit``: when the group's manifest is about to be renamed into place (its commit point).
    Only renames under the warehouse's ``tables/`` folder count.
    """
    tables = str(settings.warehouse_dir / "tables") + os.sep
    journal = tables + ".transactions" + os.sep
    real_replace = os.replace
    renamed: list[str] = []

    def replace(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        target_text = str(target)
        partition_file = target_text.startswith(tables) and target_text.endswith("part.parquet")
        manifest = target_text.startswith(journal) and target_text.endswith(".json")
        if (stop_at == "between" and renamed and partition_file) or (stop_at == "commit" and manifest):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(source, target, *args, **kwargs)
        if partition_file:
            renamed.append(target_text)

    setattr(os, "replace", replace)  # this child process only


def run_killed(target: Callable[..., None], *args: Any) -> int | None:
    """Run ``target(*args)`` in a spawned child; its exit code (``-SIGKILL`` when it killed itself)."""
    child = multiprocessing.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join(CHILD_TIMEOUT)
    if child.exitcode is None:
        child.kill()
        child.join(30)
        raise AssertionError(f"the child did not finish within {CHILD_TIMEOUT} s")
    return child.exitcode


def on_disk(settings: Settings, partitions: list[tuple[str, dict[str, Any]]], column: str) -> list[set]:
    """The values of ``column`` in each partition file right now, read without the warehouse (no recovery)."""
    warehouse = DuckDBWarehouse(Path(settings.warehouse_uri.removeprefix("duckdb://")))
    return [set(pq.read_table(warehouse._partition_file(t, k)).column(column).to_pylist()) for t, k in partitions]


def in_catalog(settings: Settings, sql: str, parameters: list) -> list[tuple]:
    """Rows of ``sql`` run on the catalog views, opened read-only as an analyst would."""
    with duckdb.connect(settings.warehouse_uri.removeprefix("duckdb://"), read_only=True) as con:
        return con.execute(sql, parameters).fetchall()


# --- the ingest ---------------------------------------------------------------------------------------


def _reingest(env: dict[str, str], stop_at: str) -> None:
    """In a child: re-ingest activity for DAY, killed at ``stop_at`` inside the publish step."""
    settings = child_settings(env)
    stop_inside_publish(settings, stop_at)
    ingest_batch(settings, ACTIVITY, DAY, NOW)


def day_ingested_then_late_file(settings: Settings) -> tuple[str, str]:
    """DAY ingested from one file, then a second file landed; (old batch id, the re-run's batch id)."""
    landing = Landing(settings.landing_uri)
    first = [good_row(1), good_row(2), with_value(3, "sessions", -1), good_row(4), good_row(5)]
    landing.write_bytes("activity", DAY, "activity_2026-01-03.csv", csv_bytes(HEADER, first))
    old = ingest_batch(settings, ACTIVITY, DAY, NOW).batch_id
    late = [good_row(6), good_row(7), good_row(8), good_row(9), with_value(10, "sessions", -1)]
    landing.write_bytes("activity", DAY, "activity_2026-01-03_late.csv", csv_bytes(HEADER, late))
    files, _ = landing.list_day("activity", DAY, ACTIVITY.pattern)
    new = batch_id("activity", DAY, [(f.name, landing.read_bytes(f)) for f in files])
    assert new != old
    return old, new


def batch_ids(settings: Settings) -> list[set[str]]:
    """The batch ids each of the day's three tables holds, read through a fresh warehouse (which recovers)."""
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    return [set(warehouse.read(t, k)["batch_id"]) for t, k in PARTITIONS]


def catalog_batch_ids(settings: Settings) -> list[list[tuple]]:
    return [in_catalog(settings, f"select distinct batch_id from {t} where batch_date = ?", [DAY])
            for t, _ in PARTITIONS]


def test_a_reingest_killed_between_raw_and_quarantine_is_rolled_forward(settings: Settings) -> None:
    old, new = day_ingested_then_late_file(settings)

    assert run_killed(_reingest, settings_env(settings), "between") == -signal.SIGKILL
    assert on_disk(settings, PARTITIONS, "batch_id") == [{new}, {old}, {old}], "killed after raw, before quarantine"

    assert batch_ids(settings) == [{new}] * 3, "all three tables from the new batch, never new raw with old quarantine"
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    assert sorted(warehouse.read(*PARTITIONS[0])["event_id"]) == [f"a-{i}" for i in (1, 2, 4, 5, 6, 7, 8, 9)]
    assert sorted(warehouse.read(*PARTITIONS[1])["event_id"]) == ["a-10", "a-3"]
    runs = warehouse.read(*PARTITIONS[2])
    assert runs[["landed_rows", "accepted_rows", "quarantined_rows"]].values.tolist() == [[10, 8, 2]]
    assert catalog_batch_ids(settings) == [[(new,)]] * 3, "the analysts' views agree once the group is rolled forward"
    assert not any((settings.warehouse_dir / "tables" / ".transactions").iterdir())


def test_a_reingest_killed_before_its_commit_leaves_every_table_old(settings: Settings) -> None:
    old, new = day_ingested_then_late_file(settings)

    assert run_killed(_reingest, settings_env(settings), "commit") == -signal.SIGKILL

    assert batch_ids(settings) == [{old}] * 3, "nothing of the killed re-ingest is visible"
    assert catalog_batch_ids(settings) == [[(old,)]] * 3
    assert not any((settings.warehouse_dir / "tables" / ".transactions").iterdir()), "its staged files are removed"
    ingest_batch(settings, ACTIVITY, DAY, NOW)  # the task's retry
    assert batch_ids(settings) == [{new}] * 3, "the retry converges"
