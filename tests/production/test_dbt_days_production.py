"""Day-partitioned dbt models on Postgres (dbt-postgres): nightly runs replace their days in the
tables, a changed earlier day is rebuilt with the days after it, and both end row for row as one
full build over the same raw data; so do the marts by scoring day. The DuckDB twin is
tests/unit/test_dbt_days.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from nightshift.settings import Settings
from nightshift.warehouse import PartitionWrite, Warehouse, raw_table
from tests.unit.test_dbt_days import (
    DAYS, FIRST_NIGHTLY, LAST, START, assert_same_tables, full_rebuild_of, ingest_day, land, nightly, snapshot,
    test_marts_rebuilt_by_scoring_day_end_as_a_full_build as marts_scenario,
)

pytestmark = pytest.mark.production


@pytest.mark.parametrize("use_case", ["churn", "demand"])
def test_nightly_runs_and_a_backfill_end_as_a_full_build_on_postgres(
    use_case: str, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_ARTIFACTS_URI", "NIGHTSHIFT_REDIS_URL", "NIGHTSHIFT_MLFLOW_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URI", postgres_url)
    settings = Settings.from_env()
    land(settings, use_case)
    for offset in range(DAYS - 3):
        ingest_day(settings, use_case, START + timedelta(days=offset))
    assert nightly(settings, use_case, FIRST_NIGHTLY - timedelta(days=1)).full

    for day in (FIRST_NIGHTLY + timedelta(days=i) for i in range(3)):
        ingest_day(settings, use_case, day)
        plan = nightly(settings, use_case, day)
        assert (plan.first, plan.last) == (day, day), plan.reason
    assert_same_tables(snapshot(settings, use_case), full_rebuild_of(settings, use_case)())

    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    fixed_day = LAST - timedelta(days=4)
    source, column = ("activity", "sessions") if use_case == "churn" else ("sales", "units")
    rows = warehouse.read(raw_table(source), {"batch_date": fixed_day}).drop(columns="batch_date")
    rows.loc[rows.index[0], column] = rows[column].iloc[0] + 40
    warehouse.replace_partitions([PartitionWrite(raw_table(source), {"batch_date": fixed_day}, rows)])
    plan = nightly(settings, use_case, fixed_day)
    assert (plan.first, plan.last) == (fixed_day, LAST), plan.reason
    assert_same_tables(snapshot(settings, use_case), full_rebuild_of(settings, use_case)())

    # the marts by scoring day, the same scenario as on DuckDB
    marts_scenario((settings, use_case))
