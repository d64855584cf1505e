"""Drift of day D against the champion's reference: real Evidently on small synthetic frames, and
the decision the drift rows lead to."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from nightshift.monitoring.config import MonitoringConfig, MonitoringConfigError, monitoring_config
from nightshift.monitoring.decision import Facts, decide, triggers
from nightshift.monitoring.drift import DriftInputError, drift_report, reference_sample, sample
from nightshift.monitoring.performance import PERFORMANCE_COLUMNS
from nightshift.monitoring.reports import store_report

DAY = date(2026, 3, 10)
FEATURES = ["x1", "x2", "x3", "x4", "kind"]
CATEGORICAL = ["kind"]
NO_PERFORMANCE = pd.DataFrame(columns=PERFORMANCE_COLUMNS)


def _features(rng: np.random.Generator, n: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    shift = shift or {}
    frame = pd.DataFrame({f"x{i}": rng.normal(shift.get(f"x{i}", 0.0), 1.0, n) for i in range(1, 5)})
    frame["kind"] = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    # the score follows x1, so shifting x1 shifts the scores
    frame["score"] = 1 / (1 + np.exp(-(1.5 * frame["x1"] + 0.5 * frame["x2"])))
    return frame


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    train = _features(rng, 3000).assign(part="train", score=np.nan)
    holdout = _features(rng, 2000).assign(part="holdout")
    return pd.concat([train, holdout], ignore_index=True)


def _report(current: pd.DataFrame, reference: pd.DataFrame, config: MonitoringConfig | None = None):
    return drift_report(current, reference, FEATURES, CATEGORICAL, config or MonitoringConfig(),
                        use_case="uc", day=DAY)


def test_stable_data_flags_nothing_and_needs_no_retrain(reference: pd.DataFrame) -> None:
    result = _report(_features(np.random.default_rng(2), 3000), reference)
    rows = result.rows
    assert sorted(rows["column_name"]) == sorted([*FEATURES, "prediction"])
    assert not rows["drifted"].any(), rows[["column_name", "test", "statistic", "threshold"]]
    assert set(rows["test"]) == {"Wasserstein distance (normed)", "Jensen-Shannon distance"}
    assert rows["distance"].notna().all() and rows["p_value"].isna().all()
    prediction = result.prediction.iloc[0]
    assert prediction["reference_rows"] == 2000  # the holdout's scores, not the training rows' NaNs
    # the features' reference is the holdout too: training rows span older days
    assert result.features["reference_rows"].eq(2000).all()
    config = MonitoringConfig()
    decision = decide(triggers(rows, NO_PERFORMANCE, config, "binary"), Facts("uc", DAY), config)
    assert decision.decision == "not_needed" and decision.row()["decision"].item() == "not_needed"


def test_a_small_holdout_is_topped_up_with_training_rows_to_1000(reference: pd.DataFrame) -> None:
    small = pd.concat([reference[reference["part"] == "train"], reference[reference["part"] == "holdout"].head(400)])
    chosen = reference_sample(small, 20_000, 42)
    assert len(chosen) == 1000 and chosen["score"].notna().sum() == 400
    assert len(reference_sample(reference, 20_000, 42)) == 2000  # a big enough holdout is used alone
    assert len(reference_sample(reference, 500, 42)) == 500  # and sampled down to sample_rows


def test_a_shifted_feature_is_flagged_and_requests_a_retrain_with_its_numbers(reference: pd.DataFrame) -> None:
    config = MonitoringConfig(drift_share=0.2)
    rows = _report(_features(np.random.default_rng(3), 3000, {"x3": 1.0}), reference, config).rows
    assert rows.loc[rows["drifted"], "column_name"].tolist() == ["x3"]
    x3 = rows.set_index("column_name").loc["x3"]
    assert x3["distance"] > x3["threshold"] == 0.1
    decision = decide(triggers(rows, NO_PERFORMANCE, config, "binary"), Facts("uc", DAY), config)
    assert decision.requested
    assert [t.rule for t in decision.triggers] == ["drift_share"]
    assert decision.triggers[0].value == pytest.approx(0.2) and decision.triggers[0].threshold == 0.2
    assert "1 of 5 features drifted" in decision.reasons[0] and "x3 (" in decision.reasons[0]
    request = decision.row().iloc[0]
    assert request["decision"] == "requested" and "x3" in request["reasons"] and request["suppressed_by"] is None


def test_a_critical_feature_requests_a_retrain_below_the_drift_share(reference: pd.DataFrame) -> None:
    current = _features(np.random.default_rng(4), 3000, {"x4": 1.0})
    rows = _report(current, reference).rows
    plain = MonitoringConfig(drift_share=0.5)
    assert decide(triggers(rows, NO_PERFORMANCE, plain, "binary"), Facts("uc", DAY), plain).decision == "not_needed"
    critical = MonitoringConfig(drift_share=0.5, critical_features=("x4",))
    decision = decide(triggers(rows, NO_PERFORMANCE, critical, "binary"), Facts("uc", DAY), critical)
    assert decision.requested and [t.rule for t in decision.triggers] == ["critical_feature:x4"]
    assert "critical feature x4 drifted: Wasserstein distance (normed)" in decision.reasons[0]


def test_prediction_drift_is_its_own_row_and_rule(reference: pd.DataFrame) -> None:
    rows = _report(_features(np.random.default_rng(5), 3000, {"x1": 0.8}), reference).rows
    prediction = rows[rows["kind"] == "prediction"].iloc[0]
    assert prediction["column_name"] == "prediction" and prediction["drifted"]
    config = MonitoringConfig(drift_share=0.9)
    assert [t.rule for t in triggers(rows, NO_PERFORMANCE, config, "binary")] == ["prediction_drift"]
    off = MonitoringConfig(drift_share=0.9, prediction_drift=False)
    assert triggers(rows, NO_PERFORMANCE, off, "binary") == []


def test_current_and_reference_are_sampled_so_cost_is_bounded(reference: pd.DataFrame) -> None:
    config = MonitoringConfig(sample_rows=1500, seed=7)
    current = _features(np.random.default_rng(6), 40_000)
    rows = _report(current, reference, config).rows
    assert rows["current_rows"].eq(1500).all() and rows["current_population"].eq(40_000).all()
    assert rows["sampled"].all()
    assert rows["reference_rows"].eq(1500).all()  # holdout rows first: the score's reference stays full
    again = _report(current, reference, config).rows
    pd.testing.assert_frame_equal(rows, again)  # a rerun of D draws the same rows
    assert sample(current, 1500, 7).equals(sample(current, 1500, 7))


def test_the_html_report_is_written_and_stored(reference: pd.DataFrame, tmp_path) -> None:
    result = _report(_features(np.random.default_rng(8), 2000), reference)
    html = result.save_html(tmp_path / "report.html")
    uri = store_report(str(tmp_path / "artifacts"), "uc", DAY, html)
    assert uri.endswith("monitoring/uc/2026-03-10/drift_report.html")
    text = open(uri).read()
    assert "<html" in text.lower() and "x3" in text


def test_missing_columns_and_a_feature_called_prediction_are_refused(reference: pd.DataFrame) -> None:
    current = _features(np.random.default_rng(9), 1000)
    with pytest.raises(DriftInputError, match=r"lack column\(s\) \['x4'\]"):
        _report(current.drop(columns="x4"), reference)
    with pytest.raises(DriftInputError, match="called 'prediction'"):
        drift_report(current.rename(columns={"x1": "prediction"}), reference, ["prediction"], [],
                     MonitoringConfig(), use_case="uc", day=DAY)


def test_config_reads_defaults_and_refuses_unknown_keys() -> None:
    assert monitoring_config({}) == MonitoringConfig()
    config = monitoring_config({"sample_rows": 5000, "critical_features": ["a"], "num_threshold": 0.2})
    assert config.sample_rows == 5000 and config.critical_features == ("a",) and config.num_threshold == 0.2
    with pytest.raises(MonitoringConfigError, match=r"unknown key\(s\) \['sample_size'\]"):
        monitoring_config({"sample_size": 10})
    with pytest.raises(MonitoringConfigError, match="drift_share"):
        monitoring_config({"drift_share": "high"})
    with pytest.raises(MonitoringConfigError, match="below 1,000"):
        monitoring_config({"sample_rows": 50})
