"""The ingest DAG through Airflow (dag.test on a SQLite metadata DB), on three small days.

Day 2 carries known bad rows; afterwards day 3's file is corrupted and day 4 never lands.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from nightshift.demo.churn_data import DatagenSpec, batch_file_name, generate
from nightshift.landing import Landing
from nightshift.warehouse import VALIDATION_RUNS, Warehouse
from tests.conftest import AirflowHarness

pytestmark = pytest.mark.e2e

START = date(2026, 1, 1)
DAY2, DAY3, DAY4 = START + timedelta(days=1), START + timedelta(days=2), START + timedelta(days=3)
BAD_ROWS = [
    # (event_id, customer_id, event_time, sessions, minutes, spend, support_tickets, plan_change) -> reason
    (("x-range", 1, "2026-01-02T10:00:00", 999, 1.0, 1.0, 0, "none"), "expect_column_values_to_be_between(sessions)"),
    (("x-cat", 1, "2026-01-02T10:00:00", 1, 1.0, 1.0, 0, "sideways"), "expect_column_values_to_be_in_set(plan_change)"),
    (("x-type", 1, "2026-01-02T10:00:00", "many", 1.0, 1.0, 0, "none"), "expect_column_values_to_be_of_type(sessions)"),
    (("x-null", "", "2026-01-02T10:00:00", 1, 1.0, 1.0, 0, "none"), "expect_column_values_to_not_be_null(customer_id)"),
    (("x-future", 1, "2027-06-01T10:00:00", 1, 1.0, 1.0, 0, "none"), "expect_column_values_to_be_between(event_time)"),
]


def csv_rows(data: bytes) -> int:
    return len(data.decode().strip().splitlines()) - 1


@pytest.fixture(scope="module")
def landed(airflow_harness: AirflowHarness) -> dict[tuple[date, str], bytes]:
    """Three clean days, then day 2's activity file with five known bad rows appended."""
    files = {(day, source): data for day, source, data in generate(DatagenSpec(customers=150, start=START, days=3, seed=11))}
    bad_lines = "".join(",".join(str(v) for v in row) + "\n" for row, _ in BAD_ROWS).encode()
    files[(DAY2, "activity")] += bad_lines
    landing = Landing(airflow_harness.settings.landing_uri)
    for (day, source), data in files.items():
        landing.write_bytes(source, day, batch_file_name(source, day), data)
    return files


def snapshot(harness: AirflowHarness) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse.from_uri(harness.settings.warehouse_uri)
    out = {}
    for table in warehouse.tables():
        frame = warehouse.read(table)
        if table == VALIDATION_RUNS:
            frame = frame.drop(columns="validated_at")
        out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def test_three_days_are_recorded_runs_and_every_row_is_accounted_for(airflow_harness, landed) -> None:  # noqa: ANN001
    states = airflow_harness.ingest(START, days=3, use_cases=["churn"])
    assert states == {START: "success", DAY2: "success", DAY3: "success"}
    for source in ("customers", "activity", "cancellations"):
        assert airflow_harness.recorded_runs(f"ingest_{source}") == [(d.isoformat(), "success") for d in (START, DAY2, DAY3)]

    warehouse = Warehouse.from_uri(airflow_harness.settings.warehouse_uri)
    runs = warehouse.read(VALIDATION_RUNS)
    assert len(runs) == 9, "one summary per source per day"
    for (day, source), data in landed.items():
        raw = warehouse.read(f"raw.{source}", {"batch_date": day})
        quarantine = warehouse.read(f"quarantine.{source}", {"batch_date": day})
        assert len(raw) + len(quarantine) == csv_rows(data), f"{source} {day}: rows lost"
        summary = runs[(runs["source"] == source) & (runs["batch_date"].dt.date == day)].iloc[0]
        assert (summary.accepted_rows, summary.quarantined_rows, summary.landed_rows) == (len(raw), len(quarantine), csv_rows(data))

    quarantine = warehouse.read("quarantine.activity", {"batch_date": DAY2})
    assert dict(zip(quarantine["event_id"], quarantine["quarantine_reasons"], strict=True)) == {
        row[0]: reason for row, reason in BAD_ROWS
    }
    assert warehouse.read("quarantine.activity", {"batch_date": START}).empty


def test_rerunning_a_day_leaves_identical_tables(airflow_harness, landed) -> None:  # noqa: ANN001
    before = snapshot(airflow_harness)
    assert airflow_harness.ingest(DAY2, use_cases=["churn"]) == {DAY2: "success"}
    after = snapshot(airflow_harness)
    assert before.keys() == after.keys()
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_broken_file_fails_the_run_writes_nothing_and_a_fixed_file_succeeds(airflow_harness, landed) -> None:  # noqa: ANN001
    landing = Landing(airflow_harness.settings.landing_uri)
    name = batch_file_name("activity", DAY3)
    corrupt = landed[(DAY3, "activity")][:200] + b"\x00\xff\xfe garbage"
    landing.write_bytes("activity", DAY3, name, corrupt)
    before = snapshot(airflow_harness)

    states = airflow_harness.run("ingest_activity", DAY3, days=2)  # day 4 never landed at all
    assert states == {DAY3: "failed", DAY4: "failed"}
    log = airflow_harness.outputs[-1]
    assert f"batch activity/{DAY3}" in log and name in log and "NUL bytes" in log and "clear this task" in log
    assert f"no batch for source 'activity' on {DAY4}" in log
    assert landing.read_bytes(landing.list_batch("activity", DAY3)[0]) == corrupt, "the landed file is untouched"
    after = snapshot(airflow_harness)
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)

    landing.write_bytes("activity", DAY3, name, landed[(DAY3, "activity")])
    assert airflow_harness.run("ingest_activity", DAY3) == {DAY3: "success"}
    assert snapshot(airflow_harness)["raw.activity"].equals(before["raw.activity"])


def test_a_run_before_the_use_cases_start_date_fails_naming_the_date_and_the_setting(airflow_harness) -> None:  # noqa: ANN001
    """Airflow alone would record it as a success with no task at all."""
    before_start = START - timedelta(days=1)
    assert airflow_harness.run("ingest_activity", before_start) == {before_start: "failed"}
    log = airflow_harness.outputs[-1]
    assert f"the run for {before_start} precedes start_date {START}" in log and "churn.yaml, key `start_date`" in log
