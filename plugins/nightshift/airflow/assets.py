"""Every Asset Nightshift's DAGs produce or consume, declared once (the only module here that imports Airflow).

Producers list them as ``outlets``, consumers as ``schedule``; both import them from here
so that a name is never spelled twice.
"""

from __future__ import annotations

from airflow.sdk import Asset


def raw_asset(source: str) -> Asset:
    """Accepted rows of ``source`` for a day have been written (``raw.<source>``)."""
    return Asset(f"raw/{source}")


def features_asset(use_case: str) -> Asset:
    """The use case's feature tables and online store are fresh."""
    return Asset(f"features/{use_case}")


def predictions_asset(use_case: str) -> Asset:
    """The use case's predictions partition for a day has been written."""
    return Asset(f"predictions/{use_case}")


def retrain_request_asset(use_case: str) -> Asset:
    """Monitoring asks for the use case's model to be retrained."""
    return Asset(f"retrain-request/{use_case}")
