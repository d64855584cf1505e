"""The day's HTML report lands in the artifact store and on the champion's MLflow run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nightshift.monitoring.reports import log_report, report_name, store_report

DAY = date(2026, 3, 10)


def test_report_is_logged_to_the_run_under_monitoring(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("uc", artifact_location=str(tmp_path / "mlruns"))
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)  # the champion's run finished long ago
    html = tmp_path / "r.html"
    html.write_text("<html>drift</html>")
    path = log_report(client, run.info.run_id, html, "uc", DAY)
    assert path == "monitoring/uc/2026-03-10/drift_report.html"
    listed = [f.path for f in client.list_artifacts(run.info.run_id, "monitoring/uc/2026-03-10")]
    assert listed == [path]


def test_a_rerun_replaces_the_stored_report_and_bad_names_are_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a.html", tmp_path / "b.html"
    first.write_text("first")
    second.write_text("second")
    store_report(str(tmp_path / "store"), "uc", DAY, first)
    uri = store_report(f"file://{tmp_path / 'store'}", "uc", DAY, second)
    assert Path(uri).read_text() == "second"
    assert sorted(p.name for p in Path(uri).parent.iterdir()) == ["drift_report.html"]
    with pytest.raises(ValueError):
        report_name("../etc", DAY)
