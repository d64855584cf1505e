"""The retrain DAG's three steps: train a challenger, gate it against the champion, register it.

Each step is one function; they hand each other an MLflow run id (never data). The run holds
everything the next step and an on-call engineer need: parameters, metrics (overall and per
slice), the data window and row counts, the feature service and feature list, the model with
its signature and an input example, ROC / calibration / importance plots, the holdout, a
reference sample for drift monitoring, and the gate report as JSON and Markdown.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.settings import Settings
from nightshift.usecase import UseCase, use_case_of

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

HOLDOUT_ARTIFACT = "evaluation/holdout.parquet"
REFERENCE_ARTIFACT = "reference/reference.parquet"
GATE_JSON = "gate/gate_report.json"
GATE_MARKDOWN = "gate/gate_report.md"
#: Rows of training features kept as the drift reference.
REFERENCE_ROWS = 20_000
TRIGGERS = ("schedule", "drift", "manual")


def run_date_of(ds: str | None) -> date:
    """The date a retrain knows up to: the run's logical date, or today (UTC) for an
    Asset-triggered run, which has none."""
    from datetime import datetime, timezone

    return date.fromisoformat(ds[:10]) if ds else datetime.now(timezone.utc).date()


def drift_request_of(triggering_asset_events: Any) -> dict[str, Any] | None:
    """The latest ``retrain-request/<use case>`` event's extra (day, reasons, numbers), or None.

    Several requests batched into one run (the retrain was busy) are answered by one retrain,
    trained up to the latest requested day; every request's reasons are kept.
    """
    requests = [dict(getattr(e, "extra", None) or {}) for events in (triggering_asset_events or {}).values()
                for e in events]
    requests = [r for r in requests if r.get("monitor_date")]
    if not requests:
        return None
    latest = max(requests, key=lambda r: str(r["monitor_date"]))
    reasons = [f"{r['monitor_date']}: {reason}" for r in requests for reason in (r.get("reasons") or [])]
    return {**latest, "reasons": reasons, "requested_days": sorted({str(r["monitor_date"]) for r in requests})}


def drift_run_date(request: dict[str, Any]) -> date:
    """A drift retrain for day D's request trains on data up to D: run date D + 1."""
    from datetime import timedelta

    return date.fromisoformat(str(request["monitor_date"])[:10]) + timedelta(days=1)


def reasons_text(request: dict[str, Any] | None) -> str:
    """The request's reasons as one tag / audit value (empty for a scheduled or manual retrain)."""
    return "; ".join((request or {}).get("reasons") or [])[:4900]


def trigger_of(run_type: str | None) -> str:
    """What started a retrain run: its weekly schedule, a drift request (an Asset), or a person."""
    value = str(getattr(run_type, "value", run_type) or "").lower()
    return {"scheduled": "schedule", "asset_triggered": "drift"}.get(value, "manual")


# --- step 1: train ----------------------------------------------------------------------------


def train_challenger(settings: Settings, use_case_name: str, run_date: date, trigger: str,
                     trigger_reasons: str = "") -> dict[str, Any]:
    """Build the training set, train LightGBM and log the run; returns ``{"run_id", "trained", …}``.

    ``trigger_reasons`` (a drift request's reasons) are tagged ``nightshift.trigger_reasons``.

    A training set that fails the gate's data checks (too small, single class) is logged with
    its reasons and not trained on: the gate then fails it and nothing is promoted.
    """
    import mlflow

    from nightshift import features
    from nightshift.modeling import evaluation, inputs, registry, training

    use_case = use_case_of(settings, use_case_name)
    registry.connect(settings)
    experiment_id = registry.ensure_experiment(settings, use_case)
    config = use_case.training
    feature_list = features.feature_names(settings, use_case.feature_service)
    categorical = [c for c in config.get("categorical", []) if c in feature_list]

    try:
        frame, window = training.build_training_set(settings, use_case, run_date)
        frame["split"] = training.assign_splits(frame, use_case).to_numpy()
    except training.LabelModelBroken:
        raise  # a broken label model fails the task before anything is trained or logged
    except training.TrainingDataError as exc:
        frame, window, problem = None, None, str(exc)
    else:
        problem = None
        purged = int((frame["split"] == "purged").sum())
        frame = frame[frame["split"] != "purged"].reset_index(drop=True)

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{use_case.name}-{run_date}-{trigger}") as run:
        mlflow.set_tags({
            "nightshift.use_case": use_case.name,
            "nightshift.trigger": trigger,
            "nightshift.trigger_reasons": trigger_reasons or "none",
            "nightshift.feature_service": use_case.feature_service,
        })
        mlflow.log_params({"run_date": run_date.isoformat(), "task": use_case.task,
                           "label_horizon_days": use_case.horizon_days})
        if window is not None:
            mlflow.log_params({f"window.{k}": v for k, v in window.as_dict().items()})
        mlflow.log_params({"feature_service": use_case.feature_service, "features": ",".join(feature_list)[:6000]})
        labels = frame[training.LABEL].to_numpy() if frame is not None else []
        summary = evaluation.label_summary(labels)
        mlflow.log_metrics({f"training.{k}": v for k, v in summary.items()})
        data = evaluation.data_checks(summary, use_case.gate, use_case.task)
        if problem is not None or not all(c.passed for c in data):
            reasons = [problem] if problem else [c.detail for c in data if not c.passed]
            mlflow.set_tags({"nightshift.trained": "false", "nightshift.data_problem": "; ".join(reasons)[:4900]})
            return {"run_id": run.info.run_id, "trained": False, "reasons": reasons}
        mlflow.log_metric("training.purged_rows", float(purged))

        model = training.train_model(frame, frame["split"], feature_list, use_case)
        _log_training(frame, model, feature_list, categorical, config)
        holdout = frame[frame["split"] == "holdout"].drop(columns="split")
        model_input = inputs.model_input(holdout, feature_list, categorical)
        holdout_scores = model.predict(model_input)
        _log_evaluation_plots(holdout[training.LABEL].to_numpy(), holdout_scores, model, use_case.task)
        _log_frame(holdout, HOLDOUT_ARTIFACT)
        _log_frame(_reference_sample(frame, holdout_scores, feature_list, use_case), REFERENCE_ARTIFACT)
        info = mlflow.lightgbm.log_model(
            model,
            name="model",
            signature=mlflow.models.infer_signature(model_input.head(200), holdout_scores[:200]),
            input_example=model_input.head(5),
            # The lock pins these; naming them spares MLflow a pip-inference subprocess (~4 s).
            pip_requirements=_model_requirements(),
            # Nightshift loads the booster natively and types columns with inputs.model_input;
            # MLflow's JSON serving check would hand the categorical columns over as plain strings.
            validate_serving_input=False,
        )
        mlflow.set_tags({"nightshift.trained": "true", "nightshift.model_uri": info.model_uri})
        counts = frame["split"].value_counts()
        return {"run_id": run.info.run_id, "trained": True, "rows": {s: int(counts.get(s, 0)) for s in training.SPLITS}}


def _model_requirements() -> list[str]:
    """The packages a logged model needs to be loaded, at the versions installed here."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("lightgbm", "pandas", "numpy", "scikit-learn", "mlflow")]


def _log_training(frame: pd.DataFrame, model: lgb.Booster, features: list[str], categorical: list[str], config: dict) -> None:
    import mlflow

    from nightshift.modeling import training

    mlflow.log_params({f"lgbm.{k}": v for k, v in config.get("params", {}).items()})
    mlflow.log_params({
        "seed": config.get("seed", 42),
        "num_boost_round": config.get("num_boost_round", 500),
        "early_stopping_rounds": config.get("early_stopping_rounds", 50),
        "categorical": ",".join(categorical),
        "best_iteration": model.best_iteration,
    })
    for split in training.SPLITS:
        rows = frame[frame["split"] == split]
        mlflow.log_metrics({
            f"{split}.rows": float(len(rows)),
            f"{split}.label_sum": float(rows[training.LABEL].sum()),
        })
        if len(rows):
            mlflow.log_params({f"{split}.first_day": str(min(rows[training.AS_OF_DATE])),
                               f"{split}.last_day": str(max(rows[training.AS_OF_DATE]))})


def _log_evaluation_plots(labels: Any, scores: Any, model: lgb.Booster, task: str) -> None:
    """ROC and calibration curves (binary) or predicted against actual (regression), and gain
    importance, as figures of the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import numpy as np
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    if task == "regression" and len(labels):
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(labels, scores, s=4, alpha=0.4)
        top = float(max(np.max(labels), np.max(scores)))
        ax.plot([0, top], [0, top], linestyle="--", color="grey")
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (holdout)")
        mlflow.log_figure(fig, "plots/predicted_vs_actual.png")
        plt.close(fig)
    elif len(np.unique(labels)) == 2:
        fpr, tpr, _ = roc_curve(labels, scores)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(fpr, tpr)
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
        mlflow.log_figure(fig, "plots/roc.png")
        plt.close(fig)
        observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(predicted, observed, marker="o")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="mean predicted", ylabel="observed rate", title="Calibration (holdout)")
        mlflow.log_figure(fig, "plots/calibration.png")
        plt.close(fig)
    importance = model.feature_importance(importance_type="gain")
    order = np.argsort(importance)
    fig, ax = plt.subplots(figsize=(6, max(3, 0.3 * len(order))))
    ax.barh(np.array(model.feature_name())[order], importance[order])
    ax.set(xlabel="total gain", title="Feature importance")
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/importance.png")
    plt.close(fig)


def _reference_sample(frame: pd.DataFrame, holdout_scores: Any, features: list[str], use_case: UseCase) -> pd.DataFrame:
    """Training features (a seeded sample) and the holdout's features with their scores."""
    import pandas as pd

    from nightshift.modeling import training

    seed = int(use_case.training.get("seed", 42))
    train = frame[frame["split"] == "train"]
    train = train.sample(n=min(REFERENCE_ROWS, len(train)), random_state=seed)
    holdout = frame[frame["split"] == "holdout"]
    columns = [*use_case.key_columns, training.AS_OF_DATE, *features, training.LABEL]
    return pd.concat(
        [train[columns].assign(part="train", score=float("nan")),
         holdout[columns].assign(part="holdout", score=holdout_scores)],
        ignore_index=True,
    )


def _log_frame(frame: pd.DataFrame, artifact_path: str) -> None:
    import mlflow

    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(artifact_path).name
        frame.to_parquet(local, index=False)
        mlflow.log_artifact(str(local), artifact_path=str(Path(artifact_path).parent))


def load_frame(run_id: str, artifact_path: str) -> pd.DataFrame:
    """A frame logged by this module to run ``run_id``."""
    import mlflow
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        return pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=tmp))


# --- step 2: gate -----------------------------------------------------------------------------


def evaluate_challenger(settings: Settings, use_case_name: str, run_id: str) -> dict[str, Any]:
    """Judge the run's challenger against the current champion on the run's holdout.

    Logs the gate report (JSON and Markdown) and the champion's metrics to the run and tags
    it ``gate=passed|failed`` and with the champion version it was judged against (the register
    step promotes only over that one); returns the report as a dict.

    Raises:
        RegistryUnavailable: the champion cannot be read (an MLflow error is never "no champion").
    """
    import mlflow

    from nightshift import features
    from nightshift.modeling import evaluation, inputs, registry, training

    use_case = use_case_of(settings, use_case_name)
    client = registry.connect(settings)
    run = client.get_run(run_id)
    summary = {k: float(run.data.metrics.get(f"training.{k}", 0.0)) for k in ("rows", "positives", "label_std")}
    categorical = list(use_case.training.get("categorical", []))

    judged_against = registry.NO_CHAMPION
    if run.data.tags.get("nightshift.trained") != "true":
        report = evaluation.GateReport(checks=evaluation.data_checks(summary, use_case.gate, use_case.task))
        if report.passed:  # the data problem was upstream of the checks (nothing to train on)
            report.checks.append(evaluation.Check("data.training_set", None, "buildable", False,
                                                  run.data.tags.get("nightshift.data_problem", "no training set")))
    else:
        holdout = load_frame(run_id, HOLDOUT_ARTIFACT)
        labels = holdout[training.LABEL].to_numpy()
        challenger = mlflow.lightgbm.load_model(run.data.tags["nightshift.model_uri"])
        current = registry.champion_version(client, use_case.model_name)
        champion_score = None
        if current is not None:
            judged_against = str(current.version)
            champion = mlflow.lightgbm.load_model(f"models:/{use_case.model_name}/{current.version}")
            champion_service = current.tags.get("feature_service", use_case.feature_service)

            def champion_score(frame: pd.DataFrame) -> Any:
                if champion_service != use_case.feature_service:
                    # the same rows, read through the service the champion was trained on
                    frame = features.training_frame(
                        settings, champion_service, frame[[*use_case.key_columns, features.EVENT_TIMESTAMP]]
                    )
                return inputs.predict(champion, frame, categorical)

        report = evaluation.gate(
            holdout, labels,
            lambda frame: inputs.predict(challenger, frame, categorical),
            champion_score,
            summary, use_case.gate, use_case.key_columns,
            champion_version=None if current is None else str(current.version), task=use_case.task,
        )

    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict(report.as_dict(), GATE_JSON)
        mlflow.log_text(report.to_markdown(), GATE_MARKDOWN)
        mlflow.set_tags({"gate": report.verdict, "gate_reasons": "; ".join(report.reasons)[:4900] or "none",
                         registry.EVALUATED_CHAMPION_TAG: judged_against})
        mlflow.log_metrics(_flat_metrics(report))
    return report.as_dict()


def _flat_metrics(report: Any) -> dict[str, float]:
    """Holdout metrics as MLflow metric names: ``holdout.auc``, ``holdout.<column>.<value>.auc``, ``champion.…``."""
    out: dict[str, float] = {}
    for prefix, block in (("holdout", report.challenger_metrics), ("champion", report.champion_metrics)):
        if not block:
            continue
        for name, value in block["overall"].items():
            if value is not None:
                out[f"{prefix}.{name}"] = float(value)
        for slice_name, values in block["slices"].items():
            for name, value in values.items():
                if value is not None and name not in ("ece", "positives", "mean_label"):
                    out[f"{prefix}.{_metric_key(slice_name)}.{name}"] = float(value)
    return out


def _metric_key(slice_name: str) -> str:
    """A slice name as an MLflow metric name part (letters, digits, ``_ - . /`` and spaces only)."""
    import re

    return re.sub(r"[^\w\-./ ]", "_", slice_name.replace("=", "."))


# --- step 3: register and promote ---------------------------------------------------------------


def register_challenger(
    settings: Settings, use_case_name: str, run_id: str, trigger: str, airflow_run_id: str | None,
    lock_timeout: float | None = None,
) -> dict[str, Any]:
    """Register the run's model (every trained challenger gets a version), tag it with the gate's
    verdict, and move ``champion`` to it only when the gate passed against the version that is
    champion now. Every outcome is audited; all of it holds the registry lock.

    Raises:
        ChampionMoved: ``champion`` moved since the gate (a rollback, another retrain); the
            version is registered, the refusal audited, and the message says what to do.
        RegistryBusy: another alias move held the registry lock past ``lock_timeout`` seconds.
    """
    from nightshift.modeling import registry

    use_case = use_case_of(settings, use_case_name)
    model = use_case.model_name
    client = registry.connect(settings)
    run = client.get_run(run_id)
    verdict = run.data.tags.get("gate")
    if verdict not in ("passed", "failed"):
        raise RuntimeError(f"run {run_id} has no gate verdict: run the evaluate step first")
    reasons = run.data.tags.get("gate_reasons", "")
    trained = run.data.tags.get("nightshift.trained") == "true"
    trigger_reasons = run.data.tags.get("nightshift.trigger_reasons", "none")
    trigger_reasons = None if trigger_reasons == "none" else trigger_reasons
    judged = run.data.tags.get(registry.EVALUATED_CHAMPION_TAG)
    if verdict == "passed" and trained and judged is None:
        raise RuntimeError(f"run {run_id} passed a gate that did not record which champion it was judged against "
                           f"(tag {registry.EVALUATED_CHAMPION_TAG}): clear the evaluate task to gate it again")
    judged_version = None if judged in (None, registry.NO_CHAMPION) else judged
    request = f"register run {run_id}"

    with registry.registry_lock(settings, f"register step of {model} (run {run_id})", lock_timeout):
        finished = registry.reconcile(settings, client, model)
        if finished is not None and finished["request"] == request:
            return {"version": finished["to_version"], "promoted": True, "gate": verdict, "audit": finished["event_id"],
                    "note": "audit row written on retry"}
        current = registry.champion_version(client, model)
        current_version = None if current is None else str(current.version)

        version = None
        if trained:
            version = registry.register(client, model, run.data.tags["nightshift.model_uri"], run_id, {
                "gate": verdict,
                "gate_reasons": reasons,
                "trigger": trigger,
                "trigger_reasons": trigger_reasons or "none",
                "feature_service": run.data.tags["nightshift.feature_service"],
                "training_window": f"{run.data.params.get('window.first_day')}..{run.data.params.get('window.last_day')}",
                "airflow_run_id": airflow_run_id or "",
            })

        if verdict == "passed" and version is not None:
            if current_version == str(version.version):
                return {"version": current_version, "promoted": False, "gate": verdict, "note": "already champion"}
            if current_version != judged_version:
                message = (
                    f"not promoting version {version.version} of {model}: its gate passed against champion "
                    f"{_version_text(judged_version)}, but champion is now {_version_text(current_version)} (it moved "
                    f"since the evaluation, e.g. a rollback). Version {version.version} stays registered with gate=passed. "
                    f"To judge it against {_version_text(current_version)}, clear this run's evaluate task (register "
                    f"follows); to promote it anyway: nightshift rollback --use-case {use_case.name} --to "
                    f"{version.version} --reason \"...\""
                )
                registry.record(settings, registry.AliasMove(
                    use_case.name, model, "promotion_refused", current_version, str(version.version), trigger,
                    message, verdict, run_id, airflow_run_id, trigger_reasons=trigger_reasons,
                ))
                raise registry.ChampionMoved(message)
            event = registry.move_champion(settings, client, registry.AliasMove(
                use_case.name, model, "promoted", current_version, str(version.version), trigger,
                "gate passed" if current_version is None else f"gate passed against version {current_version}",
                verdict, run_id, airflow_run_id, trigger_reasons=trigger_reasons,
            ), request=request)
            return {"version": str(version.version), "promoted": True, "gate": verdict, "audit": event["event_id"]}

        trail = registry.audit_trail(settings, use_case.name)
        earlier = trail[(trail["action"] == "rejected") & (trail["mlflow_run_id"] == run_id)] if len(trail) else trail
        if len(earlier):  # a retried task: the decision is already on record
            event_id = str(earlier.iloc[-1]["event_id"])
        else:
            event_id = registry.record(settings, registry.AliasMove(
                use_case.name, model, "rejected", current_version,
                None if version is None else str(version.version), trigger, reasons or "gate failed", verdict,
                run_id, airflow_run_id, trigger_reasons=trigger_reasons,
            ))["event_id"]
    return {"version": None if version is None else str(version.version), "promoted": False, "gate": verdict,
            "reasons": reasons, "audit": event_id}


def _version_text(version: str | None) -> str:
    return "none (no champion)" if version is None else f"version {version}"


def retrain(
    settings: Settings, use_case_name: str, run_date: date, trigger: str = "manual", airflow_run_id: str | None = None,
    lock_timeout: float | None = None, trigger_reasons: str = "",
) -> dict[str, Any]:
    """All three steps in one call (the CLI, the demo's library checks and the tests)."""
    trained = train_challenger(settings, use_case_name, run_date, trigger, trigger_reasons)
    report = evaluate_challenger(settings, use_case_name, trained["run_id"])
    registered = register_challenger(settings, use_case_name, trained["run_id"], trigger, airflow_run_id, lock_timeout)
    return {"run_id": trained["run_id"], **registered, "report": report}


def gate_summary(report: dict[str, Any]) -> str:
    """One line per check, for task logs."""
    return json.dumps({c["name"]: ("pass" if c["passed"] else "FAIL") for c in report["checks"]})
