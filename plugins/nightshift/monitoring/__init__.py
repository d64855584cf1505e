"""Monitoring: feature and prediction drift, realized and estimated performance, retrain requests.

One module per concern: :mod:`~nightshift.monitoring.config` (the use case's ``monitoring:``
settings with their defaults), :mod:`~nightshift.monitoring.drift` (the Evidently report on a
bounded sample, and its rows), :mod:`~nightshift.monitoring.performance` (realized metrics once
labels land, estimated ones before), :mod:`~nightshift.monitoring.decision` (thresholds to a
retrain request, or its suppression with the reason) and :mod:`~nightshift.monitoring.reports`
(the HTML report in the artifact store and on the champion's MLflow run).

This package names the tables it writes (below) and nothing else's; it never imports Airflow.
"""

from __future__ import annotations

from datetime import date

#: One row per (use case, D, feature or ``prediction``): the test, its statistic, threshold, verdict.
DRIFT_DAILY = "monitoring.drift_daily"
#: Estimated and realized metrics per (use case, D, model version), with the label coverage.
PERFORMANCE_DAILY = "monitoring.performance_daily"
#: One row per (use case, D): requested, suppressed (and why) or not needed, with the reasons.
RETRAIN_REQUESTS = "monitoring.retrain_requests"
#: The column name drift rows give the model's score.
PREDICTION = "prediction"
#: Where a report goes on the champion's MLflow run.
MLFLOW_ARTIFACT_DIR = "monitoring"


def partition(use_case: str, day: date) -> dict[str, str | date]:
    """The partition every monitoring table is written by: a rerun of D replaces exactly D."""
    return {"use_case": use_case, "monitor_date": day}
