"""Import the libraries Nightshift's tasks use into the scheduler, before LocalExecutor forks.

Under LocalExecutor every task runs in a process forked from a worker that the scheduler forked
at start; a library the scheduler has imported is already in every task, at no cost. A library it
has not is imported again by every task: Great Expectations alone takes 3.5 s, which made a
validate-and-load task (0.5 s of work on a demo batch) cost four seconds, and the demo's 768 ingest
runs ~24 minutes.

The Nightshift plugin calls :func:`preload_for_scheduler` when Airflow loads it; it does
something only when ``NIGHTSHIFT_PRELOAD=1`` and only in the ``airflow scheduler`` process
(Airflow loads plugins, for their listeners, before the scheduler starts its executor). Other
processes (the API server, the DAG processor, CLI commands, tasks) import nothing more. It is
opt-in: ``make demo``'s scheduler runs with it (measured: 120 ingest runs of the demo data,
backfilled with 4 active runs per DAG, took 100 s instead of 225 s).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from time import monotonic

log = logging.getLogger(__name__)
#: What tasks import: validation (GX), data frames, the warehouse; what the ingest DAG file imports
#: when a task parses it (its sensor's provider, Nightshift's DAG helpers); then what scoring,
#: training and monitoring tasks import (measured cold: Evidently ~4 s, Feast ~3 s, MLflow and
#: LightGBM ~1.5 s each, paid by every such task otherwise); then Cosmos and dbt.
MODULES = ("great_expectations", "pandas", "pyarrow", "pyarrow.parquet", "duckdb", "nightshift.ingest.validation",
           "nightshift.ingest.loading", "nightshift.warehouse", "airflow.providers.standard.sensors.python",
           "nightshift.airflow.alerts", "nightshift.airflow.assets", "nightshift.airflow.guards",
           "nightshift.airflow.messages", "nightshift.usecase", "nightshift.ingest",
           "mlflow", "feast", "lightgbm", "sklearn", "evidently", "nightshift.modeling.registry", "nightshift.features",
           "nightshift.scoring", "nightshift.monitoring",
           # every dbt task (Cosmos, dbt in-process): ~2-3 s of imports each, one task at a time
           "cosmos", "cosmos.operators.local", "dbt.cli.main", "dbt.adapters.duckdb")


def is_scheduler(argv: list[str]) -> bool:
    """True in the ``airflow scheduler`` process (and not in its ``--help`` or a sub-command's)."""
    return len(argv) >= 2 and os.path.basename(argv[0]) == "airflow" and argv[1] == "scheduler"


def preload_for_scheduler(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> list[str]:
    """Import :data:`MODULES` when this process is the scheduler; returns what it imported."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if not is_scheduler(argv) or environ.get("NIGHTSHIFT_PRELOAD", "0") != "1":
        return []
    started, loaded = monotonic(), []
    # a task forked from the scheduler loads the plugin again, with everything already imported
    for name in (m for m in MODULES if m not in sys.modules):
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # noqa: BLE001 - a task would fail on it with its own message; never the scheduler
            log.warning("preloading %s for the scheduler's task processes failed: %s", name, exc)
    if loaded:
        log.info("preloaded %s for LocalExecutor's forked tasks in %.1fs", ", ".join(loaded), monotonic() - started)
    return loaded
