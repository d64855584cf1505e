"""End-to-end fixtures: a real Airflow metadata DB and DAG runs in a child process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from nightshift.runs import airflow_environment, ensure_metadata_db
from nightshift.settings import Settings


@dataclass
class AirflowHarness:
    """Runs DAGs with ``dag.test`` in a child process on a temporary SQLite metadata DB."""

    home: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def run(self, dag_id: str, start: date, days: int = 1, rerun: bool = True) -> dict[date, str]:
        """Run ``dag_id`` for ``days`` days from ``start``; returns the state of each day's run."""
        cmd = [sys.executable, "-m", "nightshift.runs", dag_id, "--start", start.isoformat(), "--days", str(days)]
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
