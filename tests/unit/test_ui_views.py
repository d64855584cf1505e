"""The Nightshift views without a browser: no page without login, and each page shows what its run wrote.

The app is the one the plugin serves (``nightshift.airflow.ui.create_app``), called with
FastAPI's test client; the state behind it is written by Nightshift's own code (a real ingest, a
real MLflow run with a gate report, real warehouse partitions). The browser test
(``tests/e2e/test_airflow_ui.py``) checks the same pages inside the Airflow UI, logged in.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from nightshift.airflow import ui
from nightshift.settings import Settings
from tests.unit.test_ingest import ACTIVITY, DAY, NOW, land
from tests.unit.test_validation import good_row, with_value

ROUTES = ["/", "/runs/ingest_activity/scheduled__2026-01-03T00:00:00+00:00", "/predictions/churn",
          "/reports/monitor/churn/2026-01-03"]


def client(settings: Settings, days: list[date], logged_in: bool = True) -> TestClient:
    app = ui.create_app(settings_factory=lambda: settings, run_days=lambda dag_id, run_id: days)
    if logged_in:
        app.dependency_overrides[ui._login] = lambda: "tester"
        app.dependency_overrides[ui._dag_read] = lambda: None
    return TestClient(app)


@pytest.mark.parametrize("route", ROUTES)
def test_no_page_is_served_without_login(settings: Settings, route: str) -> None:
    response = client(settings, [DAY], logged_in=False).get(route)
    assert response.status_code == 401, (route, response.status_code, response.text[:300])


def test_a_token_the_auth_manager_did_not_sign_is_refused(settings: Settings) -> None:
    """The API server's own JWT check, not a stand-in (a signed token's acceptance is checked in a
    real API server by the browser test)."""
    import jwt

    from airflow.api_fastapi.app import create_auth_manager

    create_auth_manager()
    forged = jwt.encode({"sub": "admin", "role": "admin", "aud": "apache-airflow"}, "not-the-secret", algorithm="HS512")
    app = client(settings, [DAY], logged_in=False)
    assert app.get("/", cookies={"_token": forged}).status_code in (401, 403)
    assert app.get("/", headers={"Authorization": f"Bearer {forged}"}).status_code in (401, 403)


def test_the_ingest_view_shows_counts_reasons_and_quarantined_rows(settings: Settings) -> None:
    from nightshift.ingest import ingest_batch

    land(settings, [*(good_row(i) for i in range(1, 11)), with_value(11, "sessions", "-4"), with_value(12, "customer_id", "")])
    summary = ingest_batch(settings, ACTIVITY, DAY, NOW)
    page = client(settings, [DAY]).get("/runs/ingest_activity/scheduled__2026-01-03T00:00:00+00:00")
    assert page.status_code == 200, page.text[:500]
    assert f'id="landed">{summary.landed}<' in page.text and f'id="quarantined">{summary.quarantined}<' in page.text
    assert summary.quarantined == 2
    assert "sessions" in page.text and "customer_id" in page.text  # the failed expectations name their columns
    assert "quarantine.activity" in page.text


def test_the_views_never_write_nor_finish_a_killed_writers_group(settings: Settings) -> None:
    """A read-only handle (the views') refuses writes, and meets a committed-but-unapplied group with
    503 and a reason instead of taking the exclusive lock to apply it."""
    from nightshift.warehouse import PartitionWrite, Warehouse, WarehouseError, predictions_table

    Warehouse.from_uri(settings.warehouse_uri).replace_partitions(
        [PartitionWrite(predictions_table("churn"), {"scoring_date": DAY}, _scores(DAY, 5))])
    read_only = Warehouse.from_uri(settings.warehouse_uri, read_only=True)
    with pytest.raises(WarehouseError, match="read-only"):
        read_only.replace_partitions([PartitionWrite(predictions_table("churn"), {"scoring_date": DAY}, _scores(DAY, 1))])
    manifest = read_only.journal / "killed-writer.json"  # what a writer killed after its commit leaves
    manifest.write_text("{}")
    page = client(settings, [DAY]).get("/runs/score_churn/scheduled__2026-01-03T00:00:00+00:00")
    assert page.status_code == 503 and "killed task committed" in page.text
    assert manifest.exists(), "the view finished nobody's write group"


def test_names_that_are_no_use_case_are_404_not_500(settings: Settings) -> None:
    app = client(settings, [DAY])
    assert app.get("/predictions/no_such_use_case").status_code == 404
    assert app.get("/runs/score_no_such_use_case/x").status_code == 404
    assert app.get("/reports/monitor/Bad..Name/2026-01-03").status_code == 404


def test_an_ingest_run_without_a_validation_says_where_to_look(settings: Settings) -> None:
    page = client(settings, [DAY]).get("/runs/ingest_activity/manual__x")
    assert page.status_code == 200 and "No validation recorded for activity on 2026-01-03" in page.text


def _scores(day: date, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.Series(range(n), dtype="int64"), "score": [i / n for i in range(n)],
        "decile": [1] * n, "band": ["high"] * n, "model_name": "churn", "model_version": "3",
        "feature_service": "churn_v1", "airflow_run_id": f"scheduled__{day}T00:00:00+00:00",
        "scored_at": pd.Timestamp("2026-01-04 01:00"),
    })


def test_the_score_view_shows_rows_errors_distribution_model_and_top(settings: Settings) -> None:
    from nightshift.warehouse import PartitionWrite, Warehouse, prediction_errors_table, predictions_table

    errors = pd.DataFrame({"customer_id": pd.Series([900, 901], dtype="int64"), "reason": ["missing features"] * 2})
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions([
        PartitionWrite(predictions_table("churn"), {"scoring_date": DAY}, _scores(DAY, 40)),
        PartitionWrite(prediction_errors_table("churn"), {"scoring_date": DAY}, errors),
    ])
    for route in ("/runs/score_churn/scheduled__2026-01-03T00:00:00+00:00", "/predictions/churn"):
        page = client(settings, [DAY]).get(route)
        assert page.status_code == 200, page.text[:500]
        assert 'id="rows-scored">40<' in page.text and 'id="model-version">3<' in page.text, route
        assert "churn_v1" in page.text and "missing features" in page.text and "0.975" in page.text, route
    home = client(settings, [DAY]).get("/")
    assert 'id="predictions-churn"' in home.text and "2026-01-03" in home.text and 'id="mlflow"' in home.text


def test_the_monitor_view_shows_drift_performance_decision_and_the_report(settings: Settings) -> None:
    from nightshift.monitoring import DRIFT_DAILY, PERFORMANCE_DAILY, RETRAIN_REQUESTS, partition
    from nightshift.warehouse import PartitionWrite, Warehouse

    key = partition("churn", DAY)
    drift = pd.DataFrame({"kind": ["feature", "prediction"], "column_name": ["sessions_7d", "prediction"],
                          "statistic": [0.31, 0.02], "threshold": [0.1, 0.1], "drifted": [True, False]})
    performance = pd.DataFrame({"model_version": ["3"], "metric": ["auc"], "estimated": [0.71]})
    decision = pd.DataFrame({"decision": ["requested"], "suppressed_by": [""], "reasons": ["critical feature sessions_7d drifted"]})
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions([
        PartitionWrite(DRIFT_DAILY, key, drift), PartitionWrite(PERFORMANCE_DAILY, key, performance),
        PartitionWrite(RETRAIN_REQUESTS, key, decision),
    ])
    report = settings.home / "artifacts" / "monitoring" / "churn" / DAY.isoformat() / "drift_report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html><body>evidently report body</body></html>")
    settings = Settings(**{**settings.__dict__, "artifacts_uri": str(settings.home / "artifacts")})
    page = client(settings, [DAY]).get("/runs/monitor_churn/asset_triggered__x")
    assert page.status_code == 200, page.text[:500]
    assert 'id="decision">requested<' in page.text and "sessions_7d" in page.text and "0.71" in page.text
    assert client(settings, [DAY]).get("/reports/monitor/churn/2026-01-03").text.endswith("evidently report body</body></html>")
    assert client(settings, [DAY]).get("/reports/monitor/churn/2026-01-04").status_code == 404


def test_the_retrain_view_shows_every_gate_check_and_the_champion_before_and_after(settings: Settings) -> None:
    import mlflow

    from nightshift.modeling import registry
    from nightshift.modeling.retrain import GATE_JSON

    from nightshift.usecase import use_case_of

    registry.connect(settings)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    experiment = registry.ensure_experiment(settings, use_case_of(settings, "churn"))  # artifacts under the state dir
    checks = [{"name": "floor.auc", "value": 0.8123, "threshold": ">= 0.6", "passed": True, "detail": ""},
              {"name": "improvement.auc", "value": -0.01, "threshold": ">= 0.0", "passed": False, "detail": "worse"}]
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_dict({"verdict": "failed", "reasons": ["improvement.auc"], "checks": checks}, GATE_JSON)
        mlflow.log_param("run_date", "2026-04-26")
    registry.record(settings, registry.AliasMove("churn", "churn", "rejected", "2", None, "schedule", "gate failed",
                                                 "failed", run.info.run_id, "scheduled__2026-04-26T03:00:00+00:00"))
    page = client(settings, []).get("/runs/retrain_churn/scheduled__2026-04-26T03:00:00+00:00")
    assert page.status_code == 200, page.text[:500]
    text: Any = page.text
    assert 'id="verdict">failed<' in text and 'id="champion-before">2<' in text and 'id="champion-after">2<' in text
    assert "floor.auc" in text and "0.8123" in text and "&gt;= 0.6" in text and "FAIL" in text
    assert f"/runs/{run.info.run_id}" in text
    assert "registered nothing" in client(settings, []).get("/runs/retrain_churn/manual__other").text


def test_days_of_a_run_come_from_its_logical_date_else_its_events() -> None:
    from datetime import datetime, timezone

    assert ui.days_of(datetime(2026, 1, 3, tzinfo=timezone.utc), [{"batch_date": "2026-01-09"}]) == [DAY]
    assert ui.days_of(None, [{"feature_dates": ["2026-01-04", "2026-01-03"]}, {"scoring_date": "2026-01-03"}]) == [
        DAY, date(2026, 1, 4)]
    assert ui.dag_family("ingest_activity") == ("ingest", "activity")
    assert ui.dag_family("rollback") == ("other", "rollback")
