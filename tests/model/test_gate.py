"""Model behaviour: the evaluation gate with real LightGBM models on a known generative story.

The story (``synthetic_training_set``): churn rises with support tickets and days since last
activity, falls with sessions, is higher on the basic plan; regions and channels do not matter.
Models are trained with ``nightshift.modeling.training`` exactly as the retrain DAG trains them; only the
data they see is sabotaged, never the gate.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from nightshift.modeling import evaluation, inputs, training
from nightshift.settings import PROJECT_ROOT
from nightshift.usecase import UseCase, load_use_case

DAYS = 28
CUSTOMERS = 700
FEATURES = [
    "sessions_7d", "sessions_28d", "minutes_7d", "minutes_28d", "spend_7d", "spend_28d",
    "support_tickets_7d", "support_tickets_28d", "active_days_7d", "active_days_28d", "plan_changes_28d",
    "days_since_last_activity", "plan", "region", "channel", "monthly_price", "tenure_days",
]


def synthetic_training_set(seed: int = 0) -> pd.DataFrame:
    """One row per customer per snapshot day with churn_v1's features and a label from a known logit."""
    rng = np.random.default_rng(seed)
    n = CUSTOMERS * DAYS
    days = np.repeat([date(2026, 1, 1) + timedelta(days=i) for i in range(DAYS)], CUSTOMERS)
    engagement = rng.normal(0, 1, n)
    tickets = rng.poisson(np.exp(-0.3 * engagement), n).astype(float)
    sessions = np.maximum(0, rng.normal(12 + 5 * engagement, 3, n)).round()
    idle = rng.exponential(np.exp(-engagement), n).round()
    plan = rng.choice(["basic", "standard", "premium"], n, p=[0.4, 0.4, 0.2])
    logit = -2.2 + 0.6 * tickets - 0.12 * (sessions - 12) + 0.25 * idle + 0.5 * (plan == "basic")
    frame = pd.DataFrame({
        "customer_id": np.tile(np.arange(1, CUSTOMERS + 1), DAYS),
        "event_timestamp": pd.to_datetime(days) + pd.Timedelta(days=1),
        training.AS_OF_DATE: days,
        "sessions_7d": sessions / 4, "sessions_28d": sessions,
        "minutes_7d": sessions * 6 / 4, "minutes_28d": sessions * 6,
        "spend_7d": rng.gamma(2, 5, n), "spend_28d": rng.gamma(4, 5, n),
        "support_tickets_7d": np.minimum(tickets, rng.poisson(0.5, n)), "support_tickets_28d": tickets,
        "active_days_7d": np.minimum(7, sessions / 3).round(), "active_days_28d": np.minimum(28, sessions).round(),
        "plan_changes_28d": rng.poisson(0.05, n).astype(float),
        "days_since_last_activity": idle,
        "plan": plan,
        "region": rng.choice(["north", "south", "east", "west"], n),
        "channel": rng.choice(["web", "mobile", "partner"], n),
        "monthly_price": rng.uniform(10, 40, n),
        "tenure_days": rng.integers(30, 900, n).astype(float),
    })
    frame[training.LABEL] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


@pytest.fixture(scope="module")
def use_case() -> UseCase:
    churn = load_use_case(PROJECT_ROOT / "config" / "churn.yaml")
    # a 2-day label horizon: 28 synthetic days then hold train, two purge gaps, validation and holdout
    return replace(churn, horizon_days=2, training={**churn.training, "num_boost_round": 300})


@pytest.fixture(scope="module")
def data(use_case: UseCase) -> pd.DataFrame:
    frame = synthetic_training_set()
    frame["split"] = training.assign_splits(frame, use_case).to_numpy()
    return frame[frame["split"] != "purged"].reset_index(drop=True)


def fit(data: pd.DataFrame, use_case: UseCase, features: list[str] = FEATURES, labels: pd.Series | None = None):
    frame = data if labels is None else data.assign(**{training.LABEL: labels})
    return training.train_model(frame, frame["split"], features, use_case)


def scorer(model, use_case: UseCase):
    return lambda frame: inputs.predict(model, frame, use_case.training["categorical"])


def judge(data: pd.DataFrame, use_case: UseCase, challenger, champion=None, gate: dict | None = None,
          task: str = "binary"):
    holdout = data[data["split"] == "holdout"]
    train = data[data["split"] != "holdout"]
    return evaluation.gate(
        holdout, holdout[training.LABEL].to_numpy(), scorer(challenger, use_case),
        None if champion is None else scorer(champion, use_case),
        evaluation.label_summary(train[training.LABEL]), gate or use_case.gate, use_case.key_columns,
        champion_version=None if champion is None else "1", task=task,
    )


def check(report: evaluation.GateReport, name: str) -> evaluation.Check:
    return next(c for c in report.checks if c.name == name)


@pytest.fixture(scope="module")
def good_model(data: pd.DataFrame, use_case: UseCase):
    return fit(data, use_case)


@pytest.fixture(scope="module")
def weak_model(data: pd.DataFrame, use_case: UseCase):
    """A champion that sees only plan and tenure: above chance, well below the full model."""
    return fit(data, use_case, ["plan", "tenure_days"])


def test_first_model_becomes_champion_on_the_floors_alone(data, use_case, good_model) -> None:
    report = judge(data, use_case, good_model)
    assert report.passed, report.reasons
    assert check(report, "floor.auc").value > 0.75
    assert check(report, "improvement.auc").detail == "no champion yet"
    assert {c.name for c in report.checks} >= {
        "data.min_rows", "data.label_rate", "floor.auc", "improvement.auc", "slices.auc", "calibration.brier",
        "behaviour.directional.support_tickets_28d", "behaviour.invariance.entity_id",
    }


def test_genuinely_better_challenger_passes_against_the_champion(data, use_case, good_model, weak_model) -> None:
    report = judge(data, use_case, good_model, weak_model)
    assert report.passed, report.reasons
    assert check(report, "improvement.auc").value > 0.05
    assert report.champion_metrics["overall"]["auc"] < report.challenger_metrics["overall"]["auc"]


def test_sabotaged_challenger_trained_on_shuffled_labels_fails(data, use_case, good_model) -> None:
    shuffled = pd.Series(np.random.default_rng(5).permutation(data[training.LABEL].to_numpy()), index=data.index)
    sabotaged = fit(data, use_case, labels=shuffled)

    report = judge(data, use_case, sabotaged, good_model)

    assert not report.passed
    failed = {c.name for c in report.checks if not c.passed}
    assert {"floor.auc", "improvement.auc"} <= failed
    assert any(r.startswith("floor.auc: holdout AUC") for r in report.reasons)


def test_challenger_that_wins_overall_but_collapses_on_a_slice_is_blocked(data, use_case, weak_model) -> None:
    # trained on data whose `north` labels say the opposite of everywhere else
    north = (data["region"] == "north") & (data["split"] != "holdout")
    flipped = data[training.LABEL].where(~north, 1 - data[training.LABEL])
    challenger = fit(data, use_case, labels=flipped)

    # floors and calibration relaxed so that the slice check alone stands between it and promotion
    report = judge(data, use_case, challenger, weak_model,
                   gate={**use_case.gate, "min_auc": 0.6, "calibration_tolerance": 1.0})

    assert check(report, "improvement.auc").passed, "premise: the challenger wins on overall AUC"
    slices = check(report, "slices.auc")
    assert not report.passed and [c.name for c in report.checks if not c.passed] == ["slices.auc"]
    assert "region=north" in slices.detail and "region=south" not in slices.detail
    assert report.reasons == [f"slices.auc: {slices.detail}"]


def test_directional_check_fails_a_model_where_more_tickets_mean_less_churn(data, use_case) -> None:
    inverted = data.assign(support_tickets_28d=data["support_tickets_28d"].max() - data["support_tickets_28d"])
    backwards = training.train_model(inverted, inverted["split"], FEATURES, use_case)

    report = judge(data, use_case, backwards)

    directional = check(report, "behaviour.directional.support_tickets_28d")
    assert not directional.passed and directional.value < 0


def test_invariance_check_catches_a_scorer_that_reads_the_entity_id(data, use_case, good_model) -> None:
    holdout = data[data["split"] == "holdout"]
    honest = evaluation.behaviour_checks(holdout, scorer(good_model, use_case), use_case.gate, ["customer_id"])
    leaky = evaluation.behaviour_checks(
        holdout, lambda frame: (frame["customer_id"].to_numpy() % 7) / 7.0, use_case.gate, ["customer_id"]
    )
    assert check(evaluation.GateReport(honest), "behaviour.invariance.entity_id").passed
    assert not check(evaluation.GateReport(leaky), "behaviour.invariance.entity_id").passed


@pytest.mark.parametrize(
    ("rows", "positives", "failing", "detail"),
    [
        (500, 50, "data.min_rows", "500 training rows, fewer than 1000"),
        (5000, 0, "data.label_rate", "(a single class)"),
        (5000, 5000, "data.label_rate", "(a single class)"),
    ],
    ids=["too_small", "no_positives", "all_positives"],
)
def test_data_checks_fail_with_a_clear_reason(use_case, rows, positives, failing, detail) -> None:
    checks = {c.name: c for c in evaluation.data_checks({"rows": rows, "positives": positives}, use_case.gate)}
    assert not checks[failing].passed and detail in checks[failing].detail


def test_gate_stops_at_data_checks_without_judging_a_model(data, use_case, good_model) -> None:
    report = judge(data, use_case, good_model, gate={**use_case.gate, "min_rows": 10**9})
    assert not report.passed and [c.name for c in report.checks] == ["data.min_rows", "data.label_rate"]


def test_report_renders_every_check(data, use_case, good_model, weak_model) -> None:
    report = judge(data, use_case, good_model, weak_model)
    markdown = report.to_markdown()
    assert markdown.startswith("# Gate: **PASSED**")
    assert all(f"| {c.name} |" in markdown for c in report.checks)
    as_dict = report.as_dict()
    assert as_dict["verdict"] == "passed" and len(as_dict["checks"]) == len(report.checks)


# --- regression: the same gate, with the task's metrics ---------------------------------------


@pytest.fixture(scope="module")
def regression() -> tuple[UseCase, pd.DataFrame]:
    """A regression use case (the shipped churn file turned into one) on a known linear target."""
    churn = load_use_case(PROJECT_ROOT / "config" / "churn.yaml")
    use_case = replace(churn, task="regression", horizon_days=2,
                       training={**churn.training, "num_boost_round": 200, "params": {"learning_rate": 0.1}},
                       gate={"min_rows": 1000, "max_rmse": 3.0, "min_improvement": 0.0, "slices": ["region"],
                             "slice_tolerance": 0.5, "bias_tolerance": 0.1, "min_slice_rows": 100,
                             "directional": [{"feature": "sessions_28d", "delta": 5, "direction": "up"}]})
    frame = synthetic_training_set(seed=4)
    frame[training.LABEL] = 2.0 + 0.5 * frame["sessions_28d"] + np.random.default_rng(1).normal(0, 1, len(frame))
    frame["split"] = training.assign_splits(frame, use_case).to_numpy()
    return use_case, frame[frame["split"] != "purged"].reset_index(drop=True)


def test_regression_gate_judges_rmse_mae_and_bias(regression) -> None:
    use_case, data = regression
    good = fit(data, use_case)
    report = judge(data, use_case, good, gate=use_case.gate, task="regression")
    names = [c.name for c in report.checks]
    assert names[:2] == ["data.min_rows", "data.label_variance"]
    assert {"floor.rmse", "improvement.rmse", "slices.rmse", "calibration.bias",
            "behaviour.directional.sessions_28d"} <= set(names)
    assert report.passed, report.reasons
    overall = report.challenger_metrics["overall"]
    assert overall["rmse"] < 1.5 and overall["mae"] < overall["rmse"] and abs(overall["bias"]) < 0.2


def test_regression_gate_fails_a_model_worse_than_its_champion_and_a_biased_one(regression) -> None:
    use_case, data = regression
    good, blind = fit(data, use_case), fit(data, use_case, ["plan", "tenure_days"])
    against = judge(data, use_case, blind, good, gate=use_case.gate, task="regression")
    assert not check(against, "improvement.rmse").passed and not check(against, "floor.rmse").passed
    biased = lambda frame: inputs.predict(good, frame, use_case.training["categorical"]) + 3.0  # noqa: E731
    holdout = data[data["split"] == "holdout"]
    report = evaluation.gate(holdout, holdout[training.LABEL].to_numpy(), biased, None,
                             evaluation.label_summary(data[training.LABEL]), use_case.gate, ["customer_id"], task="regression")
    assert not check(report, "calibration.bias").passed and "of the mean label" in check(report, "calibration.bias").detail


def test_a_constant_regression_label_fails_the_data_checks() -> None:
    checks = {c.name: c for c in evaluation.data_checks(evaluation.label_summary([3.0] * 2000), {}, "regression")}
    assert checks["data.min_rows"].passed and not checks["data.label_variance"].passed
