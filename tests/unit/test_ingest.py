"""The ingest service without Airflow: partitions written, idempotency, refusals, missing batches."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest

from nightshift.ingest import BatchMissing, batch_deadline, batch_landed, ingest_batch
from nightshift.landing import Landing
from nightshift.settings import Settings
from nightshift.usecase import SourceConfig
from nightshift.ingest.validation import BatchRejected
from nightshift.warehouse import VALIDATION_RUNS, Warehouse, WarehouseError
from tests.conftest import csv_bytes
from tests.unit.test_validation import HEADER, good_row, with_value

DAY = date(2026, 1, 3)
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
ACTIVITY = SourceConfig(name="activity", suite="activity", wait_hours=6)


def land(settings: Settings, rows: list[list[object]], name: str = "activity_2026-01-03.csv", day: date = DAY) -> None:
    Landing(settings.landing_uri).write_bytes("activity", day, name, csv_bytes(HEADER, rows))


def tables(settings: Settings) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    return {t: warehouse.read(t).sort_values(list(warehouse.read(t).columns[:2])).reset_index(drop=True) for t in warehouse.tables()}


def test_ingest_writes_accepted_quarantined_and_summary(settings: Settings) -> None:
    land(settings, [good_row(1), good_row(2), with_value(3, "sessions", -1), good_row(4), good_row(5)])
    summary = ingest_batch(settings, ACTIVITY, DAY, NOW)
    assert (summary.landed, summary.accepted, summary.quarantined) == (5, 4, 1), "20 % quarantined: at the limit"
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    raw = warehouse.read("raw.activity")
    assert sorted(raw["event_id"]) == ["a-1", "a-2", "a-4", "a-5"] and set(raw["batch_date"].dt.date) == {DAY}
    assert set(raw["batch_id"]) == {summary.batch_id}
    quarantine = warehouse.read("quarantine.activity")
    assert quarantine["event_id"].tolist() == ["a-3"]
    assert quarantine["quarantine_reasons"].tolist() == ["expect_column_values_to_be_between(sessions)"]
    runs = warehouse.read(VALIDATION_RUNS)
    assert runs[["landed_rows", "accepted_rows", "quarantined_rows"]].values.tolist() == [[5, 4, 1]]
    assert runs["suite_name"].tolist() == ["activity"] and runs["suite_version"].tolist() == ["1"]
    assert runs["quarantined_by_reason"].tolist() == ['{"expect_column_values_to_be_between(sessions)":1}']


def test_rerunning_a_day_replaces_exactly_that_day(settings: Settings) -> None:
    land(settings, [good_row(1), with_value(2, "plan_change", "bogus"), *(good_row(i) for i in range(3, 7))])
    land(settings, [good_row(7)], name="activity_2026-01-04.csv", day=date(2026, 1, 4))
    ingest_batch(settings, ACTIVITY, DAY, NOW)
    ingest_batch(settings, ACTIVITY, date(2026, 1, 4), NOW)
    before = tables(settings)
    ingest_batch(settings, ACTIVITY, DAY, NOW)
    after = tables(settings)
    for name in ("raw.activity", "quarantine.activity"):
        pd.testing.assert_frame_equal(before[name], after[name])
    pd.testing.assert_frame_equal(
        before[VALIDATION_RUNS].drop(columns="validated_at"), after[VALIDATION_RUNS].drop(columns="validated_at")
    )
    assert len(after["raw.activity"]) == 6, "five rows for D and one for D + 1, never duplicated"


def test_second_file_for_a_day_joins_the_batch_on_rerun(settings: Settings) -> None:
    land(settings, [good_row(i) for i in range(1, 6)])
    first = ingest_batch(settings, ACTIVITY, DAY, NOW)
    land(settings, [good_row(i) for i in range(6, 10)] + [good_row(2)], name="activity_2026-01-03_late.csv")
    second = ingest_batch(settings, ACTIVITY, DAY, NOW)
    assert second.batch_id != first.batch_id
    assert (second.landed, second.accepted, second.quarantined) == (10, 8, 2), "a-2 repeated across files is a duplicate key"
    raw = Warehouse.from_uri(settings.warehouse_uri).read("raw.activity")
    assert sorted(raw["event_id"]) == sorted(f"a-{i}" for i in range(1, 10) if i != 2)


def test_rejected_batch_writes_nothing_and_leaves_the_file(settings: Settings) -> None:
    land(settings, [good_row(1)])
    ingest_batch(settings, ACTIVITY, DAY, NOW)
    before = tables(settings)
    path = settings.home / "landing" / "activity" / DAY.isoformat() / "activity_2026-01-03.csv"
    path.write_bytes(b"event_id,customer_id\n\x00\xff")
    with pytest.raises(BatchRejected) as info:
        ingest_batch(settings, ACTIVITY, DAY, NOW)
    message = str(info.value)
    assert str(path) in message and "NUL bytes" in message and "clear this task" in message
    assert path.read_bytes() == b"event_id,customer_id\n\x00\xff", "the landed file is untouched"
    after = tables(settings)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[name])
    land(settings, [good_row(1), good_row(5)])  # the upstream fix
    assert ingest_batch(settings, ACTIVITY, DAY, NOW).accepted == 2


def test_missing_batch_waits_until_the_deadline_then_fails_clearly(settings: Settings) -> None:
    deadline = batch_deadline(ACTIVITY, DAY)
    assert deadline == datetime(2026, 1, 4, 6, tzinfo=timezone.utc)
    assert batch_landed(settings, ACTIVITY, DAY, now=datetime(2026, 1, 4, 5, tzinfo=timezone.utc)) is False
    with pytest.raises(BatchMissing, match=r"no batch for source 'activity' on 2026-01-03: nothing landed in .*activity/2026-01-03/ by 2026-01-04 06:00 UTC") as info:
        batch_landed(settings, ACTIVITY, DAY, now=deadline)
    assert "clear this task" in str(info.value)
    land(settings, [good_row(1)])
    assert batch_landed(settings, ACTIVITY, DAY, now=deadline) is True


def test_a_run_started_by_hand_or_a_backfill_fails_at_once_without_a_batch(settings: Settings) -> None:
    """Only the nightly scheduled run waits for a late upstream; a user's run for a day without data
    fails now with the same advice, not after hours of sensor pokes."""
    before_deadline = datetime(2026, 1, 4, 1, tzinfo=timezone.utc)
    with pytest.raises(BatchMissing, match=r"nothing has landed in .*activity/2026-01-03/ yet.*does not wait") as info:
        batch_landed(settings, ACTIVITY, DAY, now=before_deadline, wait=False)
    assert "clear this task" in str(info.value) and "2026-01-04 06:00 UTC" in str(info.value)
    land(settings, [good_row(1)])
    assert batch_landed(settings, ACTIVITY, DAY, now=before_deadline, wait=False) is True


def test_reading_a_partition_that_does_not_exist_says_so(settings: Settings) -> None:
    with pytest.raises(WarehouseError, match="does not exist yet"):
        Warehouse.from_uri(settings.warehouse_uri).read("raw.activity")
