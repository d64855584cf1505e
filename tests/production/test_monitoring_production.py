"""Monitoring's outputs on the production profile: its three tables on PostgreSQL (a rerun of a
night replaces exactly that night; the dbt source tests pass on Postgres) and its HTML report on
S3 (moto's server mode over HTTP, through boto3)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nightshift import features
from nightshift.monitoring import DRIFT_DAILY, PERFORMANCE_DAILY, RETRAIN_REQUESTS, partition
from nightshift.monitoring.config import MonitoringConfig
from nightshift.monitoring.decision import Facts, decide, triggers
from nightshift.monitoring.drift import drift_report
from nightshift.monitoring.performance import estimated_performance
from nightshift.monitoring.reports import store_report
from nightshift.settings import Settings
from nightshift.warehouse import PartitionWrite, Warehouse

pytestmark = pytest.mark.production
NIGHTS = [date(2026, 6, 1), date(2026, 6, 2)]
FEATURES = ["x1", "x2", "kind"]


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame({"x1": rng.normal(shift, 1.0, n), "x2": rng.normal(0.0, 1.0, n),
                          "kind": rng.choice(["a", "b"], n)})
    frame["score"] = 1 / (1 + np.exp(-frame["x1"]))
    return frame


def _night(day: date, shift: float) -> tuple[list[PartitionWrite], object]:
    rng = np.random.default_rng(day.day)
    reference = _frame(rng, 3000).assign(part="holdout")
    reference["label"] = (rng.random(len(reference)) < reference["score"]).astype(int)
    current = _frame(rng, 2000, shift)
    config = MonitoringConfig()
    drift = drift_report(current, reference, FEATURES, ["kind"], config, use_case="churn", day=day)
    performance = estimated_performance(current, reference, "binary", FEATURES, ["kind"], use_case="churn", day=day,
                                        model_version="1")
    decision = decide(triggers(drift.rows, performance, config, "binary"), Facts("churn", day), config)
    key = partition("churn", day)
    drop = ["use_case", "monitor_date"]
    return [PartitionWrite(DRIFT_DAILY, key, drift.rows.drop(columns=drop)),
            PartitionWrite(PERFORMANCE_DAILY, key, performance.drop(columns=drop)),
            PartitionWrite(RETRAIN_REQUESTS, key, decision.row().drop(columns=drop))], drift


def test_monitoring_tables_on_postgres_rerun_per_night_and_pass_their_dbt_tests(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("NIGHTSHIFT_WAREHOUSE_URI", postgres_url)
    settings = Settings.from_env()
    warehouse = Warehouse.from_uri(postgres_url)
    for night in NIGHTS:
        warehouse.replace_partitions(_night(night, 0.0)[0])
    warehouse.replace_partitions(_night(NIGHTS[1], 1.0)[0])  # the second night again, now drifted

    drift = warehouse.read(DRIFT_DAILY)
    assert len(drift) == 2 * 4 and not drift.duplicated(["monitor_date", "column_name"]).any()
    requests = warehouse.read(RETRAIN_REQUESTS).set_index(pd.to_datetime(warehouse.read(RETRAIN_REQUESTS)["monitor_date"]).dt.date)
    assert requests.loc[NIGHTS[0], "decision"] == "not_needed" and requests.loc[NIGHTS[1], "decision"] == "requested"
    output = features.run_dbt(settings, ["test", "--select", "tag:monitoring"])
    assert "PASS=20" in output and "ERROR=0" in output, output[-2000:]


def test_the_html_report_goes_to_s3(s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    _, drift = _night(NIGHTS[0], 0.0)
    html = drift.save_html(tmp_path / "drift_report.html")
    uri = store_report(f"s3://{s3_bucket}/artifacts", "churn", NIGHTS[0], html)
    assert uri == f"s3://{s3_bucket}/artifacts/monitoring/churn/2026-06-01/drift_report.html"
    body = boto3.client("s3").get_object(Bucket=s3_bucket, Key="artifacts/monitoring/churn/2026-06-01/drift_report.html")
    assert body["Body"].read() == html.read_bytes()
