"""Shared fixtures: an isolated Nightshift home per test, small CSV batches, a real Airflow
metadata DB with DAG runs in a child process (for end-to-end tests), the one polling helper every
wait goes through, and the check that skips (or, in CI, fails) production tests whose service is down."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import pytest

from nightshift.airflow import runs
from nightshift.airflow.runs import airflow_environment, ensure_metadata_db, free_port
from nightshift.airflow.sqlite import use_wal
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
    """Point any in-process Airflow import at a throwaway home and this repo's DAGs; dbt run from
    this process sends nothing and writes no cookie."""
    import tempfile

    from nightshift.airflow.runs import airflow_environment

    home = Path(tempfile.mkdtemp(prefix="nightshift-pytest-airflow-"))
    for key, value in airflow_environment(home).items():
        if key.startswith(("AIRFLOW", "GX_", "DBT_")) or key == "DO_NOT_TRACK":
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


@pytest.fixture(scope="session")
def migrated_metadata_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Airflow metadata DB, migrated with Nightshift's pools, made once per session (three
    Airflow CLI processes, about 9 s); each module's Airflow home starts from a copy of it."""
    home = tmp_path_factory.mktemp("airflow-template")
    ensure_metadata_db(airflow_environment(home))
    return home / "airflow.db"


def copy_metadata_db(template: Path, env: dict[str, str]) -> None:
    """A fresh Airflow home for ``env`` whose metadata DB is a consistent copy of ``template``."""
    target = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    assert not target.exists(), f"{target} exists: a module's Airflow home starts empty"
    with contextlib.closing(sqlite3.connect(template)) as source, contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    use_wal(target)


@pytest.fixture(scope="module")
def airflow_harness(tmp_path_factory: pytest.TempPathFactory, migrated_metadata_db: Path) -> AirflowHarness:
    """A metadata DB and a Nightshift state directory of the module's own (tests in one module share them)."""
    home = tmp_path_factory.mktemp("e2e")
    env = airflow_environment(home / "airflow")
    env["NIGHTSHIFT_HOME"] = str(home / "state")
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI", "NIGHTSHIFT_MLFLOW_URI"):
        env.pop(key, None)
    copy_metadata_db(migrated_metadata_db, env)
    return AirflowHarness(home=home, env=env)


T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout: float,
               interval: float = 2.0) -> T:
    """Poll ``probe()`` until ``done`` holds for what it returns, for at most ``timeout`` seconds.

    The one place a test waits: it prints what it waited for and how long it took, and on the
    deadline fails with the last state it saw. Returns that state.
    """
    started = time.monotonic()
    print(f"waiting up to {timeout:.0f}s for {what}", flush=True)
    while True:
        seen = probe()
        elapsed = time.monotonic() - started
        if done(seen):
            print(f"{what}: done after {elapsed:.1f}s ({seen!r:.200})", flush=True)
            return seen
        if elapsed + interval > timeout:
            raise AssertionError(f"gave up after {elapsed:.0f}s waiting for {what}; last seen: {seen!r:.2000}")
        time.sleep(interval)


SQLITE_LOCKED = runs.SQLITE_LOCKED


def _run_cli(env: dict[str, str], args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["airflow", *args], env=env, capture_output=True, text=True)


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 120) -> None:
    """Run an airflow CLI command until it succeeds; only a locked SQLite DB is retried (the
    scheduler writes in bursts), any other failure fails the test with the command's output."""
    runs.airflow_cli(env, *args, timeout=timeout)


def backfill_runs(db: Path, dag_id: str, start: date) -> int | None:
    """The number of runs of the backfill of ``dag_id`` from ``start``, None when there is none."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        row = con.execute(
            "select b.id, (select count(*) from backfill_dag_run r where r.backfill_id = b.id) from backfill b "
            "where b.dag_id = ? and substr(b.from_date, 1, 10) = ? order by b.id desc limit 1",
            (dag_id, start.isoformat()),
        ).fetchone()
    return None if row is None else int(row[1])


def create_backfill(env: dict[str, str], dag_id: str, start: date, end: date, *options: str,
                    timeout: float = 120) -> None:
    """``airflow backfill create`` of a daily DAG over [start, end], exactly once, as a user would.

    With SQLite the CLI can fail on a lock after it has committed the backfill (Airflow commits it
    before creating its runs). So before each attempt the metadata DB is asked whether the backfill
    exists: then it is not submitted again, and it must hold one run per day.
    """
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    args = ("backfill", "create", "--dag-id", dag_id, "--from-date", start.isoformat(), "--to-date", end.isoformat(),
            *options)

    def attempt() -> int | None:
        runs = backfill_runs(db, dag_id, start)
        if runs is not None:
            return runs
        proc = _run_cli(env, args)
        if proc.returncode != 0 and SQLITE_LOCKED not in proc.stdout + proc.stderr:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return backfill_runs(db, dag_id, start) if proc.returncode == 0 else None

    runs = wait_until(f"the backfill of {dag_id} {start}..{end} to be created", attempt, lambda n: n is not None, timeout)
    days = (end - start).days + 1
    assert runs == days, (f"the backfill of {dag_id} {start}..{end} holds {runs} runs, not {days}: a failed attempt "
                          f"left it half made (see the `backfill` and `backfill_dag_run` tables in {db})")


@contextlib.contextmanager
def airflow_standalone(harness: AirflowHarness) -> Iterator[dict[str, str]]:
    """`airflow standalone` (scheduler, LocalExecutor, API server) on the harness's metadata DB
    (:func:`nightshift.airflow.runs.standalone`); its log is ``standalone.log`` in the harness home."""
    with runs.standalone(harness.env, harness.home / "standalone.log") as env:
        yield env


# --- production-profile services -------------------------------------------------------------

#: Each service the `production` tests talk to: where (overridable) and how to start it (.ci/run does).
SERVICES = {
    "postgres": ("NIGHTSHIFT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres",
                 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start'),
    "redis": ("NIGHTSHIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0",
              'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'),
}
#: Set by CI: a production test whose service is down fails instead of being skipped.
REQUIRE_SERVICES = "NIGHTSHIFT_REQUIRE_SERVICES"
#: The fixture through which a test reaches each service.
SERVICE_FIXTURES = {"postgres_url": "postgres", "redis_url": "redis"}


def service_url(name: str) -> str:
    """Where the tests reach ``name`` (``postgres``, ``redis``)."""
    variable, default, _ = SERVICES[name]
    return os.environ.get(variable) or default


PG_ADMIN = service_url("postgres")


#: Services checked in this session: name -> why it is down (None: it is up).
_CHECKED: dict[str, str | None] = {}


def service_down(name: str) -> str | None:
    """Why ``name`` cannot be reached (nothing listens on its port), or None when it can; checked
    once per session."""
    if name not in _CHECKED:
        url = urlparse(service_url(name))
        try:
            with socket.create_connection((url.hostname or "127.0.0.1", url.port), timeout=3):
                _CHECKED[name] = None
        except OSError as exc:
            _CHECKED[name] = f"{name} is not reachable at {url.hostname}:{url.port} ({exc.strerror or exc})"
    return _CHECKED[name]


def services_of(item: pytest.Item) -> list[str]:
    """The services a production test needs: the marker's arguments, else those of its fixtures."""
    marker = item.get_closest_marker("production")
    if marker is None:
        return []
    if marker.args:
        return list(marker.args)
    return sorted({SERVICE_FIXTURES[f] for f in getattr(item, "fixturenames", ()) if f in SERVICE_FIXTURES})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a production test whose service is down, saying how to start it; fail it when
    NIGHTSHIFT_REQUIRE_SERVICES=1 (CI starts the services and must run these tests)."""
    down = [(name, reason) for name in services_of(item) if (reason := service_down(name))]
    if not down:
        return
    message = "; ".join(f"{reason}. Start it with: {SERVICES[name][2]}" for name, reason in down)
    message += " (or run .ci/run, which starts both and runs `make test`)"
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{message}. {REQUIRE_SERVICES}=1: the production tests must run here.", pytrace=False)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One paragraph naming each production service that was down and how to start it."""
    down = {name: reason for name, reason in _CHECKED.items() if reason}
    if down:
        verdict = "failed" if os.environ.get(REQUIRE_SERVICES) == "1" else "skipped"
        terminalreporter.section("production services")
        for name, reason in down.items():
            terminalreporter.write_line(f"{reason}: the tests that need it were {verdict}. Start it with: {SERVICES[name][2]}")
        terminalreporter.write_line(".ci/run starts both, then runs `make test`.")


@contextlib.contextmanager
def postgres_database(prefix: str = "nightshift_test") -> Iterator[str]:
    """A fresh Postgres database named ``<prefix>_<random>``, dropped (connections and all) on the way out."""
    import uuid

    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield urlparse(PG_ADMIN)._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh Postgres database, created for the test and dropped after it."""
    with postgres_database() as url:
        yield url


@contextlib.contextmanager
def mlflow_server(backend_store: str, artifacts: str, log_path: Path, env: dict[str, str] | None = None,
                  port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``mlflow server`` on ``backend_store`` (a Postgres URL) with its artifacts at ``artifacts`` (an
    S3 URI, reached through ``env``'s AWS_* variables), on 127.0.0.1; yields its URL and process once
    it answers ``/health``, and stops it (its process group, by PID) on the way out."""
    import signal

    import httpx

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_path.open("a")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", backend_store,
         "--artifacts-destination", artifacts, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=dict(os.environ if env is None else env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(f"the MLflow server on port {port}", healthy, bool, timeout=180, interval=1)
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
