"""Where a day's HTML drift report goes: the artifact store (a local directory or ``s3://…``), and
the champion's MLflow run under ``monitoring/``."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from nightshift.landing import check_source_name
from nightshift.monitoring import MLFLOW_ARTIFACT_DIR


def report_name(use_case: str, day: date) -> str:
    """``<use case>/<D>/drift_report.html``: one report per (use case, D); a rerun replaces it."""
    return f"{check_source_name(use_case)}/{day.isoformat()}/drift_report.html"


def store_report(artifacts_uri: str, use_case: str, day: date, html: Path, s3_client: Any = None) -> str:
    """Copy ``html`` to ``<artifacts>/monitoring/<use case>/<D>/drift_report.html``; returns its URI.

    Locally the file appears whole or not at all (written aside, then renamed).
    """
    key = f"monitoring/{report_name(use_case, day)}"
    parsed = urlparse(artifacts_uri)
    if parsed.scheme == "s3":
        import boto3

        client = s3_client or boto3.client("s3")
        target = "/".join(p for p in (parsed.path.strip("/"), key) if p)
        client.upload_file(str(html), parsed.netloc, target)
        return f"s3://{parsed.netloc}/{target}"
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"artifacts URI {artifacts_uri!r}: use a local path or s3://bucket/prefix")
    target = Path(parsed.path if parsed.scheme == "file" else artifacts_uri) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".report-")
    with os.fdopen(fd, "wb") as out:
        out.write(html.read_bytes())
    os.replace(tmp, target)
    return str(target)


def log_report(client: Any, run_id: str, html: Path, use_case: str, day: date) -> str:
    """Log ``html`` to MLflow run ``run_id`` (the champion's) as ``monitoring/<use case>/<D>/drift_report.html``."""
    folder = f"{MLFLOW_ARTIFACT_DIR}/{check_source_name(use_case)}/{day.isoformat()}"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "drift_report.html"
        local.write_bytes(html.read_bytes())
        client.log_artifact(run_id, str(local), artifact_path=folder)
    return f"{folder}/drift_report.html"
