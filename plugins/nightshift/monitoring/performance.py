"""Model performance of day D: realized once labels land, estimated before they do.

* **Realized**: the scored rows of the latest scoring days before D whose labels were known by D
  (``label_known_at`` <= D), per model version, with the task's metrics and the label coverage.
* **Estimated** (no label needed), so a drop shows within days instead of after the label horizon:
  - binary: confidence-based performance estimation (CBPE): the champion's scores are calibrated
    on its holdout (isotonic), and the AUC and Brier score expected if each row were positive with
    its calibrated probability are computed from D's scores alone;
  - regression: direct loss estimation (DLE): a small LightGBM model, fitted on the holdout's
    features and prediction, predicts each row's squared and absolute error; their means give
    the expected RMSE and MAE of D.

NannyML implements both, but does not resolve with the lock (it pins ``lightgbm<4.6``, older
releases ``jinja2<3.1``, ``rich<13`` and ``scipy<1.8``), so they are written here, small.
Every metric is compared with the champion's holdout value (computed from the reference's holdout
rows: the same rows, scores and metric code as the gate's). Pure functions; no MLflow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from nightshift.modeling import evaluation
from nightshift.modeling.inputs import model_input
from nightshift.monitoring.drift import PART, SCORE

if TYPE_CHECKING:
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    from sklearn.isotonic import IsotonicRegression

#: The metrics each task reports, the first being the one the retrain rule judges.
METRICS = {"binary": ("auc", "brier"), "regression": ("rmse", "mae")}
LABEL = "label"
PERFORMANCE_COLUMNS = [
    "use_case", "monitor_date", "model_version", "kind", "metric", "value", "reference_value", "change",
    "rows", "labeled_rows", "label_coverage", "first_scoring_date", "last_scoring_date",
]


def holdout_of(reference: pd.DataFrame) -> pd.DataFrame:
    """The reference's holdout rows: those with a score (and a label)."""
    scored = reference[SCORE].notna() & reference[LABEL].notna()
    if PART in reference:
        scored &= reference[PART] == "holdout"
    return reference[scored].reset_index(drop=True)


def reference_metrics(reference: pd.DataFrame, task: str) -> dict[str, float | None]:
    """The champion's holdout metrics of ``task``, from the reference's holdout rows."""
    holdout = holdout_of(reference)
    values = evaluation.metrics(holdout[LABEL].to_numpy(), holdout[SCORE].to_numpy(), task)
    return {name: values.get(name) for name in METRICS[task]}


# --- estimated: binary (CBPE) ------------------------------------------------------------------


def expected_auc(probabilities: np.ndarray, scores: np.ndarray | None = None) -> float | None:
    """The AUC expected when row i is positive with probability ``probabilities[i]``, ranked by ``scores``.

    Each ordered pair (i ranked above j) counts p_i (1 - p_j) towards the expected concordant
    pairs, normalised by the expected positive x negative pairs; ties count a half. O(n log n).
    """
    import numpy as np

    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    s = p if scores is None else np.asarray(scores, dtype=float)
    if len(p) < 2:
        return None
    order = np.argsort(s, kind="mergesort")
    p, s = p[order], s[order]
    # group ties: per distinct score, the positive and negative masses
    distinct, start = np.unique(s, return_index=True)
    pos = np.add.reduceat(p, start)
    neg = np.add.reduceat(1.0 - p, start)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # negative mass strictly below each group
    concordant = float(np.sum(pos * below) + 0.5 * np.sum(pos * neg - np.add.reduceat(p * (1.0 - p), start)))
    pairs = float(p.sum() * (1.0 - p).sum() - np.sum(p * (1.0 - p)))
    return concordant / pairs if pairs > 0 else None


@dataclass
class ConfidenceEstimator:
    """CBPE for a binary model: its scores calibrated on the holdout, then metrics expected from them."""

    calibrator: IsotonicRegression

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> ConfidenceEstimator:
        from sklearn.isotonic import IsotonicRegression

        calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        calibrator.fit(scores, labels)
        return cls(calibrator)

    def estimate(self, scores: np.ndarray) -> dict[str, float | None]:
        """Expected AUC and Brier score of ``scores`` (D's, unlabeled)."""
        import numpy as np

        scores = np.asarray(scores, dtype=float)
        p = self.calibrator.predict(scores)
        # E[(s - y)^2] with y ~ Bernoulli(p) is p - 2ps + s^2
        brier = float(np.mean(p - 2 * p * scores + scores**2)) if len(scores) else None
        return {"auc": expected_auc(p, scores), "brier": brier}


# --- estimated: regression (DLE) ---------------------------------------------------------------

_DLE_PARAMS = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20,
               "verbose": -1, "num_threads": 1, "deterministic": True, "force_row_wise": True}


@dataclass
class LossEstimator:
    """DLE for a regression model: per-row squared and absolute error predicted from features and prediction."""

    squared: lgb.Booster
    absolute: lgb.Booster
    features: list[str]
    categorical: list[str]

    @classmethod
    def fit(cls, holdout: pd.DataFrame, features: list[str], categorical: list[str], seed: int = 42,
            rounds: int = 100) -> LossEstimator:
        import lightgbm as lgb
        import numpy as np

        matrix = _loss_input(holdout, features, categorical)
        error = holdout[SCORE].to_numpy(dtype=float) - holdout[LABEL].to_numpy(dtype=float)
        params = {**_DLE_PARAMS, "seed": seed}
        boosters = [
            lgb.train(params, lgb.Dataset(matrix, target, categorical_feature=[c for c in categorical if c in features]),
                      num_boost_round=rounds)
            for target in (error**2, np.abs(error))
        ]
        return cls(boosters[0], boosters[1], list(features), list(categorical))

    def estimate(self, frame: pd.DataFrame) -> dict[str, float | None]:
        """Expected RMSE and MAE of ``frame``'s scores (D's, unlabeled)."""
        import numpy as np

        if not len(frame):
            return {"rmse": None, "mae": None}
        matrix = _loss_input(frame, self.features, self.categorical)
        squared = np.clip(self.squared.predict(matrix), 0.0, None)
        absolute = np.clip(self.absolute.predict(matrix), 0.0, None)
        return {"rmse": float(np.sqrt(squared.mean())), "mae": float(absolute.mean())}


def _loss_input(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    matrix = model_input(frame, features, [c for c in categorical if c in features])
    matrix["__prediction__"] = frame[SCORE].to_numpy(dtype=float)
    return matrix


# --- the rows ----------------------------------------------------------------------------------


def estimated_performance(
    current: pd.DataFrame, reference: pd.DataFrame, task: str, features: list[str], categorical: list[str], *,
    use_case: str, day: date, model_version: str, seed: int = 42,
) -> pd.DataFrame:
    """``monitoring.performance_daily`` rows (``kind = estimated``) for D's scored rows, without labels.

    Args:
        current: D's scored rows (a sample is enough): ``score``, and ``features`` for regression.
        reference: the champion's reference sample; its holdout rows fit the estimator.
    """
    holdout = holdout_of(reference)
    if task == "binary":
        estimate = ConfidenceEstimator.fit(holdout[SCORE].to_numpy(), holdout[LABEL].to_numpy()).estimate(
            current[SCORE].to_numpy())
    elif task == "regression":
        estimate = LossEstimator.fit(holdout, features, categorical, seed).estimate(current)
    else:
        raise ValueError(f"task {task!r} is not one of {sorted(METRICS)}")
    baseline = reference_metrics(reference, task)
    return _rows(estimate, baseline, use_case=use_case, day=day, model_version=model_version, kind="estimated",
                 rows=len(current), labeled=0, first=day, last=day)


def realized_performance(
    predictions: pd.DataFrame, labels: pd.DataFrame, reference: pd.DataFrame, task: str, keys: list[str], *,
    use_case: str, day: date, window_days: int = 28,
    baselines: dict[str, dict[str, float | None]] | None = None,
) -> pd.DataFrame:
    """``monitoring.performance_daily`` rows (``kind = realized``), one set per model version.

    The window is the ``window_days`` scoring days that end on the latest scoring day before D
    with a label known by the end of D: labels land a horizon after their day, so the days just
    before D have none yet and are left out (they are what the estimated rows are for).

    Args:
        predictions: scored rows: ``keys``, ``scoring_date``, ``score``, ``model_version``, of the
            days before D (a window plus the label horizon is enough).
        labels: the label model's rows: ``keys``, ``as_of_date``, ``label``, ``label_known_at``;
            only labels known by the end of D count.
        baselines: each model version's own holdout metrics (a version is compared with the
            holdout it was judged on); a version missing here is compared with ``reference``'s.

    Returns:
        No rows when nothing was scored before D; while no label has landed, the rows of the
        ``window_days`` days before D with ``value`` None and ``labeled_rows`` 0.
    """
    import pandas as pd

    scored = predictions.assign(scoring_date=pd.to_datetime(predictions["scoring_date"]).dt.date)
    scored = scored[scored["scoring_date"] < day]
    known = labels[pd.to_datetime(labels["label_known_at"]).dt.normalize() <= pd.Timestamp(day)]
    known = known.assign(scoring_date=pd.to_datetime(known["as_of_date"]).dt.date)[[*keys, "scoring_date", LABEL]]
    joined = scored.merge(known.drop_duplicates([*keys, "scoring_date"]), on=[*keys, "scoring_date"], how="left")
    labeled_days = joined.loc[joined[LABEL].notna(), "scoring_date"]
    last = max(labeled_days) if len(labeled_days) else day - timedelta(days=1)
    joined = joined[(joined["scoring_date"] <= last) & (joined["scoring_date"] > last - timedelta(days=window_days))]
    baseline = reference_metrics(reference, task)
    out = []
    for version, rows in joined.groupby(joined["model_version"].astype(str), sort=True):
        labeled = rows[rows[LABEL].notna()]
        values = evaluation.metrics(labeled[LABEL].to_numpy(), labeled[SCORE].to_numpy(), task) if len(labeled) else {}
        own = (baselines or {}).get(version, baseline)
        out.append(_rows(values, own, use_case=use_case, day=day, model_version=version, kind="realized",
                         rows=len(rows), labeled=len(labeled), first=min(rows["scoring_date"]),
                         last=max(rows["scoring_date"])))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=PERFORMANCE_COLUMNS)


def _rows(values: dict[str, Any], baseline: dict[str, float | None], *, use_case: str, day: date, model_version: str,
          kind: str, rows: int, labeled: int, first: date, last: date) -> pd.DataFrame:
    import pandas as pd

    out = []
    for metric, reference_value in baseline.items():
        value = values.get(metric)
        out.append({
            "use_case": use_case, "monitor_date": day, "model_version": str(model_version), "kind": kind,
            "metric": metric, "value": value, "reference_value": reference_value,
            "change": None if value is None or reference_value is None else float(value - reference_value),
            "rows": int(rows), "labeled_rows": int(labeled), "label_coverage": labeled / rows if rows else 0.0,
            "first_scoring_date": first, "last_scoring_date": last,
        })
    import pyarrow as pa

    return pd.DataFrame(out, columns=PERFORMANCE_COLUMNS).astype({
        "value": "float64", "reference_value": "float64", "change": "float64",
        "first_scoring_date": pd.ArrowDtype(pa.date32()), "last_scoring_date": pd.ArrowDtype(pa.date32()),
    })
