"""The REST client the demo drives Airflow with, against a fake API server (no Airflow running):
a locked DB is retried, any other refusal says what and where, pages are followed, and a
backfill or a trigger is never made twice. And the embedded metadata DB's lock settings."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import date
from pathlib import Path

import httpx
import pytest

from nightshift.airflow import local, sqlite
from nightshift.airflow.runs import airflow_environment


class FakeAirflow:
    """Enough of Airflow's API: a token, runs of one DAG (pages of 100), backfills, triggers."""

    def __init__(self, runs: int = 0, locked: int = 0) -> None:
        self.runs = [{"dag_run_id": f"backfill__{i}", "run_type": "backfill", "state": "success",
                      "logical_date": f"2026-01-{1 + i % 28:02d}T00:00:00Z"} for i in range(runs)]
        self.locked = locked  # how many requests answer 503 "database is locked" first
        self.backfills: list[dict] = []
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        assert request.headers["Authorization"] == "Bearer jwt"
        if self.locked:
            self.locked -= 1
            return httpx.Response(503, json={"detail": "Database is locked"})
        path, params = request.url.path, request.url.params
        if path == "/api/v2/dags/ingest_activity/dagRuns" and request.method == "GET":
            offset, limit = int(params.get("offset", 0)), int(params["limit"])
            return httpx.Response(200, json={"dag_runs": self.runs[offset:offset + limit], "total_entries": len(self.runs)})
        if path == "/api/v2/backfills" and request.method == "GET":
            return httpx.Response(200, json={"backfills": self.backfills, "total_entries": len(self.backfills)})
        if path == "/api/v2/backfills" and request.method == "POST":
            body = json.loads(request.content)
            self.backfills.append({"id": len(self.backfills) + 1, **body})
            return httpx.Response(200, json=self.backfills[-1])
        if path.startswith("/api/v2/dags/features_churn/dagRuns/"):
            known = any(r["dag_run_id"] == path.rsplit("/", 1)[1] for r in self.runs)
            return httpx.Response(200 if known else 404, json={})
        if path == "/api/v2/dags/features_churn/dagRuns":
            self.runs.append(json.loads(request.content))
            return httpx.Response(200, json=self.runs[-1])
        return httpx.Response(400, json={"detail": "no such thing"})


def _api(fake: FakeAirflow, tmp_path: Path) -> local.AirflowApi:
    (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "pw"}')
    return local.AirflowApi("http://airflow", tmp_path, timeout=10, transport=httpx.MockTransport(fake))


def test_a_locked_db_is_retried_and_any_other_refusal_names_the_call(tmp_path: Path) -> None:
    fake = FakeAirflow(runs=3, locked=2)
    assert [r.state for r in _api(fake, tmp_path).runs("ingest_activity")] == ["success"] * 3
    assert fake.requests.count("GET /api/v2/dags/ingest_activity/dagRuns") == 3  # two 503s, then the answer
    with pytest.raises(RuntimeError, match=r"Airflow API GET /api/v2/dags/nope/dagRuns answered 400: .*no such thing"):
        _api(FakeAirflow(), tmp_path).runs("nope")


def test_every_page_of_runs_is_read(tmp_path: Path) -> None:
    runs = _api(FakeAirflow(runs=250), tmp_path).runs("ingest_activity")
    assert len(runs) == 250 and runs[0].day == date(2026, 1, 1) and runs[0].run_type == "backfill"


def test_a_backfill_and_a_trigger_are_made_once(tmp_path: Path) -> None:
    fake = FakeAirflow()
    api = _api(fake, tmp_path)
    first = api.create_backfill("ingest_activity", date(2026, 1, 1), date(2026, 5, 8), max_active_runs=4)
    assert api.create_backfill("ingest_activity", date(2026, 1, 1), date(2026, 5, 8)) == first
    assert len(fake.backfills) == 1 and fake.backfills[0]["max_active_runs"] == 4
    run_id = api.trigger("features_churn", date(2026, 5, 8))
    assert api.trigger("features_churn", date(2026, 5, 8)) == run_id == "manual__2026-05-08T00:00:00+00:00"
    assert fake.requests.count("POST /api/v2/dags/features_churn/dagRuns") == 1


def test_the_embedded_metadata_db_waits_for_its_lock_and_never_blocks_readers(tmp_path: Path) -> None:
    db = tmp_path / "airflow.db"
    sqlite3.connect(db).close()
    assert sqlite.use_wal(db) == "wal"
    with sqlite3.connect(db) as con:
        assert con.execute("pragma journal_mode").fetchone()[0] == "wal"  # a property of the file
    env = airflow_environment(tmp_path)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] == "nightshift.airflow.sqlite.CONNECT_ARGS"
    from airflow._shared.module_loading import import_string

    assert import_string(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"])["timeout"] == 60


def test_the_airflow_environment_inherits_no_mlflow_address_from_its_parent(tmp_path: Path) -> None:
    """mlflow.set_registry_uri writes MLFLOW_REGISTRY_URI into the calling process: a child Airflow
    process must still take MLflow's address from NIGHTSHIFT_MLFLOW_URI alone."""
    import mlflow

    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
        assert os.environ.get("MLFLOW_REGISTRY_URI"), "MLflow no longer writes the variable: drop this guard"
        env = airflow_environment(tmp_path, base={**os.environ, "MLFLOW_TRACKING_URI": "http://elsewhere",
                                                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"})
        assert "MLFLOW_REGISTRY_URI" not in env and "MLFLOW_TRACKING_URI" not in env
        assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30", "other MLflow settings pass through"
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        mlflow.set_registry_uri(None)
