"""The S3 landing zone through boto3 against a real HTTP endpoint (moto server mode)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from nightshift.demo.churn_data import DatagenSpec, write_landing
from nightshift.ingest import batch_landed, ingest_batch
from nightshift.landing import Landing
from nightshift.settings import Settings
from nightshift.usecase import SourceConfig
from nightshift.warehouse import VALIDATION_RUNS, Warehouse
from tests.conftest import AirflowHarness

pytestmark = pytest.mark.production
DAY = date(2026, 1, 3)


def test_s3_landing_write_list_read(s3_bucket: str) -> None:
    landing = Landing(f"s3://{s3_bucket}/landing")
    uri = landing.write_bytes("activity", DAY, "b.csv", b"2")
    landing.write_bytes("activity", DAY, "a.csv", b"1")
    landing.write_bytes("activity", date(2026, 1, 4), "c.csv", b"3")
    assert uri == f"s3://{s3_bucket}/landing/activity/2026-01-03/b.csv"
    files = landing.list_batch("activity", DAY)
    assert [f.name for f in files] == ["a.csv", "b.csv"]
    assert [landing.read_bytes(f) for f in files] == [b"1", b"2"]
    assert landing.list_batch("customers", DAY) == []


def test_ingest_reads_its_batch_from_s3(s3_bucket: str, tmp_path: Path) -> None:
    settings = Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path), "NIGHTSHIFT_LANDING_URI": f"s3://{s3_bucket}/landing"})
    write_landing(DatagenSpec(customers=50, start=DAY, days=1, seed=2), settings.landing_uri)
    summary = ingest_batch(settings, SourceConfig("customers", "customers"), DAY, datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert summary.landed == summary.accepted > 0
    assert summary.batch_id.startswith("customers-2026-01-03-")
    runs = Warehouse.from_uri(settings.warehouse_uri).read(VALIDATION_RUNS)
    assert runs["files"].iloc[0] == f'["s3://{s3_bucket}/landing/customers/2026-01-03/customers_2026-01-03.csv"]'


def test_a_missing_s3_object_for_d_is_waited_for_then_fails_naming_the_bucket_and_key(s3_bucket: str, tmp_path: Path) -> None:
    """D-1 landed on S3, D did not: the nightly sensor waits until the source's deadline, then fails
    naming the bucket and the key prefix it looked under; once the file lands, the next poke passes."""
    from datetime import timedelta

    from nightshift.ingest import BatchMissing, batch_deadline

    settings = Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path), "NIGHTSHIFT_LANDING_URI": f"s3://{s3_bucket}/landing"})
    write_landing(DatagenSpec(customers=20, start=DAY - timedelta(days=1), days=1, seed=2), settings.landing_uri)
    source = SourceConfig("activity", "activity", wait_hours=6)
    deadline = batch_deadline(source, DAY)
    assert batch_landed(settings, source, DAY - timedelta(days=1), now=deadline) is True
    assert batch_landed(settings, source, DAY, now=deadline - timedelta(minutes=1)) is False, "before the deadline it waits"
    with pytest.raises(BatchMissing) as missing:
        batch_landed(settings, source, DAY, now=deadline)
    message = str(missing.value)
    assert f"s3://{s3_bucket}/landing/activity/{DAY}/" in message and "by 2026-01-04 06:00 UTC" in message, message
    assert "land the file there, then clear this task" in message, message

    write_landing(DatagenSpec(customers=20, start=DAY, days=1, seed=2), settings.landing_uri)
    assert batch_landed(settings, source, DAY, now=deadline) is True


@pytest.mark.e2e
def test_ingest_dag_runs_against_s3_landing(s3_bucket: str, airflow_harness: AirflowHarness, s3_server: dict[str, str]) -> None:
    landing_uri = f"s3://{s3_bucket}/landing"
    airflow_harness.env.update(s3_server, NIGHTSHIFT_LANDING_URI=landing_uri)
    write_landing(DatagenSpec(customers=80, start=DAY, days=2, seed=5, bad_rates={"out_of_range": 0.05}), landing_uri)
    assert airflow_harness.ingest(DAY, days=2, use_cases=["churn"]) == {DAY: "success", date(2026, 1, 4): "success"}
    runs = Warehouse.from_uri(airflow_harness.settings.warehouse_uri).read(VALIDATION_RUNS)
    assert len(runs) == 6
    assert (runs["accepted_rows"] + runs["quarantined_rows"] == runs["landed_rows"]).all()
    assert runs["quarantined_rows"].sum() > 0
    assert runs["files"].str.startswith(f'["{landing_uri}/').all()
