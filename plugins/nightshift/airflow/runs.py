"""Run Nightshift's DAGs through Airflow for a range of days, as real recorded DAG runs.

Used by the end-to-end tests (``make demo`` drives the scheduler instead: ``nightshift.airflow.local``).
Each day is one ``dag.test()`` run, so
every run, task instance and log is recorded in Airflow's metadata DB and shows in the UI.
Days whose latest run already succeeded are skipped unless ``rerun`` is set, which makes
the demo fast to repeat.

``airflow_environment`` builds the environment a process needs to do this; the process
must start with it (Airflow reads its configuration when it is first imported).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from time import monotonic, sleep

from nightshift.airflow import sqlite
from nightshift.settings import PROJECT_ROOT

log = logging.getLogger(__name__)
#: SQLite admits one writer: a CLI call made while the scheduler writes fails with this.
SQLITE_LOCKED = "database is locked"


def airflow_environment(airflow_home: Path, base: dict[str, str] | None = None,
                        metadata_db: str | None = None) -> dict[str, str]:
    """Environment variables for an Airflow process on this repo's DAGs and a SQLite DB in
    ``airflow_home``, or the Postgres ``metadata_db`` (a SQLAlchemy URL) when given."""
    env = dict(os.environ if base is None else base)
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": env.get("AIRFLOW__CORE__UNIT_TEST_MODE", "False"),
            "GX_ANALYTICS_ENABLED": "False",
            # No telemetry: Cosmos and dbt phone home otherwise (this code may run offline).
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            # `airflow standalone` starts `airflow` subcommands by name.
            "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
            # SQLite: a writer waits its turn instead of failing on a lock (nightshift.airflow.sqlite)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": sqlite.CONNECT_ARGS_PATH,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": sqlite.CONNECT_ARGS_PATH,
        }
    )
    # Nightshift's processes take MLflow's address from NIGHTSHIFT_MLFLOW_URI. mlflow.set_tracking_uri
    # and set_registry_uri write these two into the calling process's environment, so a parent that
    # has used MLflow (a test process, a notebook) would otherwise point its children elsewhere.
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(key, None)
    if metadata_db is not None:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db
        # sqlite3's busy timeout is no argument of psycopg2's connect
        env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS")
        env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC")
    return env


#: Airflow pools Nightshift's DAGs use, with their slots on the embedded default.
POOLS = {
    # dbt-duckdb holds its file for a whole command: one dbt task at a time.
    "dbt": (1, "dbt commands (one at a time on DuckDB)"),
    # Registry writes (promotion, rollback) one at a time: never two alias moves at once.
    "model_registry": (1, "MLflow alias moves, one at a time"),
}


#: The same pools on a Postgres metadata DB and warehouse (as docker-compose.yml's airflow-init sets them):
#: Postgres takes parallel dbt commands.
POSTGRES_POOLS = {**POOLS, "dbt": (4, "dbt commands")}


def ensure_metadata_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata DB (a no-op when it is current), a SQLite one in the WAL
    journal, and Nightshift's pools."""
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    on_sqlite = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite")
    if on_sqlite:
        sqlite.use_wal(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    for name, (slots, description) in (POOLS if on_sqlite else POSTGRES_POOLS).items():
        subprocess.run([airflow, "pools", "set", name, str(slots), description], env=env, check=True,
                       stdout=subprocess.DEVNULL)


@dataclass(frozen=True)
class DayRun:
    """The outcome of one DAG run."""

    dag_id: str
    day: date
    run_id: str
    state: str
    skipped: bool = False


def _logical(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _succeeded_days(dag_id: str) -> set[date]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.state == "success").all()
        return {r.logical_date.date() for r in runs if r.logical_date is not None}


def run_days(dag_id: str, days: list[date], rerun: bool = False, conf: dict | None = None) -> list[DayRun]:
    """Run ``dag_id`` once per day (in order) with ``dag.test``; failures do not stop the loop.

    ``conf`` is the runs' configuration (a manually triggered DAG's params).
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG files failed to import: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise KeyError(f"no DAG {dag_id!r} in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    # Airflow 3.3's dag.test() cannot finish a successful run of a DAG with a deadline alert (it looks
    # the alerts up by id, and an unserialized DAG holds them as data). A test run needs no deadline.
    dag.deadline = None
    done = set() if rerun else _succeeded_days(dag_id)
    results = []
    for day in days:
        if day in done:
            results.append(DayRun(dag_id, day, "", "success", skipped=True))
            continue
        run = dag.test(logical_date=_logical(day), run_conf=conf)
        results.append(DayRun(dag_id, day, run.run_id, str(getattr(run.state, "value", run.state))))
        log.info("%s %s: %s", dag_id, day, results[-1].state)
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m nightshift.airflow.runs DAG_ID [DAG_ID …] --start YYYY-MM-DD --days N [--rerun]``.

    Runs each DAG for each day (one DAG after the other). Prints one line per run
    (``RUN <dag_id> <day> <state> <run_id>``); exits 1 if any run failed.
    """
    parser = argparse.ArgumentParser(prog="python -m nightshift.airflow.runs", description=main.__doc__)
    parser.add_argument("dag_ids", nargs="+", metavar="dag_id")
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rerun", action="store_true", help="run days whose latest run already succeeded")
    parser.add_argument("--conf", type=json.loads, default=None, help="run configuration (JSON), e.g. params")
    args = parser.parse_args(argv)
    days = [args.start + timedelta(days=i) for i in range(args.days)]
    results = [r for dag_id in args.dag_ids for r in run_days(dag_id, days, rerun=args.rerun, conf=args.conf)]
    for r in results:
        print(f"RUN {r.dag_id} {r.day} {r.state}{' (already done)' if r.skipped else ''} {r.run_id}")
    return 0 if all(r.state == "success" for r in results) else 1


def ingest_dag_ids(config_dir: Path, use_cases: list[str] | None = None) -> list[str]:
    """``ingest_<source>`` of every source of ``use_cases`` (all use cases when None)."""
    from nightshift.usecase import all_sources, load_use_cases

    chosen = {n: u for n, u in load_use_cases(config_dir).items() if use_cases is None or n in use_cases}
    return [f"ingest_{source}" for source in sorted(all_sources(chosen))]


def poll_until(what: str, probe: Callable[[], object], done: Callable[[object], bool], timeout: float,
               interval: float = 2.0) -> object:
    """Poll ``probe()`` until ``done`` holds for what it returns, for at most ``timeout`` seconds.

    Says what it waits for and how long it took; on the deadline raises ``TimeoutError`` with the
    last state it saw. Returns that state.
    """
    started = monotonic()
    print(f"waiting up to {timeout:.0f}s for {what}", flush=True)
    while True:
        seen = probe()
        elapsed = monotonic() - started
        if done(seen):
            print(f"{what}: done after {elapsed:.1f}s ({seen!r:.200})", flush=True)
            return seen
        if elapsed + interval > timeout:
            raise TimeoutError(f"gave up after {elapsed:.0f}s waiting for {what}; last seen: {seen!r:.2000}")
        sleep(interval)


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run an ``airflow`` CLI command until it succeeds; only a locked SQLite DB is retried (the
    scheduler writes in bursts), any other failure raises with the command's output."""

    def attempt() -> str:
        proc = subprocess.run(["airflow", *args], env=env, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 and SQLITE_LOCKED not in output:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return "succeeded" if proc.returncode == 0 else f"exit {proc.returncode}: {SQLITE_LOCKED}"

    return str(poll_until(f"`airflow {' '.join(args)}` to succeed", attempt, lambda seen: seen == "succeeded", timeout))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port: int) -> dict:
    """Airflow's health report from its API server, or {} while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/api/v2/monitor/health", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def _healthy(health: object) -> bool:
    parts = ("metadatabase", "scheduler", "dag_processor")
    return isinstance(health, dict) and all((health.get(part) or {}).get("status") == "healthy" for part in parts)


@contextlib.contextmanager
def standalone(env: dict[str, str], log_path: Path, timeout: float = 300) -> Iterator[dict[str, str]]:
    """``airflow standalone`` (scheduler, LocalExecutor, DAG processor, API server) on ``env``'s
    metadata DB; yields the environment for CLI calls against it once the API server reports the
    metadata DB, the scheduler and the DAG processor healthy. Every process it started is killed after."""
    env = dict(env)
    port = free_port()
    env.update(
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
        AIRFLOW__CORE__PARALLELISM="8",
        # The scheduler's and the triggerer's log servers default to 8793 and 8794: two instances
        # on one machine (two test processes) would fight over them.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
    )
    log_file = log_path.open("a")
    server = subprocess.Popen(["airflow", "standalone"], env=env, stdout=log_file, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        def probe() -> dict:
            if server.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
            return _health(port)

        poll_until(f"airflow standalone on port {port} to report healthy", probe, _healthy, timeout)
        airflow_cli(env, "dags", "reserialize")
        yield env
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already: keep the real error
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # the scheduler, triggerer and task processes too
        log_file.close()


if __name__ == "__main__":
    sys.exit(main())
