"""The dbt project outside Airflow: where its external tables live, publishing them, running dbt.

The ``features`` and ``score`` DAGs run dbt through Cosmos (:mod:`nightshift.airflow.dbt_tasks`);
this module serves tests and a data team's shell, and makes the tables dbt wrote queryable.
"""

from __future__ import annotations

from pathlib import Path

from nightshift.settings import PROJECT_ROOT, Settings

DBT_PROJECT = PROJECT_ROOT / "dbt"
#: The days a dbt run builds of the day-partitioned models (``<first>:<last>``; empty: every day).
DBT_DAYS_ENV = "NIGHTSHIFT_DBT_DAYS"


def features_build(use_case: str) -> list[str]:
    """``dbt build`` arguments for a use case's models and their parents, its marts left out
    (the features DAG's selection, for work outside Airflow)."""
    return ["build", "--select", f"+tag:{use_case}", "--exclude", "tag:scoring"]


def marts_build(use_case: str) -> list[str]:
    """``dbt build`` arguments for a use case's marts (the score DAG's selection)."""
    return ["build", "--select", f"tag:scoring,tag:{use_case}"]


#: dbt model folders whose models are external Parquet tables in the embedded profile.
EXTERNAL_SCHEMAS = ("features", "populations", "labels", "marts")


def external_tables(project_dir: Path = DBT_PROJECT) -> list[str]:
    """``schema.model`` of every dbt model written as an external table (features, populations,
    labels and marts), each use case's subfolder included."""
    return [
        f"{schema}.{model.stem}"
        for schema in EXTERNAL_SCHEMAS
        for model in sorted((project_dir / "models" / schema).rglob("*.sql"))
    ]


def prepare_dbt_tables(settings: Settings, project_dir: Path = DBT_PROJECT) -> None:
    """Create the folder of each external model's Parquet file (embedded profile only).

    dbt-duckdb writes an external model with DuckDB's COPY, which does not create folders.
    """
    if settings.profile != "embedded":
        return
    for table in external_tables(project_dir):
        (settings.warehouse_dir / "tables" / Path(*table.split("."))).mkdir(parents=True, exist_ok=True)


def publish_dbt_tables(settings: Settings, project_dir: Path = DBT_PROJECT) -> list[str]:
    """Make each built feature and mart model queryable as ``<schema>.<model>`` in the warehouse
    catalog (embedded profile: a view over the Parquet file dbt wrote; Postgres has the tables)."""
    from nightshift.warehouse import DuckDBWarehouse, Warehouse

    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    tables = [t for t in external_tables(project_dir)
              if not isinstance(warehouse, DuckDBWarehouse) or t in warehouse.tables()]
    if isinstance(warehouse, DuckDBWarehouse):
        warehouse.publish(set(tables))
    return tables


class DbtFailed(RuntimeError):
    """A dbt command failed; the message carries the end of dbt's output."""


def run_dbt(settings: Settings, args: list[str], project_dir: Path = DBT_PROJECT, days: str = "") -> str:
    """``dbt <args>`` on ``project_dir`` with the profile of ``settings``; returns dbt's output.

    For work outside Airflow (tests, a data team's shell); the ``features`` DAG runs dbt through
    Cosmos instead. Targets and logs go to the state directory, never into the project.
    ``days`` (``<first>:<last>``, :attr:`BuildPlan.dbt_days`) builds only those days of the
    day-partitioned models; empty builds every day.
    """
    import os
    import subprocess
    import sys

    prepare_dbt_tables(settings, project_dir)
    env = {**os.environ, **settings.profile_variables(), "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
           DBT_DAYS_ENV: days}
    work = settings.home / "dbt" / project_dir.resolve().name
    command = [
        str(Path(sys.executable).parent / "dbt"), *args,
        "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DbtFailed(f"dbt {' '.join(args)} failed in {project_dir} (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc.stdout
