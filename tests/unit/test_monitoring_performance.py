"""Realized and estimated performance: CBPE for a binary model, DLE for a regression one (real
LightGBM), realized metrics from labels known by D, and the retrain rule they feed."""

from __future__ import annotations

from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from nightshift.monitoring.config import MonitoringConfig
from nightshift.monitoring.decision import Facts, decide, triggers
from nightshift.monitoring.drift import DRIFT_COLUMNS
from nightshift.monitoring.performance import (
    estimated_performance, expected_auc, realized_performance, reference_metrics,
)

DAY = date(2026, 3, 10)
FEATURES = ["x1", "x2", "x3"]
NO_DRIFT = pd.DataFrame(columns=DRIFT_COLUMNS)
PARAMS = {"learning_rate": 0.1, "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 0, "deterministic": True}


def _binary_frame(rng: np.random.Generator, n: int, spread: float = 1.0) -> pd.DataFrame:
    frame = pd.DataFrame({f: rng.normal(0.0, spread, n) for f in FEATURES})
    frame["label"] = rng.binomial(1, 1 / (1 + np.exp(-(2.0 * frame["x1"] + 1.0 * frame["x2"]))))
    return frame


@pytest.fixture(scope="module")
def binary_model() -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(0)
    train = _binary_frame(rng, 6000)
    model = lgb.train({**PARAMS, "objective": "binary"}, lgb.Dataset(train[FEATURES], train["label"]), 60)
    holdout = _binary_frame(rng, 3000)
    reference = pd.concat([train.assign(part="train", score=np.nan),
                           holdout.assign(part="holdout", score=model.predict(holdout[FEATURES]))], ignore_index=True)
    return model, reference


def test_expected_auc_matches_the_auc_of_labels_drawn_from_the_probabilities() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(1, 3, 4000)
    drawn = [roc_auc_score(rng.binomial(1, p), p) for _ in range(200)]
    assert expected_auc(p) == pytest.approx(np.mean(drawn), abs=0.005)
    assert expected_auc(np.full(100, 0.3)) == pytest.approx(0.5)  # all tied: a coin


def test_binary_estimated_auc_drops_under_a_harmful_covariate_shift_before_any_label(binary_model) -> None:
    model, reference = binary_model
    rng = np.random.default_rng(2)
    stable = _binary_frame(rng, 3000)
    # the population concentrates where the model cannot separate: same concept, lower AUC
    shifted = _binary_frame(rng, 3000, spread=0.25)
    baseline = reference_metrics(reference, "binary")["auc"]
    rows = {}
    for name, frame in (("stable", stable), ("shifted", shifted)):
        current = frame.drop(columns="label").assign(score=model.predict(frame[FEATURES]))
        rows[name] = estimated_performance(current, reference, "binary", FEATURES, [], use_case="uc", day=DAY,
                                           model_version="3")
        truth = roc_auc_score(frame["label"], current["score"])
        estimate = rows[name].set_index("metric").loc["auc", "value"]
        # the estimate tracks the AUC labels will show; under the shift it reads ~0.04 high, because
        # the model's coarse scores mix more uncertain rows per score level than on the holdout
        assert estimate == pytest.approx(truth, abs=0.05), name
    stable_auc = rows["stable"].set_index("metric").loc["auc"]
    assert stable_auc["reference_value"] == pytest.approx(baseline) and abs(stable_auc["change"]) < 0.03
    shifted_auc = rows["shifted"].set_index("metric").loc["auc"]
    assert shifted_auc["change"] < -0.1
    assert set(rows["shifted"]["metric"]) == {"auc", "brier"} and rows["shifted"]["kind"].eq("estimated").all()
    assert rows["shifted"]["labeled_rows"].eq(0).all()

    config = MonitoringConfig()
    assert triggers(NO_DRIFT, rows["stable"], config, "binary") == []
    decision = decide(triggers(NO_DRIFT, rows["shifted"], config, "binary"), Facts("uc", DAY), config)
    assert decision.requested and [t.rule for t in decision.triggers] == ["estimated_auc_drop"]
    assert "estimated auc of version 3" in decision.reasons[0] and "below the holdout's" in decision.reasons[0]


def _regression_frame(rng: np.random.Generator, n: int, noisy_share: float = 0.1) -> pd.DataFrame:
    frame = pd.DataFrame({f: rng.normal(0.0, 1.0, n) for f in FEATURES})
    frame["segment"] = np.where(rng.uniform(size=n) < noisy_share, "noisy", "quiet")
    noise = np.where(frame["segment"] == "noisy", 8.0, 1.0)
    frame["label"] = 20 + 5 * frame["x1"] + 2 * frame["x2"] + rng.normal(0.0, 1.0, n) * noise
    return frame


def test_regression_rows_use_regression_metrics_and_the_estimate_rises_with_the_noisy_segment() -> None:
    rng = np.random.default_rng(3)
    columns = [*FEATURES, "segment"]
    train = _regression_frame(rng, 6000)
    matrix = train[columns].astype({"segment": "category"})
    model = lgb.train({**PARAMS, "objective": "regression"}, lgb.Dataset(matrix, train["label"]), 80)

    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(score=model.predict(frame[columns].astype({"segment": "category"})))

    reference = pd.concat([train.assign(part="train", score=np.nan),
                           scored(_regression_frame(rng, 3000)).assign(part="holdout")], ignore_index=True)
    # covariate shift: many more rows from the segment the model predicts badly
    shifted = scored(_regression_frame(rng, 3000, noisy_share=0.6))
    rows = estimated_performance(shifted.drop(columns="label"), reference, "regression", columns, ["segment"],
                                 use_case="uc", day=DAY, model_version="1").set_index("metric")
    assert sorted(rows.index) == ["mae", "rmse"]
    truth = float(np.sqrt(np.mean((shifted["score"] - shifted["label"]) ** 2)))
    assert rows.loc["rmse", "value"] == pytest.approx(truth, rel=0.15)
    assert rows.loc["rmse", "value"] > 1.5 * rows.loc["rmse", "reference_value"]
    found = triggers(NO_DRIFT, rows.reset_index(), MonitoringConfig(), "regression")
    assert [t.rule for t in found] == ["estimated_rmse_increase"] and found[0].value > 0.5


def test_realized_metrics_count_only_labels_known_by_d_per_model_version(binary_model) -> None:
    model, reference = binary_model
    rng = np.random.default_rng(4)
    days = [DAY - timedelta(days=k) for k in range(1, 11)]
    parts = []
    for k, day in enumerate(days):
        frame = _binary_frame(rng, 300, spread=0.25 if k < 5 else 1.0)
        parts.append(frame.assign(entity_id=np.arange(300), scoring_date=day, model_version="2" if k < 5 else "1",
                                  score=model.predict(frame[FEATURES])))
    scored = pd.concat(parts, ignore_index=True)
    # labels land 3 days after their scoring day (05:00): by the end of D, D-1's and D-2's are not known
    labels = scored[["entity_id", "scoring_date", "label"]].rename(columns={"scoring_date": "as_of_date"})
    labels["label_known_at"] = pd.to_datetime(labels["as_of_date"]) + pd.Timedelta(days=3, hours=5)
    predictions = scored.drop(columns="label")
    rows = realized_performance(predictions, labels, reference, "binary", ["entity_id"], use_case="uc", day=DAY,
                                window_days=28)
    auc = rows[rows["metric"] == "auc"].set_index("model_version")
    # D-1 and D-2 have no label yet: the window ends on D-3, the latest day with labels
    assert auc.loc["2", "rows"] == auc.loc["2", "labeled_rows"] == 900 and auc.loc["2", "label_coverage"] == 1.0
    assert auc.loc["2", "last_scoring_date"] == DAY - timedelta(days=3)
    assert auc.loc["1", "labeled_rows"] == 1500 and auc.loc["1", "label_coverage"] == 1.0
    known = scored[(scored["model_version"] == "2") & (scored["scoring_date"] <= DAY - timedelta(days=3))]
    assert auc.loc["2", "value"] == pytest.approx(roc_auc_score(known["label"], known["score"]))
    assert auc.loc["2", "change"] < -0.1 and abs(auc.loc["1", "change"]) < 0.06
    assert set(rows["kind"]) == {"realized"}

    config = MonitoringConfig()
    found = triggers(NO_DRIFT, rows, config, "binary")
    assert [t.rule for t in found] == ["realized_auc_drop"] and "version 2 over 900 labeled rows" in found[0].detail
    assert triggers(NO_DRIFT, rows, MonitoringConfig(min_labeled_rows=901), "binary") == []
    # only the version that scored D is judged: an earlier champion's drop never retrains its successor
    assert triggers(NO_DRIFT, rows, config, "binary", version="1") == []
    assert [t.rule for t in triggers(NO_DRIFT, rows, config, "binary", version="2")] == ["realized_auc_drop"]
    # each version against the holdout it was judged on
    own = realized_performance(predictions, labels, reference, "binary", ["entity_id"], use_case="uc", day=DAY,
                               baselines={"2": {"auc": 0.5, "brier": 0.3}})
    own_auc = own[own["metric"] == "auc"].set_index("model_version")
    assert own_auc.loc["2", "reference_value"] == 0.5 and own_auc.loc["1", "reference_value"] == auc.loc["1", "reference_value"]
    assert triggers(NO_DRIFT, own, config, "binary", version="2") == []


def test_the_realized_window_ends_on_the_latest_labeled_day_and_is_empty_before_any_label(binary_model) -> None:
    model, reference = binary_model
    rng = np.random.default_rng(5)
    days = [DAY - timedelta(days=k) for k in range(1, 41)]
    scored = pd.concat([_binary_frame(rng, 50).assign(entity_id=np.arange(50), scoring_date=d, model_version="1")
                        for d in days], ignore_index=True)
    scored["score"] = model.predict(scored[FEATURES])
    labels = scored[["entity_id", "scoring_date", "label"]].rename(columns={"scoring_date": "as_of_date"})
    # a 30-day horizon: by the end of D only the days up to D-31 are labeled
    labels["label_known_at"] = pd.to_datetime(labels["as_of_date"]) + pd.Timedelta(days=31)
    predictions = scored.drop(columns="label")
    rows = realized_performance(predictions, labels, reference, "binary", ["entity_id"], use_case="uc", day=DAY,
                                window_days=7)
    auc = rows[rows["metric"] == "auc"].iloc[0]
    assert auc["last_scoring_date"] == DAY - timedelta(days=31) and auc["first_scoring_date"] == DAY - timedelta(days=37)
    assert auc["labeled_rows"] == auc["rows"] == 7 * 50 and auc["value"] == auc["value"]
    early = realized_performance(predictions, labels, reference, "binary", ["entity_id"], use_case="uc",
                                 day=DAY - timedelta(days=10), window_days=7)
    assert early["labeled_rows"].eq(0).all() and early["value"].isna().all() and len(early) == 2  # auc, brier
