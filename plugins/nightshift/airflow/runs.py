"""Run Nightshift's DAGs through Airflow for a range of days, as real recorded DAG runs.

Used by ``make demo`` and by the end-to-end tests. Each day is one ``dag.test()`` run, so
every run, task instance and log is recorded in Airflow's metadata DB and shows in the UI.
Days whose latest run already succeeded are skipped unless ``rerun`` is set, which makes
the demo fast to repeat.

``airflow_environment`` builds the environment a process needs to do this; the process
must start with it (Airflow reads its configuration when it is first imported).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from nightshift.settings import PROJECT_ROOT

log = logging.getLogger(__name__)


def airflow_environment(airflow_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for an Airflow process on this repo's DAGs and a SQLite DB."""
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
        }
    )
    return env


#: Airflow pools Nightshift's DAGs use, with their slots on the embedded default.
POOLS = {
    # dbt-duckdb holds its file for a whole command: one dbt task at a time.
    "dbt": (1, "dbt commands (one at a time on DuckDB)"),
    # Registry writes (promotion, rollback) one at a time: never two alias moves at once.
    "model_registry": (1, "MLflow alias moves, one at a time"),
}


def ensure_metadata_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata DB (a no-op when it is current), and Nightshift's pools."""
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    for name, (slots, description) in POOLS.items():
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


if __name__ == "__main__":
    sys.exit(main())
