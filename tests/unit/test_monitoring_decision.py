"""The retrain decision: each suppression returns no request and records its reason."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from nightshift.monitoring.config import MonitoringConfig
from nightshift.monitoring.decision import (
    BACKFILL, COOLDOWN, RETRAIN_ACTIVE, STALE_DAY, Facts, Trigger, decide, suppressions,
)

DAY = date(2026, 3, 10)
CONFIG = MonitoringConfig(cooldown_days=7)
DRIFTED = [Trigger("drift_share", 0.4, 0.3, "2 of 5 features drifted (40% >= 30%): x3 (0.3), x4 (0.2)")]


@pytest.mark.parametrize(("facts", "reason", "words"), [
    (Facts("uc", DAY, backfill=True), BACKFILL, "backfill"),
    (Facts("uc", DAY, retrain_active=True), RETRAIN_ACTIVE, "queued or running"),
    (Facts("uc", DAY, last_trained_on=DAY - timedelta(days=6)), COOLDOWN, "7-day cooldown"),
    (Facts("uc", DAY, champion_trained_on=DAY + timedelta(days=1), last_trained_on=DAY - timedelta(days=30)),
     STALE_DAY, "older than the champion's training date"),
], ids=["backfill", "retrain_active", "cooldown", "older_than_champion"])
def test_each_suppression_returns_no_request_and_records_the_reason(facts: Facts, reason: str, words: str) -> None:
    decision = decide(DRIFTED, facts, CONFIG)
    assert not decision.requested and decision.decision == "suppressed"
    row = decision.row().iloc[0]
    assert row["suppressed_by"] == reason and words in row["suppression_detail"]
    assert row["reasons"] == DRIFTED[0].detail  # what would have triggered it stays on record
    assert decision.as_dict()["suppressed_by"] == [reason]


def test_without_suppression_the_request_carries_reasons_and_numbers() -> None:
    facts = Facts("uc", DAY, last_trained_on=DAY - timedelta(days=7), champion_trained_on=DAY - timedelta(days=7),
                  champion_version="4")
    decision = decide(DRIFTED, facts, CONFIG)
    assert decision.requested
    payload = decision.as_dict()
    assert payload["triggers"] == [{"rule": "drift_share", "value": 0.4, "threshold": 0.3,
                                    "detail": DRIFTED[0].detail}]
    assert payload["model_version"] == "4" and payload["suppressed_by"] == []
    assert decision.row()["decision"].item() == "requested"


def test_every_applicable_suppression_is_recorded_most_fundamental_first() -> None:
    facts = Facts("uc", DAY, backfill=True, retrain_active=True, last_trained_on=DAY)
    assert [name for name, _ in suppressions(facts, CONFIG)] == [BACKFILL, RETRAIN_ACTIVE, COOLDOWN]
    row = decide(DRIFTED, facts, CONFIG).row().iloc[0]
    assert row["suppressed_by"] == BACKFILL and "cooldown" in row["suppression_detail"]


def test_a_quiet_day_is_not_needed_even_during_a_backfill() -> None:
    decision = decide([], Facts("uc", DAY, backfill=True), CONFIG)
    assert decision.decision == "not_needed" and pd.isna(decision.row()["suppressed_by"].item())


def test_an_unanswered_request_suppresses_the_next_days_request() -> None:
    facts = Facts("uc", date(2026, 6, 2), request_pending=date(2026, 6, 1))
    decision = decide(DRIFTED, facts, CONFIG)
    assert decision.decision == "suppressed" and decision.row()["suppressed_by"].item() == "request_pending"
    assert "2026-06-01" in decision.row()["suppression_detail"].item()


def test_excluded_features_are_checked_against_critical_ones() -> None:
    from nightshift.monitoring.config import MonitoringConfigError, monitoring_config

    assert monitoring_config({"exclude_features": ["tenure"]}).exclude_features == ("tenure",)
    with pytest.raises(MonitoringConfigError, match=r"\['tenure'\] are both critical_features and exclude_features"):
        monitoring_config({"exclude_features": ["tenure"], "critical_features": ["tenure"]})
