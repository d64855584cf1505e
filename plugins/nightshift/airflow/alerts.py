"""Nightshift's alerts, through Airflow notifiers: failures, pipeline events and late scores.

Sinks: the task log, always. Slack when the Connection ``nightshift_slack`` exists (a Slack
incoming-webhook connection, sent by the Slack provider's ``SlackWebhookNotifier``); e-mail when
``nightshift_smtp`` exists (an SMTP connection whose extra names the recipients, ``{"to": "a@x,b@y"}``,
sent by the SMTP provider's ``SmtpNotifier``). No HTTP client is written here.

Events (:data:`EVENTS`): a task or DAG run failed, the gate passed or failed, the champion
changed, monitoring requested a retrain, a batch's quarantine is above its source's
``alert_quarantined_share``.

A sink that fails is logged and never fails the step that raised the alert: the alert is about
that step's outcome, which has already happened. DAG files import this module at parse time:
it imports only ``airflow.sdk`` at the top.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

SLACK_CONN_ID = "nightshift_slack"
SMTP_CONN_ID = "nightshift_smtp"
EVENTS = ("task_failed", "dag_failed", "gate_passed", "gate_failed", "champion_changed", "retrain_requested",
          "quarantine_above_threshold", "scores_late")


def _connection(conn_id: str) -> Any | None:
    """The Airflow Connection ``conn_id``, or None when it is not configured."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def sinks(subject: str, text: str) -> list[BaseNotifier]:
    """The provider notifiers whose Connections exist (the log is not one: :func:`announce` writes it)."""
    found: list[BaseNotifier] = []
    if _connection(SLACK_CONN_ID) is not None:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        found.append(SlackWebhookNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=f"*{subject}*\n{text}"))
    smtp = _connection(SMTP_CONN_ID)
    if smtp is not None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        to = str((smtp.extra_dejson or {}).get("to", "")).strip()
        if to:
            found.append(SmtpNotifier(to=to, subject=subject, html_content=f"<pre>{html.escape(text)}</pre>",
                                      smtp_conn_id=SMTP_CONN_ID))
        else:
            log.warning("connection %s has no recipients: set its extra to {\"to\": \"you@example.com\"}", SMTP_CONN_ID)
    return found


def announce(event: str, text: str, context: Any = None) -> list[str]:
    """Send ``event`` with ``text`` to the log and every configured sink; returns the sinks that took it."""
    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}; known: {', '.join(EVENTS)}")
    subject = f"Nightshift {event.replace('_', ' ')}"
    level = logging.ERROR if event in ("task_failed", "dag_failed", "gate_failed", "scores_late") else logging.WARNING
    log.log(level, "ALERT %s: %s", event, text)
    delivered = ["log"]
    try:
        notifiers = sinks(subject, text)
    except Exception as exc:  # noqa: BLE001 - an alert never fails the step it reports on
        log.error("alert %s reached the log only: the Slack / e-mail Connections could not be read: %s", event, exc)
        return delivered
    for notifier in notifiers:
        try:
            notifier.notify(context or {})
            delivered.append(type(notifier).__name__)
        except Exception as exc:  # noqa: BLE001 - an alert never fails the step it reports on
            log.error("alert %s could not be sent through %s: %s", event, type(notifier).__name__, exc)
    return delivered


def failure_text(context: Any) -> str:
    """What failed, where, why, and where to look: from a task's or a DAG run's callback context."""
    context = context or {}
    ti = context.get("ti") or context.get("task_instance")
    run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(run, "dag_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(run, "run_id", "?")
    what = f"task {ti.task_id} (try {getattr(ti, 'try_number', '?')})" if ti is not None else "the run"
    reason = context.get("exception") or context.get("reason") or "see the task log"
    return (f"{dag_id}: {what} of run {run_id} failed: {str(reason).strip().splitlines()[0] if str(reason).strip() else reason}. "
            f"Open the run in the Airflow UI (its Nightshift tab shows the run's data); fix the cause, then clear the task.")


class NightshiftNotifier(BaseNotifier):
    """A failure callback: the log always, Slack and e-mail when configured (see the module)."""

    template_fields = ()

    def __init__(self, event: str = "task_failed", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if event not in EVENTS:
            raise ValueError(f"unknown alert event {event!r}; known: {', '.join(EVENTS)}")
        self.event = event

    def notify(self, context: Any) -> None:
        """Announce the failure in ``context``."""
        announce(self.event, failure_text(context), context)


#: The longest any Nightshift task may run before Airflow kills it and retries (train overrides it).
TASK_TIMEOUT_HOURS = 2.0
#: A training run's limit: the largest step.
TRAIN_TIMEOUT_HOURS = 4.0


def task_defaults() -> dict[str, Any]:
    """``default_args`` entries every Nightshift task gets: a failure notifier, and an
    ``execution_timeout`` so a hung dbt command, materialization or scoring shard fails loudly."""
    from datetime import timedelta

    return {"on_failure_callback": [NightshiftNotifier("task_failed")],
            "execution_timeout": timedelta(hours=TASK_TIMEOUT_HOURS)}


def dag_callbacks() -> dict[str, Any]:
    """DAG keyword arguments every Nightshift DAG gets: a failure notifier for the run."""
    return {"on_failure_callback": [NightshiftNotifier("dag_failed")]}


def quarantine_alert(summary: dict[str, Any], threshold: float) -> str | None:
    """The alert text when a batch's quarantined share is above ``threshold``; None otherwise."""
    landed, quarantined = int(summary.get("landed", 0)), int(summary.get("quarantined", 0))
    share = quarantined / landed if landed else 0.0
    if share <= threshold:
        return None
    top = sorted((summary.get("reason_counts") or {}).items(), key=lambda kv: -kv[1])[:3]
    reasons = ", ".join(f"{name} ({count} rows)" for name, count in top) or "see quarantine table"
    return (f"source {summary.get('source')} on {summary.get('batch_date')}: {quarantined} of {landed} rows "
            f"({share:.1%}) quarantined, above the alert threshold of {threshold:.0%} (sources.<source>."
            f"alert_quarantined_share); top reasons: {reasons}. The batch was loaded; open the run's Nightshift tab "
            f"for sample rows, and tell the upstream owner")


def gate_event(report: dict[str, Any]) -> str:
    """``gate_passed`` or ``gate_failed`` for an evaluation report."""
    return "gate_passed" if report.get("verdict") == "passed" else "gate_failed"
