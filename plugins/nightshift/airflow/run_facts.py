"""What a DAG run wrote, read back for the Nightshift views in the Airflow UI.

One function per DAG family, each taking the run's subject (source or use case) and its day or
run id, and returning plain data (dicts, lists, numbers, strings) that a page renders. Everything
is read through Nightshift's own layers (the warehouse, the registry, the artifact store), with
shared locks only (a read-only handle: it never writes, and never finishes a killed writer's group;
it says so instead, ``WarehouseBusy``), and never imports Airflow (the plugin that serves the pages
does, in ``nightshift.airflow.ui``).

A table that does not exist yet reads as "nothing written yet"; any other read failure raises.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlparse

from nightshift.settings import Settings
from nightshift.warehouse import WarehouseBusy

__all__ = ["WarehouseBusy", "dbt_docs_url", "ingest_facts", "latest_scored_day", "mlflow_ui_url", "monitor_facts",
           "monitor_report", "retrain_facts", "score_facts"]

#: How many quarantined rows and top scores a page shows.
SAMPLE_ROWS = 20


def _read(settings: Settings, table: str, partition: dict[str, Any] | None = None) -> Any:
    """Rows of ``table`` (one partition when given); an empty frame when the table is not written yet."""
    import pandas as pd

    from nightshift.warehouse import TableMissing, Warehouse

    try:
        return Warehouse.from_uri(settings.warehouse_uri, read_only=True).read(table, partition)
    except TableMissing:  # any other failure (WarehouseBusy, a lost connection) is raised as it is
        return pd.DataFrame()


def _records(frame: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows as dicts of printable values: NaN as blank, floats to 4 decimals, timestamps as text."""
    shown = frame if limit is None else frame.head(limit)

    def printable(value: Any) -> Any:
        if value is None or value != value:
            return ""
        if isinstance(value, float):
            return round(value, 4)
        return value if isinstance(value, (int, str)) else str(value)

    return [{k: printable(v) for k, v in row.items()} for row in shown.to_dict("records")]


def ingest_facts(settings: Settings, source: str, day: date) -> dict[str, Any]:
    """D's validation of ``source``: counts, suite version, quarantine reasons with counts, sample rows."""
    from nightshift.ingest.validation import REASONS
    from nightshift.warehouse import VALIDATION_RUNS, quarantine_table

    summary = _read(settings, VALIDATION_RUNS, {"source": source, "batch_date": day})
    quarantined = _read(settings, quarantine_table(source), {"batch_date": day})
    reasons: dict[str, int] = {}
    if REASONS in quarantined:
        for text in quarantined[REASONS].astype(str):
            for reason in filter(None, (part.strip() for part in text.split(";"))):
                reasons[reason] = reasons.get(reason, 0) + 1
    first = summary.iloc[0] if len(summary) else None
    counts = {k: int(first[k]) if first is not None and k in first else None
              for k in ("landed_rows", "accepted_rows", "quarantined_rows")}
    return {
        "source": source,
        "day": day.isoformat(),
        "validated": first is not None,
        **counts,
        "suite_version": str(first["suite_version"]) if first is not None and "suite_version" in first else "",
        "reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": _records(quarantined.drop(columns=["batch_date"], errors="ignore"), SAMPLE_ROWS),
        "tables": {"raw": f"raw.{source}", "quarantine": quarantine_table(source), "summary": VALIDATION_RUNS},
    }


def retrain_facts(settings: Settings, use_case: str, airflow_run_id: str) -> dict[str, Any]:
    """The gate report of the run's challenger, the champion before and after, the MLflow run."""
    from nightshift.modeling import registry
    from nightshift.modeling.retrain import GATE_JSON
    from nightshift.warehouse import MODEL_PROMOTIONS

    trail = _read(settings, MODEL_PROMOTIONS)
    mine = (trail[(trail["use_case"] == use_case) & (trail["airflow_run_id"].astype(str) == airflow_run_id)]
            .sort_values("event_id") if len(trail) else trail)
    if not len(mine):
        return {"use_case": use_case, "recorded": False, "checks": [], "decision": None}
    decision = _records(mine.tail(1))[0]
    run_id = str(decision.get("mlflow_run_id", ""))
    client = registry.connect(settings)
    report = _gate_report(client, run_id, GATE_JSON)
    run = client.get_run(run_id)
    return {
        "use_case": use_case,
        "recorded": True,
        "decision": decision,
        "verdict": report.get("verdict", decision.get("gate_verdict", "")),
        "reasons": report.get("reasons", []),
        "checks": report.get("checks", []),
        "champion_before": decision.get("from_version") or "none",
        "champion_after": decision.get("to_version") if decision.get("action") == "promoted"
        else decision.get("from_version") or "none",
        "mlflow_run_id": run_id,
        "mlflow_run_url": mlflow_run_url(run.info.experiment_id, run_id),
        "run_date": run.data.params.get("run_date", ""),
    }


def _gate_report(client: Any, run_id: str, artifact: str) -> dict[str, Any]:
    """The gate report JSON logged to ``run_id`` ({} when the run has none)."""
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, artifact, tmp)
        except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing artifact
            if "not found" in str(exc).lower() or "no such file" in str(exc).lower() or "does not exist" in str(exc).lower():
                return {}
            raise
        return json.loads(Path(local).read_text())


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI (``NIGHTSHIFT_MLFLOW_UI_URL``, ``make mlflow``'s by default)."""
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_ui_url() -> str:
    """Where users open MLflow: ``NIGHTSHIFT_MLFLOW_UI_URL``, else ``make mlflow``'s address."""
    import os

    return os.environ.get("NIGHTSHIFT_MLFLOW_UI_URL", "http://localhost:5000").rstrip("/")


def dbt_docs_url() -> str:
    """Where users open dbt docs: ``NIGHTSHIFT_DBT_DOCS_URL``, else ``make dbt-docs``'s address."""
    import os

    return os.environ.get("NIGHTSHIFT_DBT_DOCS_URL", "http://localhost:8081").rstrip("/")


def monitor_facts(settings: Settings, use_case: str, day: date) -> dict[str, Any]:
    """D's drift and performance rows, the decision, and where its Evidently report is."""
    from nightshift.monitoring import DRIFT_DAILY, PERFORMANCE_DAILY, RETRAIN_REQUESTS, partition
    from nightshift.monitoring.reports import report_name

    key = partition(use_case, day)
    drift = _read(settings, DRIFT_DAILY, key).drop(columns=["use_case", "monitor_date"], errors="ignore")
    performance = _read(settings, PERFORMANCE_DAILY, key).drop(columns=["use_case", "monitor_date"], errors="ignore")
    decision = _read(settings, RETRAIN_REQUESTS, key).drop(columns=["use_case", "monitor_date"], errors="ignore")
    return {
        "use_case": use_case,
        "day": day.isoformat(),
        "monitored": bool(len(drift) or len(decision)),
        "drift": _records(drift.sort_values(["kind", "column_name"]) if {"kind", "column_name"} <= set(drift) else drift),
        "drifted": int(drift["drifted"].astype(bool).sum()) if "drifted" in drift else 0,
        "performance": _records(performance),
        "decision": _records(decision)[0] if len(decision) else None,
        "report": f"monitoring/{report_name(use_case, day)}",
    }


def monitor_report(settings: Settings, use_case: str, day: date) -> bytes | None:
    """D's Evidently HTML report from the artifact store (local or S3); None when there is none."""
    from pathlib import Path

    from nightshift.monitoring.reports import report_name

    key = f"monitoring/{report_name(use_case, day)}"
    parsed = urlparse(settings.artifacts_uri)
    if parsed.scheme == "s3":
        import boto3

        target = "/".join(p for p in (parsed.path.strip("/"), key) if p)
        client = boto3.client("s3")
        try:
            return client.get_object(Bucket=parsed.netloc, Key=target)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
    path = Path(parsed.path if parsed.scheme == "file" else settings.artifacts_uri) / key
    return path.read_bytes() if path.exists() else None


def score_facts(settings: Settings, use_case: str, day: date, bins: int = 10) -> dict[str, Any]:
    """D's published scores: rows, errors by reason, the distribution, the model and feature service, the top."""
    import numpy as np

    from nightshift.usecase import use_case_of
    from nightshift.warehouse import prediction_errors_table, predictions_table

    keys = use_case_of(settings, use_case).key_columns
    scores = _read(settings, predictions_table(use_case), {"scoring_date": day})
    errors = _read(settings, prediction_errors_table(use_case), {"scoring_date": day})
    histogram: list[dict[str, Any]] = []
    if len(scores):
        counts, edges = np.histogram(scores["score"].astype(float), bins=bins)
        histogram = [{"from": float(edges[i]), "to": float(edges[i + 1]), "rows": int(counts[i])} for i in range(bins)]

    def values(column: str) -> str:
        return ", ".join(sorted({str(v) for v in scores[column].dropna()})) if column in scores else ""

    top = scores.sort_values("score", ascending=False) if len(scores) else scores
    shown = [c for c in [*keys, "score", "band", "decile"] if c in top]
    return {
        "use_case": use_case,
        "day": day.isoformat(),
        "rows": int(len(scores)),
        "errors": sorted(errors["reason"].astype(str).value_counts().items()) if "reason" in errors else [],
        "error_rows": int(len(errors)),
        "model_version": values("model_version"),
        "feature_service": values("feature_service"),
        "airflow_run_id": values("airflow_run_id"),
        "scored_at": values("scored_at"),
        "histogram": histogram,
        "mean_score": float(scores["score"].mean()) if len(scores) else None,
        "top": _records(top[shown], SAMPLE_ROWS),
        "tables": {"predictions": predictions_table(use_case), "errors": prediction_errors_table(use_case),
                   "latest": f"marts.{use_case}_predictions_latest"},
    }


def latest_scored_day(settings: Settings, use_case: str) -> date | None:
    """The last day with published scores of ``use_case`` (None before the first night)."""
    import pandas as pd

    from nightshift.warehouse import TableMissing, Warehouse, predictions_table

    table = predictions_table(use_case)
    try:
        latest = Warehouse.from_uri(settings.warehouse_uri, read_only=True).max_value(table, "scoring_date")
    except TableMissing:
        return None
    return None if latest is None or pd.isna(latest) else pd.Timestamp(latest).date()
