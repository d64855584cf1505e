"""Shared fixtures: an isolated Nightshift home per test, small CSV batches, and a real
Airflow metadata DB with DAG runs in a child process (for end-to-end tests)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from nightshift.runs import airflow_environment, ensure_metadata_db
from nightshift.settings import PROJECT_ROOT, Settings


@pytest.fixture
def nightshift_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """``NIGHTSHIFT_*`` variables pointing at a fresh state directory."""
    env = {"NIGHTSHIFT_HOME": str(tmp_path / "state")}
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI", "NIGHTSHIFT_MLFLOW_URI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env


@pytest.fixture
def settings(nightshift_env: dict[str, str]) -> Settings:
    """Embedded-profile settings in a fresh state directory."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def expectations_dir() -> Path:
    return PROJECT_ROOT / "expectations"


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    """A CSV file as landed: header line, then one line per row ('' for a missing value)."""
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def pytest_configure(config: pytest.Config) -> None:
    """Point any in-process Airflow import at a throwaway home and this repo's DAGs."""
    import os
    import tempfile

    from nightshift.runs import airflow_environment

    home = Path(tempfile.mkdtemp(prefix="nightshift-pytest-airflow-"))
    for key, value in airflow_environment(home).items():
        if key.startswith(("AIRFLOW", "GX_")):
            os.environ[key] = value


@dataclass
class AirflowHarness:
    """Runs DAGs with ``dag.test`` in a child process on a temporary SQLite metadata DB."""

    home: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def run(self, dag_id: str, start: date, days: int = 1, rerun: bool = True, conf: dict | None = None) -> dict[date, str]:
        """Run ``dag_id`` for ``days`` days from ``start``; returns the state of each day's run."""
        cmd = [sys.executable, "-m", "nightshift.runs", dag_id, "--start", start.isoformat(), "--days", str(days)]
        if conf is not None:
            cmd += ["--conf", json.dumps(conf)]
        proc = subprocess.run(cmd + (["--rerun"] if rerun else []), env=self.env, capture_output=True, text=True)
        self.outputs.append(proc.stdout + proc.stderr)
        states = {}
        for line in proc.stdout.splitlines():
            if line.startswith("RUN "):
                _, _, day, state, *_ = line.split()
                states[date.fromisoformat(day)] = state
        assert states, f"no DAG run happened:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return states

    def recorded_runs(self, dag_id: str) -> list[tuple[str, str]]:
        """(logical date, state) of every run of ``dag_id`` in Airflow's metadata DB."""
        with sqlite3.connect(self.home / "airflow" / "airflow.db") as con:
            rows = con.execute(
                "select logical_date, state from dag_run where dag_id = ? order by logical_date, id", (dag_id,)
            ).fetchall()
        return [(str(d)[:10], s) for d, s in rows]


@pytest.fixture(scope="module")
def airflow_harness(tmp_path_factory: pytest.TempPathFactory) -> AirflowHarness:
    home = tmp_path_factory.mktemp("e2e")
    env = airflow_environment(home / "airflow")
    env["NIGHTSHIFT_HOME"] = str(home / "state")
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI", "NIGHTSHIFT_MLFLOW_URI"):
        env.pop(key, None)
    ensure_metadata_db(env)
    return AirflowHarness(home=home, env=env)
