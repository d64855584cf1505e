"""Whether day D's monitoring asks for a retrain: the thresholds, then the reasons not to.

:func:`triggers` turns the drift and performance rows into the rules they break, each with its
numbers; :func:`decide` turns those and the facts about the use case's models and runs into one
decision. A request is suppressed, and the reason recorded, when: D's predictions came from a
backfill; D is older than the champion's training date; a retrain is queued or running; an
earlier request has not been answered by a retrain yet (debounce); a model was trained within
the cooldown. Pure functions of their arguments: whoever calls them looks the
facts up (Airflow for the runs, MLflow for the models).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from nightshift.monitoring import PREDICTION
from nightshift.monitoring.config import MonitoringConfig

if TYPE_CHECKING:
    import pandas as pd

REQUESTED, SUPPRESSED, NOT_NEEDED = "requested", "suppressed", "not_needed"
BACKFILL, STALE_DAY, RETRAIN_ACTIVE, COOLDOWN = "backfill", "older_than_champion", "retrain_active", "cooldown"
REQUEST_PENDING = "request_pending"
REQUEST_COLUMNS = [
    "use_case", "monitor_date", "decision", "suppressed_by", "suppression_detail", "reasons", "triggers",
    "model_version", "decided_at",
]


@dataclass(frozen=True)
class Trigger:
    """One broken rule, with its numbers."""

    rule: str
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class Facts:
    """What the decision needs to know beyond the day's rows."""

    use_case: str
    day: date
    #: D's predictions came from a backfill (a run of a past day), not the nightly run.
    backfill: bool = False
    #: A retrain of the use case is queued or running.
    retrain_active: bool = False
    #: The day of an earlier request that no retrain has answered yet (its retrain may not have started).
    request_pending: date | None = None
    #: When the use case's latest model was trained (its run date), whether or not it was promoted.
    last_trained_on: date | None = None
    #: The training (run) date of the current champion.
    champion_trained_on: date | None = None
    champion_version: str | None = None


@dataclass
class Decision:
    """The outcome for (use case, D): a request with its reasons, or why there is none."""

    use_case: str
    day: date
    decision: str
    triggers: list[Trigger] = field(default_factory=list)
    #: Every suppression that applied, first the one named in ``suppressed_by``.
    suppressions: list[tuple[str, str]] = field(default_factory=list)
    model_version: str | None = None

    @property
    def requested(self) -> bool:
        return self.decision == REQUESTED

    @property
    def reasons(self) -> list[str]:
        """One sentence per broken rule."""
        return [t.detail for t in self.triggers]

    def as_dict(self) -> dict[str, Any]:
        """What the retrain request carries (the Asset event's extra) and what the audit row holds."""
        return {
            "use_case": self.use_case, "monitor_date": self.day.isoformat(), "decision": self.decision,
            "reasons": self.reasons, "triggers": [asdict(t) for t in self.triggers],
            "suppressed_by": [name for name, _ in self.suppressions], "model_version": self.model_version,
        }

    def row(self) -> pd.DataFrame:
        """The ``monitoring.retrain_requests`` row of this decision."""
        import pandas as pd

        return pd.DataFrame([{
            "use_case": self.use_case,
            "monitor_date": self.day,
            "decision": self.decision,
            "suppressed_by": self.suppressions[0][0] if self.suppressions else None,
            "suppression_detail": "; ".join(detail for _, detail in self.suppressions) or None,
            "reasons": "; ".join(self.reasons) or None,
            "triggers": json.dumps([asdict(t) for t in self.triggers]),
            "model_version": self.model_version,
            "decided_at": pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None),
        }], columns=REQUEST_COLUMNS)


def triggers(drift: pd.DataFrame, performance: pd.DataFrame, config: MonitoringConfig, task: str,
             version: str | None = None) -> list[Trigger]:
    """The rules D's rows break: drifted share, critical features, prediction drift, a performance drop.

    Args:
        drift: D's ``monitoring.drift_daily`` rows.
        performance: D's ``monitoring.performance_daily`` rows (estimated and realized); realized
            rows judge only with ``min_labeled_rows`` labels.
        version: judge only this model version's performance rows (the one that scored D): an
            earlier champion's realized metrics are shown, never a reason to retrain its successor.
    """
    found = []
    features = drift[drift["kind"] == "feature"]
    drifted = features[features["drifted"].astype(bool)]
    if len(features):
        share = len(drifted) / len(features)
        if share >= config.drift_share and len(drifted):
            found.append(Trigger("drift_share", share, config.drift_share,
                                 f"{len(drifted)} of {len(features)} features drifted ({share:.0%} >= "
                                 f"{config.drift_share:.0%}): {_named(drifted)}"))
    for _, row in drifted[drifted["column_name"].isin(config.critical_features)].iterrows():
        found.append(Trigger(f"critical_feature:{row['column_name']}", float(row["statistic"]), float(row["threshold"]),
                             f"critical feature {row['column_name']} drifted: {row['test']} {row['statistic']:.4g} "
                             f"(threshold {row['threshold']:.4g})"))
    score = drift[(drift["kind"] == PREDICTION) & drift["drifted"].astype(bool)]
    if config.prediction_drift and len(score):
        row = score.iloc[0]
        found.append(Trigger("prediction_drift", float(row["statistic"]), float(row["threshold"]),
                             f"the score distribution drifted: {row['test']} {row['statistic']:.4g} "
                             f"(threshold {row['threshold']:.4g})"))
    if version is not None:
        performance = performance[performance["model_version"].astype(str) == str(version)]
    found += _performance_triggers(performance, config, task)
    return found


def _named(rows: pd.DataFrame) -> str:
    return ", ".join(f"{r['column_name']} ({r['statistic']:.3g})" for _, r in rows.iterrows())


def _performance_triggers(performance: pd.DataFrame, config: MonitoringConfig, task: str) -> list[Trigger]:
    metric = "auc" if task == "binary" else "rmse"
    found = []
    for _, row in performance[performance["metric"] == metric].iterrows():
        if row["value"] is None or row["reference_value"] is None or row["value"] != row["value"]:
            continue
        if row["kind"] == "realized" and row["labeled_rows"] < config.min_labeled_rows:
            continue
        where = (f"{row['kind']} {metric} of version {row['model_version']}"
                 + (f" over {row['labeled_rows']} labeled rows" if row["kind"] == "realized" else ""))
        if task == "binary":
            drop = float(row["reference_value"] - row["value"])
            if drop >= config.max_auc_drop:
                found.append(Trigger(f"{row['kind']}_auc_drop", drop, config.max_auc_drop,
                                     f"{where} is {row['value']:.4f}, {drop:.4f} below the holdout's "
                                     f"{row['reference_value']:.4f} (limit {config.max_auc_drop})"))
        else:
            increase = float(row["value"] / row["reference_value"] - 1.0) if row["reference_value"] else 0.0
            if increase >= config.max_rmse_increase:
                found.append(Trigger(f"{row['kind']}_rmse_increase", increase, config.max_rmse_increase,
                                     f"{where} is {row['value']:.4g}, {increase:.1%} above the holdout's "
                                     f"{row['reference_value']:.4g} (limit {config.max_rmse_increase:.0%})"))
    return found


def suppressions(facts: Facts, config: MonitoringConfig) -> list[tuple[str, str]]:
    """Every reason not to request a retrain for D, as (name, sentence), most fundamental first."""
    found = []
    if facts.backfill:
        found.append((BACKFILL, f"D={facts.day} was scored by a backfill: drift of a past day never retrains"))
    if facts.champion_trained_on is not None and facts.day < facts.champion_trained_on:
        found.append((STALE_DAY, f"D={facts.day} is older than the champion's training date "
                                 f"{facts.champion_trained_on}: the champion already saw that period"))
    if facts.retrain_active:
        found.append((RETRAIN_ACTIVE, f"a retrain of {facts.use_case} is queued or running"))
    if facts.request_pending is not None:
        found.append((REQUEST_PENDING, f"a retrain was already requested for D={facts.request_pending} and no model "
                                       "has been trained since: one request per drift episode"))
    if facts.last_trained_on is not None and (facts.day - facts.last_trained_on).days < config.cooldown_days:
        found.append((COOLDOWN, f"a model was trained on {facts.last_trained_on}, within the {config.cooldown_days}-"
                                f"day cooldown before D={facts.day}"))
    return found


def decide(found: list[Trigger], facts: Facts, config: MonitoringConfig) -> Decision:
    """A request when a rule is broken and nothing suppresses it; else why not.

    Suppressions are recorded only when there was something to suppress: a quiet day is
    ``not_needed`` whatever the facts.
    """
    if not found:
        return Decision(facts.use_case, facts.day, NOT_NEEDED, model_version=facts.champion_version)
    held = suppressions(facts, config)
    return Decision(facts.use_case, facts.day, SUPPRESSED if held else REQUESTED, list(found), held,
                    facts.champion_version)
