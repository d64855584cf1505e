"""A task's skip or failure reason where users look: the first line of its log, and the run's note.

Airflow prints a failure as "Task failed with exception" followed by a traceback whose last line is
the reason, and a skip's reason inside the folded "Post Execute" group. Tasks raise through
:func:`fail` and :func:`skip` instead: the reason is logged first, as its own line, before
Airflow's own output, and kept as the XCom ``nightshift_reason`` so that the listener in
:mod:`nightshift.airflow.notes` can put it on the Dag run's note when the run finishes.

Imports only ``airflow.sdk`` (DAG files import this module at parse time).
"""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

log = logging.getLogger(__name__)
#: The XCom key a task's reason is kept under for the run's note.
REASON_KEY = "nightshift_reason"


def _keep(kind: str, message: str) -> None:
    """Log ``message`` as the task's headline and keep it for the run's note (outside a task: log only)."""
    first = message.strip().splitlines()[0] if message.strip() else message
    log.log(logging.ERROR if kind == "failed" else logging.WARNING, "%s: %s", kind.upper(), first)
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # noqa: BLE001 - not inside a running task (a unit test, the CLI): the log line is enough
        return
    ti.xcom_push(key=REASON_KEY, value=f"{ti.task_id} {kind}: {first}"[:1000])


def fail(message: str) -> AirflowFailException:
    """The exception to raise for a failure retrying cannot fix, with ``message`` shown first."""
    _keep("failed", message)
    return AirflowFailException(message)


def skip(message: str) -> AirflowSkipException:
    """The exception to raise to skip the task, with ``message`` shown first."""
    _keep("skipped", message)
    return AirflowSkipException(message)
