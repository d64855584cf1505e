"""Which nights a monitor run covers, and the facts it reads from the warehouse: on a real
(embedded) warehouse with predictions and decisions written as the DAGs write them."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from nightshift.monitoring import RETRAIN_REQUESTS, partition
from nightshift.monitoring.config import MonitoringConfig
from nightshift.monitoring.decision import Decision
from nightshift.monitoring.run import DayNotScored, NothingToMonitor, days_to_monitor, pending_request, scored_day
from nightshift.settings import Settings
from nightshift.usecase import use_case_of
from nightshift.warehouse import PartitionWrite, Warehouse, predictions_table

SCORED, UNSCORED = date(2026, 5, 1), date(2026, 5, 2)


def _predictions(settings: Settings, day: date, run_id: str) -> None:
    rows = pd.DataFrame({"customer_id": pd.array([1, 2, 3], dtype="int64"), "score": [0.1, 0.5, 0.9],
                         "model_version": pd.array(["4"] * 3, dtype="string"),
                         "airflow_run_id": pd.array([run_id] * 3, dtype="string")})
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions(
        [PartitionWrite(predictions_table("churn"), {"scoring_date": day}, rows)])


def _decided(settings: Settings, day: date, decision: str) -> None:
    row = Decision("churn", day, decision).row().drop(columns=["use_case", "monitor_date"])
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions(
        [PartitionWrite(RETRAIN_REQUESTS, partition("churn", day), row)])


def test_a_night_without_predictions_fails_a_requested_run_and_skips_a_scheduled_one(settings: Settings) -> None:
    with pytest.raises(DayNotScored, match=r"no predictions for 2026-05-01 .* run the `score_churn` DAG"):
        days_to_monitor(settings, "churn", [SCORED], scheduled=False)  # not even the table exists yet
    _predictions(settings, SCORED, "manual__2026-05-02T01:00:00")
    assert days_to_monitor(settings, "churn", [UNSCORED, SCORED], scheduled=True) == [SCORED]
    with pytest.raises(DayNotScored, match=r"no predictions for 2026-05-02 in predictions.churn_daily"):
        days_to_monitor(settings, "churn", [SCORED, UNSCORED], scheduled=False)
    with pytest.raises(NothingToMonitor, match="not scored yet"):
        days_to_monitor(settings, "churn", [UNSCORED], scheduled=True)
    _decided(settings, SCORED, "not_needed")
    with pytest.raises(NothingToMonitor, match="already monitored"):
        days_to_monitor(settings, "churn", [SCORED], scheduled=True)
    assert days_to_monitor(settings, "churn", [SCORED], scheduled=False) == [SCORED]  # by hand: a rerun


def test_nights_scored_by_a_backfill_are_known_as_such(settings: Settings) -> None:
    _predictions(settings, SCORED, "backfill__2026-05-01T00:00:00+00:00")
    _predictions(settings, UNSCORED, "scheduled__2026-05-02T00:00:00+00:00")
    use_case = use_case_of(settings, "churn")
    assert scored_day(settings, use_case, SCORED).backfill
    nightly = scored_day(settings, use_case, UNSCORED)
    assert not nightly.backfill and nightly.model_version == "4" and len(nightly.rows) == 3


def test_a_request_is_pending_until_a_model_is_trained_after_it_within_the_cooldown(settings: Settings) -> None:
    use_case = use_case_of(settings, "churn")
    config = MonitoringConfig(cooldown_days=7)
    assert pending_request(settings, use_case, SCORED, None, config) is None  # no decision yet
    _decided(settings, SCORED, "requested")
    _decided(settings, UNSCORED, "suppressed")
    night = SCORED + timedelta(days=3)
    assert pending_request(settings, use_case, night, None, config) == SCORED
    assert pending_request(settings, use_case, night, SCORED, config) == SCORED  # trained before it: not an answer
    assert pending_request(settings, use_case, night, SCORED + timedelta(days=1), config) is None  # its drift retrain
    assert pending_request(settings, use_case, SCORED + timedelta(days=9), None, config) is None  # past the cooldown


def test_a_rerun_of_a_night_that_requested_a_retrain_keeps_the_request_and_asks_nothing_again(settings: Settings) -> None:
    from nightshift.monitoring.run import earlier_request, first_request

    assert earlier_request(settings, "churn", SCORED) is None  # nothing decided yet
    _decided(settings, SCORED, "not_needed")
    assert earlier_request(settings, "churn", SCORED) is None
    _decided(settings, SCORED, "requested")
    assert earlier_request(settings, "churn", SCORED)["decision"].item() == "requested"
    rerun = {"decision": "requested", "already_requested": True, "monitor_date": str(SCORED)}
    fresh = {"decision": "requested", "already_requested": False, "monitor_date": str(UNSCORED)}
    assert first_request([rerun]) is None and first_request([rerun, fresh]) is fresh


def test_a_misspelled_critical_feature_or_a_short_reference_fails_instead_of_switching_a_rule_off(settings: Settings) -> None:
    from nightshift.monitoring.config import MonitoringConfigError
    from nightshift.monitoring.drift import DriftInputError
    from nightshift.monitoring.run import check_features

    use_case = use_case_of(settings, "churn")
    features = ["sessions_7d", "tenure_days"]
    check_features(use_case, MonitoringConfig(critical_features=("sessions_7d",)), features, features, "3")
    with pytest.raises(MonitoringConfigError, match=r"churn.yaml: monitoring.critical_features names \['sesions_7d'\]"):
        check_features(use_case, MonitoringConfig(critical_features=("sesions_7d",)), features, features, "3")
    with pytest.raises(MonitoringConfigError, match=r"monitoring.exclude_features names \['tenure'\]"):
        check_features(use_case, MonitoringConfig(exclude_features=("tenure",)), features, features, "3")
    with pytest.raises(DriftInputError, match=r"reference sample of version 3 lacks feature\(s\) \['tenure_days'\]"):
        check_features(use_case, MonitoringConfig(), features, ["sessions_7d"], "3")
