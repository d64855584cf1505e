"""The nightly publish deadline without a scheduler: only a scheduled run gets one, counted from the
end of its day; the score DAGs carry it with the use case's hours, and it survives serialization;
the callback alerts only when D has no scores."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from nightshift.airflow import alerts, deadlines

END_OF_D = datetime(2026, 5, 8, tzinfo=timezone.utc)


class _Session:
    """What ``NightlyRunEnd`` asks the metadata DB: one run's type and data interval end."""

    def __init__(self, run_type: str | None) -> None:
        self.run_type = run_type

    def execute(self, statement: object) -> SimpleNamespace:
        row = None if self.run_type is None else SimpleNamespace(run_type=self.run_type, data_interval_end=END_OF_D)
        return SimpleNamespace(one_or_none=lambda: row)


@pytest.mark.parametrize(("run_type", "expected"), [
    ("scheduled", END_OF_D), ("backfill", None), ("manual", None), ("asset_triggered", None), (None, None),
])
def test_only_the_nightly_scheduled_run_has_a_deadline(run_type: str | None, expected: datetime | None) -> None:
    reference = deadlines.NightlyRunEnd()
    assert reference._evaluate_with(session=_Session(run_type), dag_id="score_churn", run_id="r") == expected


def test_publish_by_hours_reads_the_use_case_and_refuses_nonsense() -> None:
    assert deadlines.publish_by_hours({}) == deadlines.DEFAULT_PUBLISH_BY_HOURS
    assert deadlines.publish_by_hours({"publish_by_hours": 6}) == 6.0
    for bad in (0, -1, "8", True):
        with pytest.raises(ValueError, match="scoring.publish_by_hours"):
            deadlines.publish_by_hours({"publish_by_hours": bad})


def test_every_score_dag_carries_the_deadline_of_its_use_case_through_serialization() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from nightshift.settings import Settings
    from nightshift.usecase import load_use_cases
    from nightshift.settings import PROJECT_ROOT
    from tests.dags.test_dag_integrity import load_dags

    use_cases = load_use_cases(Settings.from_env().config_dir)
    for dag_id, dag in load_dags(PROJECT_ROOT / "dags" / "score.py").items():
        alert = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline
        assert isinstance(alert.reference, deadlines.NightlyRunEnd), dag_id
        hours = deadlines.publish_by_hours(use_cases[dag_id.removeprefix("score_")].scoring)
        assert alert.interval == timedelta(hours=hours)
        assert alert.callback.kwargs == {"use_case": dag_id.removeprefix("score_"), "publish_by_hours": hours}
        encoded = DagSerialization.to_dict(dag)
        assert "nightshift.airflow.deadlines.NightlyRunEnd" in str(encoded), "the reference must travel by class path"


def test_the_plugin_registers_the_reference_with_airflow() -> None:
    import nightshift_ui

    assert deadlines.NightlyRunEnd in nightshift_ui.NightshiftPlugin.deadline_references


def _context(day: str) -> dict:
    return {"dag_run": {"logical_date": f"{day}T00:00:00Z", "dag_run_id": f"scheduled__{day}T00:00:00+00:00"}}


def test_late_scores_are_announced_with_the_day_the_hour_and_what_to_look_at(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from nightshift.scoring import planning

    monkeypatch.setattr(planning, "scored_by", lambda settings, use_case, day: None)
    monkeypatch.setattr(alerts, "_connection", lambda conn_id: None)
    with caplog.at_level(logging.ERROR, logger=alerts.__name__):
        text = asyncio.run(deadlines.scores_not_published("churn", 8.0, _context("2026-05-07")))
    assert text is not None and "ALERT scores_late: " + text in caplog.text
    assert "scores for churn 2026-05-07 were not published by 8 h after the end of the day (2026-05-08 08:00 UTC)" in text
    assert "scheduled__2026-05-07T00:00:00+00:00" in text and "features_churn" in text


def test_scores_published_between_two_pokes_are_not_late(monkeypatch: pytest.MonkeyPatch) -> None:
    from nightshift.scoring import planning

    asked: list[date] = []
    monkeypatch.setattr(planning, "scored_by", lambda settings, use_case, day: asked.append(day) or {"table": "t"})
    monkeypatch.setattr(alerts, "announce", lambda *args, **kwargs: pytest.fail("no alert when D has scores"))
    assert asyncio.run(deadlines.scores_not_published("churn", 8.0, _context("2026-05-07"))) is None
    assert asked == [date(2026, 5, 7)]
