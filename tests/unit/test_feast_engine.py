"""LatestPerKeyEngine: materialization equals Feast's, each entity is written once, a failed run resumes.

The reference is a second store over the same Parquet files with Feast's stock setup (``duckdb``
offline store, no ``batch_engine`` key, i.e. the local engine materializing the window at once).
The Nightshift store is configured as production is (Nightshift's offline store and engine), with
key partitions of a few entities so that a window has several. Online values are compared through
``get_online_features`` and, row for row, in the SQLite tables themselves. The time-chunked
fallback (views the latest-per-key path cannot take) keeps its own tests, with the path switched off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

import sqlite3

from nightshift.features import engine as feast_engine
from nightshift.features import online_write
from nightshift.features.engine import chunk_bounds as engine_chunk_bounds
from tests.feast_helpers import (
    ASOF_OFFLINE_STORE,
    CHUNKED_ENGINE,
    STOCK_DUCKDB_OFFLINE_STORE,
    FeatureRepo,
    activity_history,
    assert_same_rows,
    make_repo,
    online_values,
    profile_history,
    write_parquet,
)

N_CUSTOMERS = 30
# customers 1 .. 30 have feature rows, 31 .. 35 have none
CUSTOMER_IDS = list(range(1, N_CUSTOMERS + 6))
# The window starts and ends mid-day and inside the data, so both of its bounds cut rows.
WINDOW_START = datetime(2024, 1, 2, 12, tzinfo=UTC)
WINDOW_END = datetime(2024, 1, 31, 12, tzinfo=UTC)
# 7-day chunks aligned on the epoch (a Thursday) end on Thursdays 00:00 UTC.
EXPECTED_CHUNKS = [
    (WINDOW_START, datetime(2024, 1, 4, tzinfo=UTC)),
    (datetime(2024, 1, 4, tzinfo=UTC), datetime(2024, 1, 11, tzinfo=UTC)),
    (datetime(2024, 1, 11, tzinfo=UTC), datetime(2024, 1, 18, tzinfo=UTC)),
    (datetime(2024, 1, 18, tzinfo=UTC), datetime(2024, 1, 25, tzinfo=UTC)),
    (datetime(2024, 1, 25, tzinfo=UTC), WINDOW_END),
]
ACTIVITY = "customer_activity"
SORT_BY = ["customer_id"]
# 30 customers in partitions of 8: four partitions per view
PARTITIONED_ENGINE = {**CHUNKED_ENGINE, "partition_entities": 8}


@pytest.fixture(scope="module")
def source_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Activity from 2024-01-01 for 36 days and profiles from 2023-12-20, beyond both window ends."""
    root = tmp_path_factory.mktemp("feast_engine_data")
    return (
        write_parquet(activity_history(N_CUSTOMERS, "2024-01-01", 36), root / "customer_activity.parquet"),
        write_parquet(profile_history(N_CUSTOMERS, "2023-12-20", 48), root / "customer_profile.parquet"),
    )


@pytest.fixture(scope="module")
def stock_online(tmp_path_factory: pytest.TempPathFactory, source_paths: tuple[Path, Path]) -> pd.DataFrame:
    """Online values after one stock materialization of the whole window."""
    stock = make_repo(tmp_path_factory.mktemp("feast_stock"), "stock", *source_paths, STOCK_DUCKDB_OFFLINE_STORE)
    stock.store.materialize(WINDOW_START, WINDOW_END)
    return online_values(stock, CUSTOMER_IDS)


def chunked_repo(root: Path, source_paths: tuple[Path, Path]) -> FeatureRepo:
    return make_repo(root, "chunked", *source_paths, ASOF_OFFLINE_STORE, PARTITIONED_ENGINE)


def time_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every view down the time-chunked fallback, as a view the latest-per-key path cannot take."""
    monkeypatch.setattr(feast_engine, "takes_latest_per_key_path", lambda task: False)


def online_rows(repo: FeatureRepo, view: str) -> pd.DataFrame:
    """Every row of the view's SQLite online table, every column, sorted by key and feature."""
    config = repo.store.config
    with sqlite3.connect(config.online_store.path) as con:
        frame = pd.read_sql_query(
            f'SELECT entity_key, feature_name, value, value_text, event_ts, created_ts FROM "{config.project}_{view}"',
            con,
        )
    return frame.sort_values(["entity_key", "feature_name"], ignore_index=True)


def write_spy(
    monkeypatch: pytest.MonkeyPatch, fail_on: Callable[[str, int], bool] = lambda view, n: False
) -> list[tuple[str, list[bytes]]]:
    """Record every key partition the engine writes as (view, entity keys); raise where ``fail_on(view, nth)``."""
    writes: list[tuple[str, list[bytes]]] = []
    write = online_write.write_sqlite

    def recorded(store: Any, config: Any, view: Any, table: Any, keys: list[bytes]) -> int:
        if fail_on(view.name, sum(1 for name, _ in writes if name == view.name) + 1):
            raise RuntimeError(f"injected failure in {view.name} partition of {len(keys)} entities")
        writes.append((view.name, list(keys)))
        return write(store, config, view, table, keys)

    monkeypatch.setattr(online_write, "write_sqlite", recorded)
    return writes


def progress_rows(repo: FeatureRepo) -> list[tuple[Any, ...]]:
    registry = Path(repo.store.config.registry.path)
    with sqlite3.connect(f"{registry}.progress.sqlite") as con:
        return con.execute(f"SELECT feature_view, partitions, part FROM {feast_engine.PROGRESS_TABLE}").fetchall()


def chunk_spy(
    monkeypatch: pytest.MonkeyPatch, fail_on: Callable[[str, int], bool] = lambda view, n: False
) -> list[tuple[str, datetime, datetime]]:
    """Record every chunk the engine runs as (view, start, end); raise where ``fail_on(view, nth chunk)``."""
    chunks: list[tuple[str, datetime, datetime]] = []
    run_chunk = feast_engine.LocalComputeEngine._materialize_one

    def recorded(self: Any, registry: Any, task: Any, **kwargs: Any) -> Any:
        view = task.feature_view.name
        chunks.append((view, task.start_time, task.end_time))
        # a chunking loop that never ends would hang the test run; fail it instead
        if len(chunks) > 100:
            raise RuntimeError(f"runaway chunking: {chunks[-3:]}")
        if fail_on(view, sum(1 for name, _, _ in chunks if name == view)):
            raise RuntimeError(f"injected failure in {view} chunk {task.start_time} .. {task.end_time}")
        return run_chunk(self, registry, task, **kwargs)

    monkeypatch.setattr(feast_engine.LocalComputeEngine, "_materialize_one", recorded)
    return chunks


def most_recent_end_time(repo: FeatureRepo, view: str) -> datetime:
    """From the registry itself, not the store's cached copy."""
    return repo.store.registry.get_feature_view(view, repo.store.project, allow_cache=False).most_recent_end_time


# --------------------------------------------------------------------------------------------------
# 1. latest row per key: the same online store as stock, each entity written once
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stock_repo(tmp_path_factory: pytest.TempPathFactory, source_paths: tuple[Path, Path]) -> FeatureRepo:
    stock = make_repo(tmp_path_factory.mktemp("feast_stock_rows"), "stock", *source_paths, STOCK_DUCKDB_OFFLINE_STORE)
    stock.store.materialize(WINDOW_START, WINDOW_END)
    return stock


def test_materialization_matches_stock_row_for_row_writing_each_entity_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_paths: tuple[Path, Path], stock_online: pd.DataFrame,
    stock_repo: FeatureRepo,
) -> None:
    repo = chunked_repo(tmp_path, source_paths)
    writes = write_spy(monkeypatch)

    repo.store.materialize(WINDOW_START, WINDOW_END)

    for view in (ACTIVITY, "customer_profile"):
        partitions = [keys for name, keys in writes if name == view]
        entities = online_rows(stock_repo, view)["entity_key"].nunique()
        assert entities > 3 * 8
        assert [len(keys) for keys in partitions] == [8, 8, 8, entities - 24], "partitions of 8 entities"
        keys = [key for part in partitions for key in part]
        assert len(set(keys)) == len(keys) == entities, "each entity once"
        assert keys == sorted(keys), "partitions in entity-key order"
        assert most_recent_end_time(repo, view) == WINDOW_END
        pd.testing.assert_frame_equal(online_rows(repo, view), online_rows(stock_repo, view))
    assert_same_rows(online_values(repo, CUSTOMER_IDS), stock_online, SORT_BY)
    assert progress_rows(repo) == [], "progress is cleared once the window is recorded"
    # most customers have values, so the comparison is not of two empty stores
    assert stock_online["spend"].notna().sum() >= N_CUSTOMERS - 2
    assert stock_online["plan"].notna().sum() >= N_CUSTOMERS // 2


# --------------------------------------------------------------------------------------------------
# 2. resume after a failure, by key partition
# --------------------------------------------------------------------------------------------------
def test_failed_run_resumes_from_the_first_unwritten_key_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_paths: tuple[Path, Path], stock_repo: FeatureRepo,
) -> None:
    repo = chunked_repo(tmp_path, source_paths)
    writes = write_spy(monkeypatch, fail_on=lambda view, n: view == ACTIVITY and n == 3)

    with pytest.raises(RuntimeError, match="injected failure in customer_activity"):
        repo.store.materialize(WINDOW_START, WINDOW_END)

    written = [keys for name, keys in writes if name == ACTIVITY]
    assert [len(keys) for keys in written] == [8, 8]
    # the window is not recorded: a rerun asks for the same one
    assert most_recent_end_time(repo, ACTIVITY) == WINDOW_START
    assert sorted(progress_rows(repo)) == [(ACTIVITY, 4, 0), (ACTIVITY, 4, 1)]
    # online: the two written partitions hold exactly stock's rows, the others nothing
    partial = online_rows(repo, ACTIVITY)
    expected = online_rows(stock_repo, ACTIVITY)
    done_keys = {key for keys in written for key in keys}
    assert set(partial["entity_key"]) == done_keys
    pd.testing.assert_frame_equal(partial, expected[expected["entity_key"].map(lambda key: key in done_keys)].reset_index(drop=True))

    # rerun as nightshift.features.materialize does: from the view's most recent end time, un-patched
    monkeypatch.undo()
    resumed = write_spy(monkeypatch)
    repo.store.materialize(most_recent_end_time(repo, ACTIVITY), WINDOW_END, feature_views=[ACTIVITY])

    rewritten = {key for _, keys in resumed for key in keys}
    assert [len(keys) for _, keys in resumed] == [8, 6], "only the partitions not written yet"
    assert not rewritten & done_keys
    assert most_recent_end_time(repo, ACTIVITY) == WINDOW_END
    pd.testing.assert_frame_equal(online_rows(repo, ACTIVITY), expected)
    assert progress_rows(repo) == []


def test_a_rerun_for_another_window_starts_it_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_paths: tuple[Path, Path], stock_repo: FeatureRepo,
) -> None:
    """Progress belongs to one window: a rerun ending later writes every partition again."""
    repo = chunked_repo(tmp_path, source_paths)
    early_end = WINDOW_END - timedelta(days=3)
    write_spy(monkeypatch, fail_on=lambda view, n: view == ACTIVITY and n == 2)
    with pytest.raises(RuntimeError, match="injected failure"):
        repo.store.materialize(WINDOW_START, early_end, feature_views=[ACTIVITY])
    assert progress_rows(repo) == [(ACTIVITY, 4, 0)]

    monkeypatch.undo()
    resumed = write_spy(monkeypatch)
    repo.store.materialize(most_recent_end_time(repo, ACTIVITY), WINDOW_END, feature_views=[ACTIVITY])

    assert [len(keys) for _, keys in resumed] == [8, 8, 8, 6]
    pd.testing.assert_frame_equal(online_rows(repo, ACTIVITY), online_rows(stock_repo, ACTIVITY))


# --------------------------------------------------------------------------------------------------
# 3. the time-chunked fallback: same online values as stock, resume from the last finished chunk
# --------------------------------------------------------------------------------------------------
def test_chunked_materialization_matches_stock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_paths: tuple[Path, Path], stock_online: pd.DataFrame
) -> None:
    repo = chunked_repo(tmp_path, source_paths)
    time_chunked(monkeypatch)
    chunks = chunk_spy(monkeypatch)

    repo.store.materialize(WINDOW_START, WINDOW_END)

    for view in (ACTIVITY, "customer_profile"):
        assert [(start, end) for name, start, end in chunks if name == view] == EXPECTED_CHUNKS
        assert most_recent_end_time(repo, view) == WINDOW_END
    assert_same_rows(online_values(repo, CUSTOMER_IDS), stock_online, SORT_BY)
    # most customers have values, so the comparison is not of two empty stores
    assert stock_online["spend"].notna().sum() >= N_CUSTOMERS - 2
    assert stock_online["plan"].notna().sum() >= N_CUSTOMERS // 2


def test_failed_run_resumes_from_the_last_finished_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_paths: tuple[Path, Path], stock_online: pd.DataFrame
) -> None:
    repo = chunked_repo(tmp_path, source_paths)
    time_chunked(monkeypatch)
    chunks = chunk_spy(monkeypatch, fail_on=lambda view, n: view == ACTIVITY and n == 3)

    with pytest.raises(RuntimeError, match="injected failure in customer_activity"):
        repo.store.materialize(WINDOW_START, WINDOW_END)

    last_finished_end = EXPECTED_CHUNKS[1][1]
    assert [(start, end) for name, start, end in chunks if name == ACTIVITY] == EXPECTED_CHUNKS[:3]
    assert most_recent_end_time(repo, ACTIVITY) == last_finished_end
    # online: activity exactly as a stock materialization of [window start, end of the last finished chunk]
    partial = make_repo(tmp_path, "stock_partial", *source_paths, STOCK_DUCKDB_OFFLINE_STORE)
    partial.store.materialize(WINDOW_START, last_finished_end, feature_views=[ACTIVITY])
    activity_columns = ["customer_id", "sessions", "spend"]
    expected_partial = online_values(partial, CUSTOMER_IDS)[activity_columns]
    assert_same_rows(online_values(repo, CUSTOMER_IDS)[activity_columns], expected_partial, SORT_BY)
    assert not expected_partial.equals(stock_online[activity_columns]), "the failure must leave visible work undone"

    # rerun as nightshift.features.materialize does: from the view's most recent end time
    monkeypatch.undo()
    time_chunked(monkeypatch)
    resumed = chunk_spy(monkeypatch)
    repo.store.materialize(most_recent_end_time(repo, ACTIVITY), WINDOW_END, feature_views=[ACTIVITY])

    assert [(start, end) for _, start, end in resumed] == EXPECTED_CHUNKS[2:]
    assert most_recent_end_time(repo, ACTIVITY) == WINDOW_END
    assert_same_rows(online_values(repo, CUSTOMER_IDS), stock_online, SORT_BY)


# --------------------------------------------------------------------------------------------------
# 4. chunk_bounds
# --------------------------------------------------------------------------------------------------
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def chunk_bounds(
    start: datetime, end: datetime, step: timedelta, align: bool = True
) -> list[tuple[datetime, datetime]]:
    """The engine's chunks as a list, cut off at 1000 so a generator that never ends fails instead of hanging."""
    return list(islice(engine_chunk_bounds(start, end, step, align), 1000))


def assert_tiles(chunks: list[tuple[datetime, datetime]], start: datetime, end: datetime, step: timedelta) -> None:
    """Consecutive, non-empty, at most ``step`` long, from exactly ``start`` to exactly ``end``."""
    assert chunks[0][0] == start and chunks[-1][1] == end
    for (_, previous_end), (next_start, _) in pairwise(chunks):
        assert previous_end == next_start, "a gap or an overlap between chunks"
    for chunk_start, chunk_end in chunks:
        assert timedelta(0) < chunk_end - chunk_start <= step


@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        (WINDOW_START, WINDOW_END, timedelta(days=7)),
        (datetime(2024, 1, 4, tzinfo=UTC), datetime(2024, 1, 25, tzinfo=UTC), timedelta(days=7)),  # both aligned
        (datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC), timedelta(days=7)),  # inside one chunk
        (datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(2024, 1, 4, 1, tzinfo=UTC), timedelta(hours=12)),
    ],
    ids=["mid_day", "aligned", "within_one_chunk", "half_days"],
)
def test_chunk_bounds_tile_the_window_on_aligned_boundaries(start: datetime, end: datetime, step: timedelta) -> None:
    chunks = chunk_bounds(start, end, step)

    assert_tiles(chunks, start, end, step)
    inner_boundaries = [chunk_end for _, chunk_end in chunks[:-1]]
    assert all((boundary - EPOCH) % step == timedelta(0) for boundary in inner_boundaries)
    # aligned: no chunk could be merged with its neighbour without crossing a boundary
    assert len(chunks) == len({(chunk_start - EPOCH) // step for chunk_start, _ in chunks})


def test_chunk_bounds_known_cuts() -> None:
    assert chunk_bounds(WINDOW_START, WINDOW_END, timedelta(days=7)) == EXPECTED_CHUNKS
    aligned_start = datetime(2024, 1, 4, tzinfo=UTC)
    assert chunk_bounds(aligned_start, aligned_start + timedelta(days=14), timedelta(days=7)) == [
        (aligned_start, aligned_start + timedelta(days=7)),
        (aligned_start + timedelta(days=7), aligned_start + timedelta(days=14)),
    ]


def test_chunk_bounds_resumed_window_cuts_the_same_chunks() -> None:
    step = timedelta(days=7)
    full = chunk_bounds(WINDOW_START, WINDOW_END, step)
    for resume_at in (full[2][0], datetime(2024, 1, 13, 7, tzinfo=UTC)):
        resumed = chunk_bounds(resume_at, WINDOW_END, step)
        assert resumed[0][0] == resume_at
        assert [end for _, end in resumed] == [end for _, end in full if end > resume_at]


def test_chunk_bounds_unaligned_steps_from_the_start() -> None:
    start, end, step = WINDOW_START, WINDOW_END, timedelta(days=7)
    chunks = chunk_bounds(start, end, step, align=False)

    assert_tiles(chunks, start, end, step)
    assert [chunk_start for chunk_start, _ in chunks] == [start + i * step for i in range(len(chunks))]


def test_chunk_bounds_are_utc_whatever_the_input_zone() -> None:
    step = timedelta(days=7)
    naive = chunk_bounds(datetime(2024, 1, 2, 12), datetime(2024, 1, 31, 12), step)
    berlin = ZoneInfo("Europe/Berlin")
    zoned = chunk_bounds(WINDOW_START.astimezone(berlin), WINDOW_END.astimezone(berlin), step)
    assert naive == zoned == EXPECTED_CHUNKS
    assert all(bound.tzinfo == UTC for chunk in zoned for bound in chunk)


@pytest.mark.parametrize("end", [WINDOW_START, WINDOW_START - timedelta(seconds=1)], ids=["empty", "reversed"])
def test_chunk_bounds_of_an_empty_window(end: datetime) -> None:
    assert chunk_bounds(WINDOW_START, end, timedelta(days=7)) == []


# --------------------------------------------------------------------------------------------------
# edge cases
# --------------------------------------------------------------------------------------------------
def test_materialize_without_event_timestamps_records_the_window(
    tmp_path: Path, source_paths: tuple[Path, Path]
) -> None:
    repo = chunked_repo(tmp_path, source_paths)
    repo.store.materialize(WINDOW_START, WINDOW_END, disable_event_timestamp=True)
    assert most_recent_end_time(repo, ACTIVITY) == WINDOW_END


def test_a_resumed_run_rewrites_a_written_partition_whose_rows_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_paths: tuple[Path, Path]
) -> None:
    """Progress records what each partition wrote: after the day is re-ingested, the same window writes it again."""
    activity, profile = (write_parquet(pd.read_parquet(path), tmp_path / "data" / path.name) for path in source_paths)
    repo = make_repo(tmp_path, "chunked", activity, profile, ASOF_OFFLINE_STORE, PARTITIONED_ENGINE)
    write_spy(monkeypatch, fail_on=lambda view, n: view == ACTIVITY and n == 3)
    with pytest.raises(RuntimeError, match="injected failure"):
        repo.store.materialize(WINDOW_START, WINDOW_END, feature_views=[ACTIVITY])

    changed = pd.read_parquet(activity)
    changed["spend"] = changed["spend"] + 1000
    write_parquet(changed, activity)
    monkeypatch.undo()
    resumed = write_spy(monkeypatch)
    repo.store.materialize(most_recent_end_time(repo, ACTIVITY), WINDOW_END, feature_views=[ACTIVITY])

    assert [len(keys) for _, keys in resumed][:2] == [8, 8], "the two written partitions are written again"
    stock = make_repo(tmp_path, "stock", activity, profile, STOCK_DUCKDB_OFFLINE_STORE)
    stock.store.materialize(WINDOW_START, WINDOW_END, feature_views=[ACTIVITY])
    pd.testing.assert_frame_equal(online_rows(repo, ACTIVITY), online_rows(stock, ACTIVITY))
