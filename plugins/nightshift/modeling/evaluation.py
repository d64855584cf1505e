"""The evaluation gate: challenger and champion judged on the same holdout, check by check.

Every check has a value, a threshold and a verdict, so a report says exactly why a model was or
was not promoted. Checks (thresholds from the use case's ``gate:``):

* data: training-set rows and label rate within bounds (a tiny or single-class set fails here);
* floor: the challenger's holdout AUC;
* improvement: challenger AUC minus champion AUC;
* slices: no slice (per ``gate.slices`` column and value, with enough rows) whose AUC is below
  the champion's by more than the tolerance;
* calibration: challenger Brier minus champion Brier within the tolerance;
* behaviour: directional (raising a feature moves the mean score the stated way) and invariance
  (permuting entity ids changes no score).

Checks that compare with the champion pass, marked "no champion", when there is none: the first
model becomes champion by the floors alone. Pure functions of data and models: no MLflow here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Scorer = Callable[["pd.DataFrame"], "np.ndarray"]


@dataclass(frozen=True)
class Check:
    """One line of the gate report."""

    name: str
    value: float | None
    threshold: str
    passed: bool
    detail: str = ""


@dataclass
class GateReport:
    """Every check, the verdict, and the metrics it was judged on."""

    checks: list[Check] = field(default_factory=list)
    challenger_metrics: dict[str, Any] = field(default_factory=dict)
    champion_metrics: dict[str, Any] | None = None
    champion_version: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def reasons(self) -> list[str]:
        """One sentence per failed check."""
        return [f"{c.name}: {c.detail or f'{c.value} vs {c.threshold}'}" for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
            "challenger": self.challenger_metrics,
            "champion": self.champion_metrics,
            "champion_version": self.champion_version,
        }

    def to_markdown(self) -> str:
        """The report as a table an on-call engineer can read."""
        lines = [
            f"# Gate: **{self.verdict.upper()}**",
            "",
            f"Champion: {'version ' + self.champion_version if self.champion_version else 'none yet'}",
            "",
            "| check | value | threshold | result | detail |",
            "|---|---|---|---|---|",
        ]
        for c in self.checks:
            value = "–" if c.value is None else f"{c.value:.4f}"
            lines.append(f"| {c.name} | {value} | {c.threshold} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |")
        return "\n".join(lines) + "\n"


# --- metrics ---------------------------------------------------------------------------------


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by bin size."""
    import numpy as np

    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(labels[mask].mean() - scores[mask].mean())
    return float(total / max(len(labels), 1))


def metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float | int | None]:
    """AUC, PR-AUC, log loss, Brier, ECE, rows and positives; AUCs are None on a single class."""
    import numpy as np
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    labels = np.asarray(labels, dtype=int)
    scores = np.clip(np.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
    both = len(np.unique(labels)) == 2
    return {
        "rows": int(len(labels)),
        "positives": int(labels.sum()),
        "auc": float(roc_auc_score(labels, scores)) if both else None,
        "pr_auc": float(average_precision_score(labels, scores)) if both else None,
        "log_loss": float(log_loss(labels, scores, labels=[0, 1])) if len(labels) else None,
        "brier": float(brier_score_loss(labels, scores)) if len(labels) else None,
        "ece": expected_calibration_error(labels, scores) if len(labels) else None,
    }


def slice_metrics(frame: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, columns: list[str]) -> dict[str, dict]:
    """``metrics`` per ``column=value`` slice of ``frame``'s rows."""
    import numpy as np

    out = {}
    for column in columns:
        values = frame[column].astype("string").fillna("<null>").to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            out[f"{column}={value}"] = metrics(np.asarray(labels)[mask], np.asarray(scores)[mask])
    return out


def evaluate(frame: pd.DataFrame, labels: np.ndarray, score: Scorer, slices: list[str]) -> dict[str, Any]:
    """Overall and per-slice metrics of ``score`` on ``frame``."""
    scores = score(frame)
    return {"overall": metrics(labels, scores), "slices": slice_metrics(frame, labels, scores, slices)}


# --- the gate --------------------------------------------------------------------------------


def data_checks(rows: int, positives: int, gate: dict[str, Any]) -> list[Check]:
    """Minimum rows and label rate of the training set."""
    min_rows = int(gate.get("min_rows", 1000))
    low, high = (float(x) for x in gate.get("label_rate", (0.01, 0.5)))
    rate = positives / rows if rows else 0.0
    single = " (a single class)" if rows and positives in (0, rows) else ""
    return [
        Check("data.min_rows", rows, f">= {min_rows}", rows >= min_rows,
              "" if rows >= min_rows else f"{rows} training rows, fewer than {min_rows}"),
        Check("data.label_rate", rate, f"in [{low}, {high}]", low <= rate <= high,
              "" if low <= rate <= high else f"label rate {rate:.4f} outside [{low}, {high}]{single}"),
    ]


def behaviour_checks(
    frame: pd.DataFrame, score: Scorer, gate: dict[str, Any], entity_key: str, seed: int = 0
) -> list[Check]:
    """Directional checks from ``gate.directional`` and the entity-id invariance check."""
    import numpy as np

    checks = []
    base = score(frame)
    for rule in gate.get("directional", []):
        feature, delta, direction = rule["feature"], float(rule["delta"]), rule.get("direction", "up")
        if feature not in frame.columns:
            checks.append(Check(f"behaviour.directional.{feature}", None, "feature present", False,
                                f"{feature} is not a feature of this model's service"))
            continue
        shifted = frame.assign(**{feature: frame[feature].astype("float64") + delta})
        change = float(np.mean(score(shifted) - base))
        ok = change >= 0 if direction == "up" else change <= 0
        checks.append(Check(f"behaviour.directional.{feature}", change,
                            f"mean score change {'>=' if direction == 'up' else '<='} 0 for +{delta:g}", ok,
                            "" if ok else f"+{delta:g} {feature} moved the mean score by {change:+.5f}"))
    permuted = frame.assign(**{entity_key: np.random.default_rng(seed).permutation(frame[entity_key].to_numpy())})
    max_diff = float(np.max(np.abs(score(permuted) - base))) if len(frame) else 0.0
    checks.append(Check("behaviour.invariance.entity_id", max_diff, "== 0", max_diff == 0.0,
                        "" if max_diff == 0.0 else f"permuting {entity_key} changed scores by up to {max_diff:.6f}"))
    return checks


def gate(
    holdout: pd.DataFrame,
    labels: np.ndarray,
    challenger: Scorer,
    champion: Scorer | None,
    training_rows: int,
    training_positives: int,
    config: dict[str, Any],
    entity_key: str,
    champion_version: str | None = None,
) -> GateReport:
    """Judge ``challenger`` against ``champion`` (None: there is none yet) on the same holdout."""
    report = GateReport(champion_version=champion_version)
    report.checks += data_checks(training_rows, training_positives, config)
    if not all(c.passed for c in report.checks):
        return report  # no model judgement on data that failed its own checks

    slices = list(config.get("slices", []))
    ours = evaluate(holdout, labels, challenger, slices)
    report.challenger_metrics = ours
    theirs = evaluate(holdout, labels, champion, slices) if champion is not None else None
    report.champion_metrics = theirs

    auc = ours["overall"]["auc"]
    floor = float(config.get("min_auc", 0.7))
    report.checks.append(Check("floor.auc", auc, f">= {floor}", auc is not None and auc >= floor,
                               "" if auc is not None and auc >= floor else
                               f"holdout AUC {auc if auc is None else round(auc, 4)} below the floor {floor}"))

    if theirs is None:
        for name in ("improvement.auc", "slices.auc", "calibration.brier"):
            report.checks.append(Check(name, None, "vs champion", True, "no champion yet"))
    else:
        gain = None if auc is None or theirs["overall"]["auc"] is None else auc - theirs["overall"]["auc"]
        need = float(config.get("min_improvement", 0.0))
        report.checks.append(Check("improvement.auc", gain, f">= {need}", gain is not None and gain >= need,
                                   "" if gain is not None and gain >= need else
                                   f"AUC gain over the champion {gain if gain is None else round(gain, 4)} below {need}"))
        report.checks.append(_slice_check(ours["slices"], theirs["slices"], config))
        brier_diff = ours["overall"]["brier"] - theirs["overall"]["brier"]
        tolerance = float(config.get("calibration_tolerance", 0.01))
        report.checks.append(Check("calibration.brier", brier_diff, f"<= {tolerance}", brier_diff <= tolerance,
                                   "" if brier_diff <= tolerance else
                                   f"Brier {ours['overall']['brier']:.4f} vs champion {theirs['overall']['brier']:.4f}"))

    report.checks += behaviour_checks(holdout, challenger, config, entity_key)
    return report


def _slice_check(ours: dict[str, dict], theirs: dict[str, dict], config: dict[str, Any]) -> Check:
    """The worst slice: challenger AUC minus champion AUC, over slices with enough rows."""
    tolerance = float(config.get("slice_tolerance", 0.05))
    min_rows = int(config.get("min_slice_rows", 100))
    drops = {
        name: ours[name]["auc"] - theirs[name]["auc"]
        for name in ours
        if name in theirs and ours[name]["rows"] >= min_rows
        and ours[name]["auc"] is not None and theirs[name]["auc"] is not None
    }
    if not drops:
        return Check("slices.auc", None, f">= -{tolerance}", True, f"no slice with {min_rows}+ rows and both classes")
    worst = min(drops, key=drops.get)
    failing = sorted(name for name, d in drops.items() if d < -tolerance)
    return Check("slices.auc", drops[worst], f">= -{tolerance}", not failing,
                 f"worst slice {worst}" if not failing else
                 "slices worse than the champion by more than the tolerance: "
                 + ", ".join(f"{n} ({ours[n]['auc']:.3f} vs {theirs[n]['auc']:.3f})" for n in failing))
