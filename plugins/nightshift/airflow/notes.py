"""Puts each finished Nightshift run's skip and failure reasons on its Dag run note.

An Airflow listener, registered by the Nightshift plugin: Airflow calls it in the scheduler when
a Dag run succeeds or fails, inside the scheduler's own transaction. It reads the reasons the run's
tasks kept (:mod:`nightshift.airflow.messages`) and writes them as the run's note. A note a person
wrote (it has a user) is never touched; a note this listener wrote is replaced by the run's latest
reasons, and when a cleared run then succeeds with none, each reason stays, marked "Resolved". Anything that
goes wrong here is logged and never changes the run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)
#: The XCom key of a task's reason (:data:`nightshift.airflow.messages.REASON_KEY`, not imported:
#: that module loads the Task SDK's exceptions, which the scheduler does not need).
REASON_KEY = "nightshift_reason"
NOTE_LIMIT = 1000
#: Marks a reason whose run was cleared and then succeeded (the UI shows a note's first paragraph only).
RESOLVED = "Resolved (the run succeeded later): "


def note_text(reasons: list[str]) -> str | None:
    """The note for a run's kept reasons (None when there are none); the longest is cut at the limit."""
    if not reasons:
        return None
    return "\n".join(f"- {reason}" for reason in sorted(set(reasons)))[:NOTE_LIMIT]


def next_note(current: str | None, written_by_person: bool, reasons: list[str], succeeded: bool) -> str | None:
    """The run's new note, or None to leave the note as it is."""
    if written_by_person:
        return None
    text = note_text(reasons)
    if text is not None:
        return text if text != current else None
    if current and succeeded and not current.startswith(RESOLVED):
        # cleared and retried: what failed before stays readable, as one paragraph
        return "\n".join(RESOLVED + line.removeprefix("- ") for line in current.splitlines() if line)[:NOTE_LIMIT]
    return None


def _reasons(dag_run: Any, session: Any) -> list[str]:
    from sqlalchemy import select

    from airflow.models.xcom import XComModel

    rows = session.execute(select(XComModel.value).where(
        XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.key == REASON_KEY)).all()
    found = []
    for (value,) in rows:
        while isinstance(value, str) and value[:1] == '"':  # stored JSON-encoded
            value = json.loads(value)
        found.append(str(value))
    return found


def _note(dag_run: Any, succeeded: bool) -> None:
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        return
    existing = dag_run.dag_run_note
    try:  # a read in the scheduler's own transaction, which already holds SQLite's write lock
        reasons = _reasons(dag_run, session)
    except Exception as exc:  # noqa: BLE001 - a note is never worth a scheduler error
        log.warning("no note for %s %s: %s", dag_run.dag_id, dag_run.run_id, exc)
        return
    text = next_note(dag_run.note, existing is not None and existing.user_id is not None, reasons, succeeded)
    if text is not None:
        dag_run.note = text


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A succeeded run whose tasks skipped with a reason carries it as its note."""
    _note(dag_run, succeeded=True)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """A failed run carries its tasks' failure reasons as its note."""
    _note(dag_run, succeeded=False)
