"""The evaluation gate: challenger and champion judged on the same holdout, check by check.

Every check has a value, a threshold and a verdict, so a report says exactly why a model was or
was not promoted. The metrics follow the use case's task: AUC, PR-AUC, Brier and calibration for
``binary``; RMSE, MAE and bias for ``regression``. Checks (thresholds from the use case's ``gate:``):

* data: training-set rows, and a label rate within bounds (binary) or a label that varies
  (regression): a tiny, single-class or constant set fails here;
* floor: the challenger's primary holdout metric (``min_auc`` / ``max_rmse``);
* improvement: the challenger's gain over the champion on it (``min_improvement``);
* slices: no slice (per ``gate.slices`` column and value, with enough rows) worse than the
  champion's by more than ``slice_tolerance``;
* calibration: Brier within ``calibration_tolerance`` of the champion's (binary); the mean error
  within ``bias_tolerance`` of the mean label (regression);
* behaviour: directional (raising a feature moves the mean score the stated way) and invariance
  (permuting the entity keys changes no score).

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


#: Per task: the metric the floor, the improvement and the slices are judged on, and whether higher is better.
PRIMARY = {"binary": ("auc", True), "regression": ("rmse", False)}


def metrics(labels: np.ndarray, scores: np.ndarray, task: str = "binary") -> dict[str, float | int | None]:
    """The task's holdout metrics; binary AUCs are None on a single class."""
    import numpy as np

    if task == "regression":
        labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
        error = scores - labels
        return {
            "rows": int(len(labels)),
            "mean_label": float(labels.mean()) if len(labels) else None,
            "rmse": float(np.sqrt(np.mean(error**2))) if len(labels) else None,
            "mae": float(np.mean(np.abs(error))) if len(labels) else None,
            "bias": float(error.mean()) if len(labels) else None,
        }
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


def slice_metrics(frame: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, columns: list[str],
                  task: str = "binary") -> dict[str, dict]:
    """``metrics`` per ``column=value`` slice of ``frame``'s rows."""
    import numpy as np

    out = {}
    for column in columns:
        values = frame[column].astype("string").fillna("<null>").to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            out[f"{column}={value}"] = metrics(np.asarray(labels)[mask], np.asarray(scores)[mask], task)
    return out


def evaluate(frame: pd.DataFrame, labels: np.ndarray, score: Scorer, slices: list[str],
             task: str = "binary") -> dict[str, Any]:
    """Overall and per-slice metrics of ``score`` on ``frame``."""
    scores = score(frame)
    return {"overall": metrics(labels, scores, task), "slices": slice_metrics(frame, labels, scores, slices, task)}


# --- the gate --------------------------------------------------------------------------------


def label_summary(labels: Any) -> dict[str, float]:
    """What the data checks need of a training set's labels (logged as ``training.*`` metrics)."""
    import numpy as np

    labels = np.asarray(labels, dtype=float)
    return {"rows": float(len(labels)), "positives": float(labels.sum()) if len(labels) else 0.0,
            "label_std": float(labels.std()) if len(labels) else 0.0}


def data_checks(summary: dict[str, float], gate: dict[str, Any], task: str = "binary") -> list[Check]:
    """Minimum rows, and a label rate within bounds (binary) or a label that varies (regression)."""
    rows, positives = int(summary.get("rows", 0)), int(summary.get("positives", 0))
    min_rows = int(gate.get("min_rows", 1000))
    checks = [Check("data.min_rows", rows, f">= {min_rows}", rows >= min_rows,
                    "" if rows >= min_rows else f"{rows} training rows, fewer than {min_rows}")]
    if task == "regression":
        std = float(summary.get("label_std", 0.0))
        checks.append(Check("data.label_variance", std, "> 0", std > 0,
                            "" if std > 0 else "the label is constant over the training set"))
        return checks
    low, high = (float(x) for x in gate.get("label_rate", (0.01, 0.5)))
    rate = positives / rows if rows else 0.0
    single = " (a single class)" if rows and positives in (0, rows) else ""
    checks.append(Check("data.label_rate", rate, f"in [{low}, {high}]", low <= rate <= high,
                        "" if low <= rate <= high else f"label rate {rate:.4f} outside [{low}, {high}]{single}"))
    return checks


def behaviour_checks(
    frame: pd.DataFrame, score: Scorer, gate: dict[str, Any], keys: list[str], seed: int = 0
) -> list[Check]:
    """Directional checks from ``gate.directional`` and the entity-key invariance check."""
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
    order = np.random.default_rng(seed).permutation(len(frame))
    permuted = frame.assign(**{key: frame[key].to_numpy()[order] for key in keys})
    max_diff = float(np.max(np.abs(score(permuted) - base))) if len(frame) else 0.0
    checks.append(Check("behaviour.invariance.entity_id", max_diff, "== 0", max_diff == 0.0,
                        "" if max_diff == 0.0 else f"permuting {keys} changed scores by up to {max_diff:.6f}"))
    return checks


def gate(
    holdout: pd.DataFrame,
    labels: np.ndarray,
    challenger: Scorer,
    champion: Scorer | None,
    training: dict[str, float],
    config: dict[str, Any],
    keys: list[str],
    champion_version: str | None = None,
    task: str = "binary",
) -> GateReport:
    """Judge ``challenger`` against ``champion`` (None: there is none yet) on the same holdout.

    Args:
        training: the training set's :func:`label_summary`.
    """
    report = GateReport(champion_version=champion_version)
    report.checks += data_checks(training, config, task)
    if not all(c.passed for c in report.checks):
        return report  # no model judgement on data that failed its own checks

    slices = list(config.get("slices", []))
    ours = evaluate(holdout, labels, challenger, slices, task)
    report.challenger_metrics = ours
    theirs = evaluate(holdout, labels, champion, slices, task) if champion is not None else None
    report.champion_metrics = theirs
    metric, higher = PRIMARY[task]
    report.checks.append(_floor_check(ours["overall"][metric], metric, higher, config))
    calibration = "calibration.brier" if task == "binary" else "calibration.bias"
    if theirs is None:
        for name in (f"improvement.{metric}", f"slices.{metric}"):
            report.checks.append(Check(name, None, "vs champion", True, "no champion yet"))
    else:
        report.checks.append(_improvement_check(ours["overall"][metric], theirs["overall"][metric], metric, higher, config))
        report.checks.append(_slice_check(ours["slices"], theirs["slices"], metric, higher, config))
    if task == "binary" and theirs is None:
        report.checks.append(Check(calibration, None, "vs champion", True, "no champion yet"))
    elif task == "binary":
        brier_diff = ours["overall"]["brier"] - theirs["overall"]["brier"]
        tolerance = float(config.get("calibration_tolerance", 0.01))
        report.checks.append(Check(calibration, brier_diff, f"<= {tolerance}", brier_diff <= tolerance,
                                   "" if brier_diff <= tolerance else
                                   f"Brier {ours['overall']['brier']:.4f} vs champion {theirs['overall']['brier']:.4f}"))
    else:
        report.checks.append(_bias_check(ours["overall"], config))
    report.checks += behaviour_checks(holdout, challenger, config, keys)
    return report


def _floor_check(value: float | None, metric: str, higher: bool, config: dict[str, Any]) -> Check:
    """The challenger's primary metric against the floor (``min_auc``, or ``max_rmse``)."""
    key = f"min_{metric}" if higher else f"max_{metric}"
    floor = float(config.get(key, 0.7 if higher else float("inf")))
    ok = value is not None and (value >= floor if higher else value <= floor)
    return Check(f"floor.{metric}", value, f"{'>=' if higher else '<='} {floor}", ok,
                 "" if ok else f"holdout {metric.upper()} {value if value is None else round(value, 4)} "
                               f"{'below' if higher else 'above'} the floor {floor} (gate.{key})")


def _improvement_check(ours: float | None, theirs: float | None, metric: str, higher: bool,
                       config: dict[str, Any]) -> Check:
    """The challenger's gain over the champion on the primary metric, in the metric's good direction."""
    gain = None if ours is None or theirs is None else (ours - theirs if higher else theirs - ours)
    need = float(config.get("min_improvement", 0.0))
    ok = gain is not None and gain >= need
    return Check(f"improvement.{metric}", gain, f">= {need}", ok,
                 "" if ok else f"{metric.upper()} gain over the champion {gain if gain is None else round(gain, 4)} "
                               f"below {need}")


def _bias_check(ours: dict[str, Any], config: dict[str, Any]) -> Check:
    """|mean error| within ``bias_tolerance`` (a share) of the mean |label|."""
    tolerance = float(config.get("bias_tolerance", 0.1))
    scale = abs(ours.get("mean_label") or 0.0) or 1.0
    relative = abs(ours["bias"]) / scale
    ok = relative <= tolerance
    return Check("calibration.bias", relative, f"|bias| / mean label <= {tolerance}", ok,
                 "" if ok else f"mean error {ours['bias']:+.4f} is {relative:.1%} of the mean label "
                               f"{ours.get('mean_label', 0.0):.4f}")


def _slice_check(ours: dict[str, dict], theirs: dict[str, dict], metric: str, higher: bool,
                 config: dict[str, Any]) -> Check:
    """The worst slice: how much worse than the champion's, over slices with enough rows."""
    tolerance = float(config.get("slice_tolerance", 0.05))
    min_rows = int(config.get("min_slice_rows", 100))
    drops = {
        name: (ours[name][metric] - theirs[name][metric]) * (1 if higher else -1)
        for name in ours
        if name in theirs and ours[name]["rows"] >= min_rows
        and ours[name][metric] is not None and theirs[name][metric] is not None
    }
    name = f"slices.{metric}"
    if not drops:
        return Check(name, None, f">= -{tolerance}", True, f"no slice with {min_rows}+ rows and a defined {metric}")
    worst = min(drops, key=drops.get)
    failing = sorted(n for n, d in drops.items() if d < -tolerance)
    return Check(name, drops[worst], f">= -{tolerance}", not failing,
                 f"worst slice {worst}" if not failing else
                 "slices worse than the champion by more than the tolerance: "
                 + ", ".join(f"{n} ({ours[n][metric]:.3f} vs {theirs[n][metric]:.3f})" for n in failing))
