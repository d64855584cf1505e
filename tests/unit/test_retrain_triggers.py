"""What started a retrain, and what a drift request makes it do: pure functions, no MLflow."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from nightshift.modeling import retrain


def _event(extra: dict) -> SimpleNamespace:
    return SimpleNamespace(extra=extra)


def test_the_run_type_names_the_trigger() -> None:
    assert retrain.trigger_of("scheduled") == "schedule"
    assert retrain.trigger_of("asset_triggered") == "drift"
    assert retrain.trigger_of("manual") == retrain.trigger_of(None) == "manual"


def test_a_drift_request_trains_up_to_its_day_and_keeps_every_reason() -> None:
    events = {"retrain-request/churn": [
        _event({"use_case": "churn", "monitor_date": "2026-06-30", "reasons": ["critical feature sessions_7d drifted"]}),
        _event({"use_case": "churn", "monitor_date": "2026-07-02", "reasons": ["the score distribution drifted"]}),
    ]}
    request = retrain.drift_request_of(events)
    assert request["monitor_date"] == "2026-07-02" and request["requested_days"] == ["2026-06-30", "2026-07-02"]
    assert retrain.drift_run_date(request) == date(2026, 7, 3)  # knows through the end of the latest requested day
    assert retrain.reasons_text(request) == ("2026-06-30: critical feature sessions_7d drifted; "
                                             "2026-07-02: the score distribution drifted")


def test_no_request_without_events_or_a_day() -> None:
    assert retrain.drift_request_of(None) is None
    assert retrain.drift_request_of({"retrain-request/churn": [_event({})]}) is None
    assert retrain.reasons_text(None) == ""
