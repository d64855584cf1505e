"""Skip and failure reasons: logged first, kept for the run's note, and the note's text."""

from __future__ import annotations

import logging

import pytest

from nightshift.airflow import messages, notes


def test_a_failure_is_logged_as_its_own_first_line_and_raised_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=messages.__name__):
        exc = messages.fail("batch activity/2026-01-20 rejected: unreadable CSV\ndetails below")
        skipped = messages.skip("no retrain requested: 2026-05-01 not_needed")
    assert type(exc).__name__ == "AirflowFailException" and str(exc).startswith("batch activity/2026-01-20 rejected")
    assert type(skipped).__name__ == "AirflowSkipException"
    assert caplog.messages == ["FAILED: batch activity/2026-01-20 rejected: unreadable CSV",
                               "SKIPPED: no retrain requested: 2026-05-01 not_needed"]


def test_the_listener_never_touches_a_persons_note_and_keeps_a_resolved_failure_readable() -> None:
    failed = "- validate_and_load failed: rejected"
    assert notes.next_note(None, False, ["validate_and_load failed: rejected"], succeeded=False) == failed
    assert notes.next_note("my own words", True, ["x failed: y"], succeeded=False) is None
    # cleared and retried: the retry kept no reason, so the failure stays, marked resolved, once
    resolved = notes.next_note(failed, False, [], succeeded=True)
    assert resolved == "Resolved (the run succeeded later): validate_and_load failed: rejected"
    assert notes.next_note(resolved, False, [], succeeded=True) is None
    # a later, different failure replaces what the listener wrote before
    assert notes.next_note(resolved, False, ["score failed: z"], succeeded=False) == "- score failed: z"


def test_the_run_note_lists_each_reason_once() -> None:
    assert notes.note_text([]) is None
    reasons = ["validate_and_load failed: rejected", "check x skipped: y", "validate_and_load failed: rejected"]
    assert notes.note_text(reasons) == "- check x skipped: y\n- validate_and_load failed: rejected"
    assert len(notes.note_text(["r" * 5000]) or "") == notes.NOTE_LIMIT
    assert notes.REASON_KEY == messages.REASON_KEY
