"""The ``monitoring:`` block of ``config/<use case>.yaml``, read with its defaults and checked.

Every key is optional; an unknown key or a value of the wrong type fails here, naming the key
and the keys that exist, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


class MonitoringConfigError(ValueError):
    """The ``monitoring:`` block of a use case is malformed."""


@dataclass(frozen=True)
class MonitoringConfig:
    """Sampling, drift tests and retrain thresholds of one use case."""

    #: Rows of D's scoring population and of the reference compared: cost is bounded by this.
    sample_rows: int = 20_000
    #: Seed of both samples, so a rerun of D draws the same rows.
    seed: int = 42
    #: Evidently's per-column test for numerical / categorical features and the score
    #: (None: Evidently picks one by sample size: Wasserstein / Jensen-Shannon above 1,000 rows).
    num_method: str | None = None
    cat_method: str | None = None
    prediction_method: str | None = None
    #: The test's threshold (None: the test's own default, 0.1 for the distances).
    num_threshold: float | None = None
    cat_threshold: float | None = None
    prediction_threshold: float | None = None
    #: Request a retrain when at least this share of the model's features drifted.
    drift_share: float = 0.3
    #: Request a retrain when any of these features drifted, whatever the share.
    critical_features: tuple[str, ...] = field(default_factory=tuple)
    #: Features left out of the drift tests: ones that move by construction (a tenure grows a day a
    #: day), whose drift against a past holdout is no reason to retrain.
    exclude_features: tuple[str, ...] = field(default_factory=tuple)
    #: Request a retrain when the score distribution drifted.
    prediction_drift: bool = True
    #: binary: request when AUC (realized or estimated) is this far below the champion's holdout AUC.
    max_auc_drop: float = 0.05
    #: regression: request when RMSE (realized or estimated) exceeds the holdout's by this fraction.
    max_rmse_increase: float = 0.10
    #: Realized metrics judge only with at least this many labeled predictions.
    min_labeled_rows: int = 200
    #: Realized metrics cover this many scoring days, ending on the latest one whose labels are known by D.
    realized_window_days: int = 28
    #: No request within this many days after a model was trained.
    cooldown_days: int = 7


_TYPES: dict[str, type | tuple[type, ...]] = {
    "sample_rows": int, "seed": int, "num_method": str, "cat_method": str, "prediction_method": str,
    "num_threshold": (int, float), "cat_threshold": (int, float), "prediction_threshold": (int, float),
    "drift_share": (int, float), "critical_features": (list, tuple), "exclude_features": (list, tuple), "prediction_drift": bool,
    "max_auc_drop": (int, float), "max_rmse_increase": (int, float), "min_labeled_rows": int,
    "realized_window_days": int, "cooldown_days": int,
}


def monitoring_config(spec: dict[str, Any] | None, where: str = "monitoring") -> MonitoringConfig:
    """The settings in ``spec`` (a use case's ``raw.get("monitoring")``) over the defaults.

    Raises:
        MonitoringConfigError: an unknown key, a value of the wrong type, or a sample below 1,000 rows.
    """
    spec = dict(spec or {})
    known = {f.name for f in fields(MonitoringConfig)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise MonitoringConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    for key, value in spec.items():
        wanted = _TYPES[key]
        if value is not None and (not isinstance(value, wanted) or (isinstance(value, bool) and wanted is not bool)):
            raise MonitoringConfigError(f"{where}.{key}: {value!r} is not a {wanted}; fix the value in the use case file")
    for key in ("critical_features", "exclude_features"):
        if key in spec:
            spec[key] = tuple(str(f) for f in spec[key] or ())
    config = MonitoringConfig(**{k: v for k, v in spec.items() if v is not None or k.endswith(("method", "threshold"))})
    both = sorted(set(config.critical_features) & set(config.exclude_features))
    if both:
        raise MonitoringConfigError(f"{where}: {both} are both critical_features and exclude_features; keep one")
    if config.sample_rows < 1000:
        raise MonitoringConfigError(
            f"{where}.sample_rows: {config.sample_rows} is below 1,000; Evidently switches to p-value tests on small "
            "samples, which flag drift by sample size. Use at least 1,000 (default 20,000)"
        )
    return config
