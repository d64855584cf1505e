"""Monitor day D of a use case: what the ``monitor_<use case>`` DAG calls, one function per step.

:func:`days_to_monitor` turns a run into its days; :func:`monitor_day` reads D's predictions
and the features they were scored on (a seeded sample), the reference of the model version that
scored D, and the labels that have landed; computes drift, estimated and realized performance and
the retrain decision; writes the three ``monitoring.*`` tables' partitions for (use case, D) in
one atomic write; stores the HTML report and logs it to that version's MLflow run. A rerun of D
replaces exactly D's rows and report.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.monitoring import DRIFT_DAILY, PERFORMANCE_DAILY, RETRAIN_REQUESTS, partition
from nightshift.monitoring.config import MonitoringConfig, monitoring_config
from nightshift.monitoring.decision import REQUESTED, Decision, Facts, decide, triggers
from nightshift.settings import Settings
from nightshift.usecase import UseCase, use_case_of

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

#: Airflow's run-id prefix of a backfill's runs (``backfill__<logical date>``).
BACKFILL_RUN_PREFIX = "backfill__"


class NothingToMonitor(RuntimeError):
    """A scheduled run found no day to monitor: D is not scored yet, or already monitored."""


class DayNotScored(RuntimeError):
    """A run asked to monitor a day that has no predictions."""


@dataclass(frozen=True)
class ScoredDay:
    """D's predictions and who made them."""

    rows: pd.DataFrame
    model_version: str
    backfill: bool


def config_of(use_case: UseCase) -> MonitoringConfig:
    """The use case's ``monitoring:`` block with its defaults."""
    return monitoring_config(use_case.raw.get("monitoring"), where=f"{use_case.path or use_case.name}: monitoring")


def _warehouse(settings: Settings) -> Any:
    from nightshift.warehouse import Warehouse

    return Warehouse.from_uri(settings.warehouse_uri)


def scored_day(settings: Settings, use_case: UseCase, day: date) -> ScoredDay | None:
    """D's published predictions, or None when D has none (never scored, or the table is new)."""
    from nightshift.modeling.reads import read_if_exists
    from nightshift.warehouse import predictions_table

    warehouse = _warehouse(settings)
    table = predictions_table(use_case.name)
    rows = read_if_exists(warehouse, table, lambda: warehouse.read(table, {"scoring_date": day}))
    if rows is None or not len(rows):
        return None
    versions = rows["model_version"].astype(str).value_counts()
    run_ids = rows["airflow_run_id"].astype(str) if "airflow_run_id" in rows else []
    backfill = bool(len(run_ids)) and bool(run_ids.str.startswith(BACKFILL_RUN_PREFIX).all())
    return ScoredDay(rows, str(versions.index[0]), backfill)


def days_to_monitor(settings: Settings, use_case_name: str, candidates: list[date], scheduled: bool) -> list[date]:
    """The days a run monitors, oldest first.

    A run triggered by predictions, by hand or by a backfill monitors every candidate day and
    fails on one without predictions. A scheduled run (its daily timetable exists so backfills
    have dates) monitors its day only if D is scored and not monitored yet.

    Raises:
        DayNotScored: a requested day has no predictions (says which DAG scores it).
        NothingToMonitor: a scheduled run has nothing to do (says why).
    """
    from nightshift.modeling.reads import read_if_exists

    use_case = use_case_of(settings, use_case_name)
    days = sorted(set(candidates))
    unscored = [d for d in days if scored_day(settings, use_case, d) is None]
    if not scheduled:
        if unscored:
            raise DayNotScored(
                f"{use_case_name}: no predictions for {', '.join(map(str, unscored))} in "
                f"predictions.{use_case_name}_daily; run the `score_{use_case_name}` DAG for those days first"
            )
        return days
    warehouse = _warehouse(settings)
    done = []
    for day in days:
        found = read_if_exists(warehouse, RETRAIN_REQUESTS,
                               lambda d=day: warehouse.read(RETRAIN_REQUESTS, partition(use_case_name, d)))
        if found is not None and len(found):
            done.append(day)
    chosen = [d for d in days if d not in unscored and d not in done]
    if not chosen:
        raise NothingToMonitor(
            f"{use_case_name} {', '.join(map(str, days))}: "
            + ("not scored yet; the run that `predictions/" + use_case_name + "` triggers will monitor it"
               if unscored else "already monitored")
        )
    return chosen


# --- the facts the decision needs ----------------------------------------------------------------


def _run_date(client: MlflowClient, run_id: str) -> date | None:
    value = client.get_run(run_id).data.params.get("run_date")
    return date.fromisoformat(value) if value else None


def model_facts(settings: Settings, use_case: UseCase, client: MlflowClient) -> dict[str, Any]:
    """The champion's version and training date, and the latest training date of any trained model."""
    from nightshift.modeling import registry

    champion = registry.champion_version(client, use_case.model_name)
    experiment = client.get_experiment_by_name(registry.experiment_name(use_case))
    trained: list[date] = []
    if experiment is not None:
        runs = client.search_runs([experiment.experiment_id], "tags.`nightshift.trained` = 'true'", max_results=1000)
        trained = [date.fromisoformat(r.data.params["run_date"]) for r in runs if r.data.params.get("run_date")]
    return {
        "champion_version": None if champion is None else str(champion.version),
        "champion_trained_on": None if champion is None else _run_date(client, champion.run_id),
        "last_trained_on": max(trained) if trained else None,
    }


def pending_request(settings: Settings, use_case: UseCase, day: date, last_trained_on: date | None,
                    config: MonitoringConfig) -> date | None:
    """The day of the latest request before D that no retrain has answered (no model trained after
    it), within the cooldown: a retrain that never came does not block requests for ever."""
    import pandas as pd

    from nightshift.modeling.reads import read_if_exists

    warehouse = _warehouse(settings)
    first = day - timedelta(days=config.cooldown_days)
    earlier = read_if_exists(warehouse, RETRAIN_REQUESTS,
                             lambda: warehouse.read_range(RETRAIN_REQUESTS, "monitor_date", first, day - timedelta(days=1)))
    if earlier is None or not len(earlier):
        return None
    asked = earlier[(earlier["use_case"].astype(str) == use_case.name) & (earlier["decision"] == REQUESTED)]
    if not len(asked):
        return None
    latest = max(pd.to_datetime(asked["monitor_date"]).dt.date)
    # A drift retrain of request D trains with run date D + 1: a training on or after that answered it.
    if last_trained_on is not None and last_trained_on > latest:
        return None
    return latest


# --- one day ---------------------------------------------------------------------------------------


def current_sample(settings: Settings, use_case: UseCase, scored: ScoredDay, day: date, service: str,
                   config: MonitoringConfig) -> pd.DataFrame:
    """A seeded sample of D's scored rows with the features they were scored on (the same
    point-in-time read scoring made: as of the end of D, through the version's feature service)."""
    import pandas as pd

    from nightshift import features
    from nightshift.days import end_of_day
    from nightshift.monitoring.drift import SCORE, sample

    chosen = sample(scored.rows[[*use_case.key_columns, SCORE]], config.sample_rows, config.seed)
    chosen = chosen.astype(use_case.key_dtypes)
    entities = chosen[use_case.key_columns].assign(**{features.EVENT_TIMESTAMP: pd.Timestamp(end_of_day(day))})
    frame = features.training_frame(settings, service, entities)
    return frame.drop(columns=[features.EVENT_TIMESTAMP], errors="ignore").merge(chosen, on=use_case.key_columns)


def realized(settings: Settings, use_case: UseCase, day: date, reference: pd.DataFrame,
             config: MonitoringConfig, client: MlflowClient) -> pd.DataFrame:
    """Realized performance of the scoring days in the window before D whose labels are known by D."""
    import pandas as pd

    from nightshift.modeling.reads import read_if_exists
    from nightshift.monitoring.performance import PERFORMANCE_COLUMNS, realized_performance
    from nightshift.warehouse import predictions_table

    warehouse = _warehouse(settings)
    table = predictions_table(use_case.name)
    # the window ends on the latest day whose labels have landed: up to a horizon (and landing) before D
    first = day - timedelta(days=config.realized_window_days + use_case.horizon_days + 7)
    predictions = read_if_exists(warehouse, table, lambda: warehouse.read_range(table, "scoring_date", first,
                                                                                 day - timedelta(days=1)))
    labels = read_if_exists(warehouse, use_case.label_table,
                            lambda: warehouse.read_range(use_case.label_table, "as_of_date", first, day))
    if predictions is None or labels is None or not len(predictions):
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    predictions = predictions.astype(use_case.key_dtypes)
    labels = labels.astype(use_case.key_dtypes)
    return realized_performance(predictions, labels, reference, use_case.task, use_case.key_columns,
                                use_case=use_case.name, day=day, window_days=config.realized_window_days,
                                baselines=version_baselines(client, use_case, predictions["model_version"]))


def version_baselines(client: MlflowClient, use_case: UseCase, versions: Any) -> dict[str, dict[str, float | None]]:
    """Each version's own holdout metrics (``holdout.<metric>`` of its MLflow run): what the gate judged."""
    from nightshift.monitoring.performance import METRICS

    out = {}
    for version in sorted({str(v) for v in versions}):
        metrics = client.get_run(client.get_model_version(use_case.model_name, version).run_id).data.metrics
        out[version] = {name: metrics.get(f"holdout.{name}") for name in METRICS[use_case.task]}
    return out


def check_features(use_case: UseCase, config: MonitoringConfig, model_features: list[str], reference_columns: list[str],
                   version: str) -> None:
    """The reference holds every feature, and the features the ``monitoring:`` block names exist.

    Raises:
        DriftInputError: the version's reference lacks features (a run logged before them).
        MonitoringConfigError: ``critical_features`` or ``exclude_features`` name no feature of the
            model: a typo would silently switch a rule off.
    """
    from nightshift.monitoring.config import MonitoringConfigError
    from nightshift.monitoring.drift import DriftInputError

    lacking = [f for f in model_features if f not in reference_columns]
    if lacking:
        raise DriftInputError(
            f"{use_case.name}: the reference sample of version {version} lacks feature(s) {lacking}; it was logged "
            f"before they existed. Retrain (the `retrain_{use_case.name}` DAG) so the champion logs a full reference"
        )
    for key in ("critical_features", "exclude_features"):
        unknown = [f for f in getattr(config, key) if f not in model_features]
        if unknown:
            raise MonitoringConfigError(
                f"{use_case.path or use_case.name}: monitoring.{key} names {unknown}, which are not features of "
                f"version {version} ({', '.join(model_features)}); fix the names in the use-case file"
            )


def monitor_day(settings: Settings, use_case_name: str, day: date, *, backfill: bool = False,
                retrain_active: bool = False, s3_client: Any = None) -> dict[str, Any]:
    """Monitor D: drift, performance, the decision; write the tables and the report.

    Args:
        backfill: the monitoring run is itself a backfill (D's predictions' run id also says so).
        retrain_active: a retrain of the use case is queued or running (Airflow knows; the DAG asks).

    Returns:
        The decision (``Decision.as_dict()``) with the report's locations and row counts.

    Raises:
        DayNotScored: D has no predictions.
    """
    import pandas as pd

    from nightshift import features
    from nightshift.modeling import registry
    from nightshift.modeling.retrain import REFERENCE_ARTIFACT, load_frame
    from nightshift.monitoring.drift import drift_report
    from nightshift.monitoring.performance import estimated_performance
    from nightshift.monitoring.reports import log_report, store_report
    from nightshift.warehouse import PartitionWrite

    use_case = use_case_of(settings, use_case_name)
    config = config_of(use_case)
    scored = scored_day(settings, use_case, day)
    if scored is None:
        raise DayNotScored(f"{use_case_name}: no predictions for {day}; run the `score_{use_case_name}` DAG for it first")

    client = registry.connect(settings)
    version = client.get_model_version(use_case.model_name, scored.model_version)
    service = version.tags.get("feature_service", use_case.feature_service)
    reference = load_frame(version.run_id, REFERENCE_ARTIFACT)
    model_features = features.feature_names(settings, service)
    check_features(use_case, config, model_features, list(reference.columns), scored.model_version)
    watched = [f for f in model_features if f not in config.exclude_features]
    categorical = [c for c in use_case.training.get("categorical", []) if c in model_features]

    current = current_sample(settings, use_case, scored, day, service, config)
    drift = drift_report(current, reference, watched, [c for c in categorical if c in watched], config,
                         use_case=use_case.name, day=day,
                         current_population=len(scored.rows))
    estimated = estimated_performance(current, reference, use_case.task, model_features, categorical,
                                      use_case=use_case.name, day=day, model_version=scored.model_version,
                                      seed=config.seed)
    labeled = realized(settings, use_case, day, reference, config, client)
    performance = pd.concat([estimated, labeled], ignore_index=True) if len(labeled) else estimated

    known = model_facts(settings, use_case, client)
    facts = Facts(
        use_case=use_case.name, day=day, backfill=backfill or scored.backfill, retrain_active=retrain_active,
        request_pending=pending_request(settings, use_case, day, known["last_trained_on"], config), **known,
    )
    decision: Decision = decide(triggers(drift.rows, performance, config, use_case.task, scored.model_version),
                                facts, config)

    with tempfile.TemporaryDirectory() as tmp:
        html = drift.save_html(Path(tmp) / "drift_report.html")
        stored = store_report(settings.artifacts_uri, use_case.name, day, html, s3_client)
        logged = log_report(client, version.run_id, html, use_case.name, day)

    key = partition(use_case.name, day)
    row = decision.row()
    earlier = earlier_request(settings, use_case.name, day)
    if earlier is not None:
        # D already asked for a retrain: a rerun of D keeps that record (the retrain it started
        # would otherwise suppress it) and asks for nothing again
        row, decision = earlier, Decision(use_case.name, day, REQUESTED, list(decision.triggers), [],
                                          decision.model_version)
    _warehouse(settings).replace_partitions([
        PartitionWrite(DRIFT_DAILY, key, drift.rows.drop(columns=["use_case", "monitor_date"])),
        PartitionWrite(PERFORMANCE_DAILY, key, performance.drop(columns=["use_case", "monitor_date"])),
        PartitionWrite(RETRAIN_REQUESTS, key, row.drop(columns=["use_case", "monitor_date"])),
    ])
    drifted = drift.features[drift.features["drifted"]]
    return {
        **decision.as_dict(), "already_requested": earlier is not None,
        "report": stored, "mlflow_artifact": f"runs:/{version.run_id}/{logged}",
        "drifted_features": drifted["column_name"].tolist(), "features": int(len(drift.features)),
        "prediction_drifted": bool(drift.prediction["drifted"].any()),
        "scored_model_version": scored.model_version, "backfill": facts.backfill,
    }


def earlier_request(settings: Settings, use_case_name: str, day: date) -> pd.DataFrame | None:
    """D's ``monitoring.retrain_requests`` row when an earlier run of D requested a retrain, else None."""
    from nightshift.modeling.reads import read_if_exists

    warehouse = _warehouse(settings)
    found = read_if_exists(warehouse, RETRAIN_REQUESTS,
                           lambda: warehouse.read(RETRAIN_REQUESTS, partition(use_case_name, day)))
    if found is None or not len(found) or found["decision"].iloc[0] != REQUESTED:
        return None
    return found.reset_index(drop=True)


def first_request(decisions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The decision of a run's days that asks for a retrain (one request per run at most); a night
    that requested one in an earlier run asks for nothing again."""
    return next((d for d in decisions if d["decision"] == REQUESTED and not d.get("already_requested")), None)


def request_extra(decision: dict[str, Any]) -> dict[str, Any]:
    """What a ``retrain-request/<use case>`` event carries: the day, the reasons and their numbers."""
    keys = ("use_case", "monitor_date", "reasons", "triggers", "model_version", "report")
    return {k: decision.get(k) for k in keys}


def summary(decision: dict[str, Any]) -> str:
    """One line per day for the task log."""
    text = (f"{decision['use_case']} {decision['monitor_date']}: {decision['decision']}; "
            f"{len(decision.get('drifted_features', []))} of {decision.get('features', 0)} features drifted, "
            f"prediction drift {'yes' if decision.get('prediction_drifted') else 'no'}")
    if decision.get("reasons"):
        text += "; reasons: " + "; ".join(decision["reasons"])
    if decision.get("suppressed_by"):
        text += "; suppressed by " + ", ".join(decision["suppressed_by"])
    if decision.get("report"):
        text += f"; report {decision['report']}"
    return text
