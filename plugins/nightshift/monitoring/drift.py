"""Feature and prediction drift of day D against the champion's reference, with Evidently 0.7.

Both sides are sampled to ``sample_rows`` with a seed before Evidently sees them, so the cost is
bounded whatever the population's size (Evidently on 1M rows x 30 features takes minutes). The
reference of both is the champion's holdout (logged by the retrain in its reference sample with
the holdout's scores), topped up with training rows when it is small. One Evidently ``Report`` holds both
(``DataDriftPreset`` over the model's features, ``ValueDrift`` over the score), so one HTML
report shows them; its per-column results become the ``monitoring.drift_daily`` rows.

Pure functions of frames: no warehouse, MLflow or Airflow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.monitoring import PREDICTION
from nightshift.monitoring.config import MonitoringConfig

if TYPE_CHECKING:
    import pandas as pd

#: The column of the reference (and of D's scored rows) that holds the model's score.
SCORE = "score"
#: The column of the reference that says which split a row came from (``train`` or ``holdout``).
PART = "part"
#: The holdout is topped up with training rows to this many reference rows (Evidently's own
#: threshold between p-value tests and distances).
MIN_REFERENCE_ROWS = 1_000
DRIFT_COLUMNS = [
    "use_case", "monitor_date", "column_name", "kind", "test", "statistic", "p_value", "distance", "threshold",
    "drifted", "reference_rows", "current_rows", "current_population", "sampled",
]


class DriftInputError(ValueError):
    """D's rows or the reference lack a column the drift report needs."""


@dataclass
class DriftResult:
    """The Evidently snapshot and its per-column rows (``monitoring.drift_daily``)."""

    rows: pd.DataFrame
    snapshot: Any

    def save_html(self, path: Path) -> Path:
        """Write the report as one self-contained HTML file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshot.save_html(str(path))
        return path

    @property
    def features(self) -> pd.DataFrame:
        """The feature rows (without the score's)."""
        return self.rows[self.rows["kind"] == "feature"]

    @property
    def prediction(self) -> pd.DataFrame:
        """The score's row."""
        return self.rows[self.rows["kind"] == PREDICTION]


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with ``seed`` (all of them when it is smaller)."""
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def reference_sample(reference: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` reference rows: the holdout's (which carry the scores), topped up with
    training rows only when the holdout has fewer than :data:`MIN_REFERENCE_ROWS`.

    The holdout is the most recent period the champion was judged on, so "drift" means a change
    since then; training rows span the whole training window, and a feature that trends slowly
    (tenure, a running count) would look drifted against them on a perfectly stable day.
    """
    import pandas as pd

    scored = reference[SCORE].notna() if SCORE in reference else pd.Series(False, index=reference.index)
    holdout = sample(reference[scored], rows, seed)
    wanted = min(rows, MIN_REFERENCE_ROWS) - len(holdout)
    if wanted <= 0:
        return holdout
    return pd.concat([holdout, sample(reference[~scored], wanted, seed)], ignore_index=True)


def drift_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    config: MonitoringConfig,
    *,
    use_case: str,
    day: date,
    current_population: int | None = None,
) -> DriftResult:
    """Evidently's drift of D's features and scores against the reference, on bounded samples.

    Args:
        current: D's scored rows: ``features`` and ``score`` (any number of rows; sampled here).
        reference: the champion's reference sample (``reference/reference.parquet`` of its run):
            ``features``, and ``score`` on the holdout rows.
        features: the model's features, in order.
        categorical: which of them are categorical.
        current_population: D's population size when ``current`` is already a sample of it.

    Raises:
        DriftInputError: a feature or the score is missing on either side, or a feature is
            called ``prediction``.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    _check_columns(current, reference, features)
    population = len(current) if current_population is None else current_population
    cur = _typed(sample(current, config.sample_rows, config.seed), features, categorical)
    ref = _typed(reference_sample(reference, config.sample_rows, config.seed), features, categorical)
    numerical = [f for f in features if f not in categorical]
    definition = DataDefinition(numerical_columns=[*numerical, PREDICTION],
                                categorical_columns=[f for f in features if f in categorical])
    report = Report([
        DataDriftPreset(columns=list(features), num_method=config.num_method, cat_method=config.cat_method,
                        num_threshold=config.num_threshold, cat_threshold=config.cat_threshold),
        ValueDrift(column=PREDICTION, method=config.prediction_method, threshold=config.prediction_threshold),
    ], include_tests=True)
    snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                          Dataset.from_pandas(ref, data_definition=definition))
    rows = drift_rows(snapshot.dict(), cur, ref, use_case=use_case, day=day, current_population=population)
    return DriftResult(rows=rows, snapshot=snapshot)


def _check_columns(current: pd.DataFrame, reference: pd.DataFrame, features: list[str]) -> None:
    if PREDICTION in features:
        raise DriftInputError(f"a feature is called {PREDICTION!r}, the name drift rows give the score; rename it")
    for side, frame in (("D's scored rows", current), ("the reference sample", reference)):
        missing = [c for c in [*features, SCORE] if c not in frame.columns]
        if missing:
            raise DriftInputError(
                f"{side} lack column(s) {missing}; D's rows need the model's features and `score`, the reference "
                "is the champion run's reference/reference.parquet (retrain it if the run predates the reference)"
            )


def _typed(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """The features (numerical as float, categorical as text) and the score as ``prediction``."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for column in features:
        if column in categorical:
            out[column] = frame[column].astype("string").astype(object).where(frame[column].notna(), None)
        else:
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    out[PREDICTION] = pd.to_numeric(frame[SCORE], errors="coerce").astype("float64")
    return out


def drift_rows(
    report: dict[str, Any], current: pd.DataFrame, reference: pd.DataFrame, *, use_case: str, day: date,
    current_population: int,
) -> pd.DataFrame:
    """The ``ValueDrift`` results of an Evidently snapshot (``snapshot.dict()``) as drift rows.

    A test's ``drifted`` is Evidently's own verdict (its test status); the value is a p-value
    when the method is a test (``… p_value``: drift below the threshold), else a distance
    (drift at or above it).
    """
    import pandas as pd

    failed = {t["metric_config"]["metric_id"]: t["status"] == "FAIL" for t in report.get("tests", [])}
    rows = []
    for metric in report["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        column, method, value = config["column"], str(config.get("method")), float(metric["value"])
        is_p_value = "p_value" in method
        rows.append({
            "use_case": use_case,
            "monitor_date": day,
            "column_name": column,
            "kind": PREDICTION if column == PREDICTION else "feature",
            "test": method,
            "statistic": value,
            "p_value": value if is_p_value else None,
            "distance": None if is_p_value else value,
            "threshold": float(config["threshold"]),
            "drifted": bool(failed[metric["id"]]),
            "reference_rows": int(reference[column].notna().sum()),
            "current_rows": int(current[column].notna().sum()),
            "current_population": int(current_population),
            "sampled": bool(current_population > len(current)),
        })
    frame = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    return frame.astype({"p_value": "float64", "distance": "float64"})
