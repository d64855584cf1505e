"""Alerts without a scheduler: the log is always a sink, the providers' notifiers join only when
their Connections exist, and each event's text says what, where and what next."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from nightshift.airflow import alerts


def test_the_log_is_the_only_sink_without_connections(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(alerts, "_connection", lambda conn_id: None)
    with caplog.at_level(logging.WARNING, logger=alerts.__name__):
        assert alerts.announce("retrain_requested", "churn 2026-05-06: drift share 0.4") == ["log"]
    assert "ALERT retrain_requested: churn 2026-05-06: drift share 0.4" in caplog.text


def test_slack_and_email_go_through_the_providers_when_their_connections_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    connections = {alerts.SLACK_CONN_ID: SimpleNamespace(extra_dejson={}),
                   alerts.SMTP_CONN_ID: SimpleNamespace(extra_dejson={"to": "oncall@example.com"})}
    monkeypatch.setattr(alerts, "_connection", connections.get)
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(SlackWebhookNotifier, "notify", lambda self, context: sent.append(("slack", self.text)))
    monkeypatch.setattr(SmtpNotifier, "notify", lambda self, context: sent.append(("smtp", self.subject)))
    delivered = alerts.announce("gate_failed", "churn: challenger worse than champion")
    assert delivered == ["log", "SlackWebhookNotifier", "SmtpNotifier"]
    assert sent == [("slack", "*Nightshift gate failed*\nchurn: challenger worse than champion"), ("smtp", "Nightshift gate failed")]


def test_a_sink_that_fails_never_fails_the_step(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    monkeypatch.setattr(alerts, "_connection", {alerts.SLACK_CONN_ID: SimpleNamespace(extra_dejson={})}.get)

    def down(self: object, context: object) -> None:
        raise ConnectionError("slack unreachable")

    monkeypatch.setattr(SlackWebhookNotifier, "notify", down)
    assert alerts.announce("champion_changed", "churn: version 2") == ["log"]
    assert "could not be sent through SlackWebhookNotifier: slack unreachable" in caplog.text


def test_connections_that_cannot_be_read_leave_the_log_as_the_sink(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    def unreachable(conn_id: str) -> None:
        raise ConnectionError("secrets backend down")

    monkeypatch.setattr(alerts, "_connection", unreachable)
    assert alerts.announce("champion_changed", "churn: version 2") == ["log"]
    assert "reached the log only" in caplog.text and "secrets backend down" in caplog.text


def test_unknown_events_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown alert event 'gate_maybe'"):
        alerts.announce("gate_maybe", "x")


def test_a_failure_callback_names_the_task_the_run_the_reason_and_the_next_step(monkeypatch: pytest.MonkeyPatch,
                                                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(alerts, "_connection", lambda conn_id: None)
    ti = SimpleNamespace(dag_id="ingest_activity", run_id="backfill__2026-01-20", task_id="validate_and_load", try_number=1)
    alerts.NightshiftNotifier("task_failed").notify({"ti": ti, "exception": ValueError("batch rejected: bad header\nmore")})
    assert ("ingest_activity: task validate_and_load (try 1) of run backfill__2026-01-20 failed: batch rejected: bad header. "
            "Open the run in the Airflow UI") in caplog.text


def test_quarantine_above_the_sources_threshold_is_an_alert_and_below_is_not() -> None:
    summary = {"source": "activity", "batch_date": "2026-01-03", "landed": 100, "quarantined": 8,
               "reason_counts": {"expect_column_values_to_not_be_null(customer_id)": 6, "x": 2}}
    text = alerts.quarantine_alert(summary, 0.05)
    assert text is not None and "8 of 100 rows (8.0%) quarantined, above the alert threshold of 5%" in text
    assert "expect_column_values_to_not_be_null(customer_id) (6 rows)" in text
    assert alerts.quarantine_alert(summary, 0.1) is None
    assert alerts.gate_event({"verdict": "passed"}) == "gate_passed" and alerts.gate_event({"verdict": "failed"}) == "gate_failed"
