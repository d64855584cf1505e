"""Shared fixtures: an isolated Nightshift home per test, small CSV batches, and a real
Airflow metadata DB with DAG runs in a child process (for end-to-end tests)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from nightshift.airflow.runs import airflow_environment, ensure_metadata_db
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

    from nightshift.airflow.runs import airflow_environment

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
        return {day: state for (_, day), state in self.run_many([dag_id], start, days, rerun, conf).items()}

    def ingest(self, start: date, days: int = 1, use_cases: list[str] | None = None) -> dict[date, str]:
        """Run every ``ingest_<source>`` DAG of ``use_cases`` (default: all) for ``days`` days; a day's
        state is ``success`` when every source's run succeeded, else ``failed``."""
        from nightshift.airflow.runs import ingest_dag_ids

        states = self.run_many(ingest_dag_ids(self.settings.config_dir, use_cases), start, days)
        by_day: dict[date, set[str]] = {}
        for (_, day), state in states.items():
            by_day.setdefault(day, set()).add(state)
        return {day: "success" if found == {"success"} else "failed" for day, found in by_day.items()}

    def run_many(self, dag_ids: list[str], start: date, days: int = 1, rerun: bool = True,
                 conf: dict | None = None) -> dict[tuple[str, date], str]:
        """Run each DAG for each day in one child process; returns the state per (DAG, day)."""
        cmd = [sys.executable, "-m", "nightshift.airflow.runs", *dag_ids, "--start", start.isoformat(), "--days", str(days)]
        if conf is not None:
            cmd += ["--conf", json.dumps(conf)]
        proc = subprocess.run(cmd + (["--rerun"] if rerun else []), env=self.env, capture_output=True, text=True)
        self.outputs.append(proc.stdout + proc.stderr)
        states = {}
        for line in proc.stdout.splitlines():
            if line.startswith("RUN "):
                _, dag_id, day, state, *_ = line.split()
                states[(dag_id, date.fromisoformat(day))] = state
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


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_cli(env: dict[str, str], *args: str, attempts: int = 6) -> None:
    """Run an airflow CLI command; SQLite is briefly locked while the scheduler writes.

    A retried `backfill create` whose first attempt got as far as creating the backfill finds
    it running: that is success.
    """
    import time

    for attempt in range(attempts):
        proc = subprocess.run(["airflow", *args], env=env, capture_output=True, text=True)
        if proc.returncode == 0 or (attempt and "AlreadyRunningBackfill" in proc.stderr + proc.stdout):
            return
        if attempt == attempts - 1:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        time.sleep(5)


@contextlib.contextmanager
def airflow_standalone(harness: AirflowHarness) -> Iterator[dict[str, str]]:
    """`airflow standalone` (scheduler, LocalExecutor, API server) on the harness's metadata DB;
    yields the environment for CLI calls against it. Every process it started is killed after."""
    import os
    import signal
    import time

    env = dict(harness.env)
    port = free_port()
    env.update(
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
        AIRFLOW__CORE__PARALLELISM="8",
    )
    log = (harness.home / "standalone.log").open("a")
    server = subprocess.Popen(["airflow", "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(20)
        airflow_cli(env, "dags", "reserialize")
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # the scheduler, triggerer and task processes too
        log.close()
