"""Step 1 of a scoring run: which days it scores, and for each the pinned model, its feature service
and the shard count.

:func:`plans_for` resolves ``models:/<model>@champion`` to one version (pinned for the whole run: an
alias moving mid-run changes nothing), takes its feature service from the version's
``feature_service`` tag, and checks that the model's features are all in that service and that
the service has features for every day of the run. :func:`days_to_score` decides the days: every
day a run is for, except that a scheduled run is only the safety net for a day nobody scored.
Each plan carries a run key, so that two runs for the same day stage their shards apart.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from nightshift.days import end_of_day
from nightshift.settings import Settings
from nightshift.usecase import UseCase, use_case_of

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

SHADOW_ALIAS = "challenger"
#: Hours after the end of D a scheduled run waits for someone to score D (``scoring.wait_hours``).
DEFAULT_WAIT_HOURS = 12.0


class NoChampion(RuntimeError):
    """No version carries the alias scoring reads."""


class FeatureContractBroken(RuntimeError):
    """The model needs features its feature service does not serve."""


class ScoringInvariantBroken(RuntimeError):
    """scored + errors != population: an entity would be lost."""


class DayAlreadyScored(RuntimeError):
    """A scheduled run's day already has scores; the message names the run and version that wrote them."""


class DayNotScored(RuntimeError):
    """Nobody scored a day by its deadline and its features are not there: the day would be lost."""


@dataclass(frozen=True)
class ScoringPlan:
    """What one scoring run scores one day with, resolved once (XCom-friendly)."""

    use_case: str
    scoring_date: str
    alias: str
    model_name: str
    model_version: str
    feature_service: str
    features: list[str]
    shards: int
    #: Keys this run's staged shards: two runs for the same day never read each other's.
    run_key: str
    airflow_run_id: str = ""

    @property
    def day(self) -> date:
        return date.fromisoformat(self.scoring_date)

    @property
    def target(self) -> str:
        """The table this plan's scores are published to."""
        from nightshift.warehouse import predictions_table, shadow_predictions_table

        return predictions_table(self.use_case) if self.alias == "champion" else shadow_predictions_table(self.use_case)

    def staging_partition(self, shard: int | None = None) -> dict[str, Any]:
        """The staging partition of one shard of this run's day (without ``shard``: all of them)."""
        partition: dict[str, Any] = {"scoring_date": self.day, "run_key": self.run_key}
        return partition if shard is None else {**partition, "shard": shard}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_key_of(airflow_run_id: str | None, model_version: str, alias: str) -> str:
    """A short key of (Airflow run, model version, alias); a fresh random one outside Airflow.

    The same Airflow run re-planned with the same version (a retry, a cleared task) gets the
    same key, so its shards are replaced, not doubled.
    """
    if not airflow_run_id:
        return uuid.uuid4().hex[:12]
    return hashlib.sha256(f"{airflow_run_id}\n{model_version}\n{alias}".encode()).hexdigest()[:12]


def scoring_deadline(use_case: UseCase, day: date) -> datetime:
    """When a scheduled run stops waiting for someone else to score ``day``."""
    hours = float(use_case.scoring.get("wait_hours", DEFAULT_WAIT_HOURS))
    return end_of_day(day) + timedelta(hours=hours)


def _pin(settings: Settings, use_case: UseCase, alias: str) -> tuple[ModelVersion, str, list[str]] | None:
    """The version carrying ``alias``, its feature service and the features its model needs."""
    import mlflow

    from nightshift import features
    from nightshift.modeling import registry

    client = registry.connect(settings)
    version = registry.champion_version(client, use_case.model_name, alias)
    if version is None:
        if alias != "champion":
            return None
        raise NoChampion(
            f"no model has passed the gate yet for {use_case.name} (no `{alias}` alias on registered model "
            f"{use_case.model_name!r}): run the `retrain_{use_case.name}` DAG"
        )
    service = version.tags.get("feature_service")
    if not service:
        raise FeatureContractBroken(
            f"version {version.version} of {use_case.model_name} has no feature_service tag: it was not registered "
            "by Nightshift's retrain; tag it or roll back to a version that has one"
        )
    model = mlflow.lightgbm.load_model(f"models:/{use_case.model_name}/{version.version}")
    needed = model.feature_name()
    served = set(features.feature_names(settings, service))
    missing = [f for f in needed if f not in served]
    if missing:
        raise FeatureContractBroken(
            f"{use_case.model_name} version {version.version} needs features {missing} that its feature service "
            f"{service!r} does not serve: restore them in feature_repo/ or roll back the `{alias}` alias"
        )
    return version, service, needed


def plans_for(settings: Settings, use_case_name: str, days: list[date], alias: str = "champion",
              airflow_run_id: str | None = None) -> list[ScoringPlan]:
    """One plan per day (oldest first), all with the same pinned version and run key.

    Returns an empty list for the shadow alias when no version carries it.

    Raises:
        NoChampion: no model has passed the gate yet (for ``champion``).
        FeatureContractBroken: names the model's features missing from its feature service.
        FeatureDataMissing: names every day without features and the ``features`` DAG; no day is planned.
    """
    from nightshift import features

    use_case = use_case_of(settings, use_case_name)
    pinned = _pin(settings, use_case, alias)
    if pinned is None:
        return []
    version, service, needed = pinned
    wanted = sorted(set(days))
    missing = []
    for day in wanted:
        try:
            features.check_features_ready(settings, service, day, use_case.name)
        except features.FeatureDataMissing as exc:
            missing.append(str(exc))
    if len(missing) == 1 and len(wanted) == 1:
        raise features.FeatureDataMissing(missing[0])
    if missing:
        raise features.FeatureDataMissing(
            f"{len(missing)} of the {len(wanted)} days of this run ({', '.join(map(str, wanted))}) cannot be scored, "
            "so none was: " + "; ".join(missing)
        )
    run_key = run_key_of(airflow_run_id, str(version.version), alias)
    return [
        ScoringPlan(
            use_case=use_case.name,
            scoring_date=day.isoformat(),
            alias=alias,
            model_name=use_case.model_name,
            model_version=str(version.version),
            feature_service=service,
            features=needed,
            shards=max(1, int(use_case.scoring.get("shards", 1))),
            run_key=run_key,
            airflow_run_id=airflow_run_id or "",
        )
        for day in wanted
    ]


def plan(settings: Settings, use_case_name: str, day: date, alias: str = "champion",
         airflow_run_id: str | None = None) -> ScoringPlan | None:
    """The plan for scoring one ``day`` (see :func:`plans_for`); None for an unset shadow alias."""
    plans = plans_for(settings, use_case_name, [day], alias, airflow_run_id)
    return plans[0] if plans else None


def scored_by(settings: Settings, use_case_name: str, day: date, alias: str = "champion") -> dict[str, str] | None:
    """Who wrote the published scores of ``day``: their ``table``, ``airflow_run_id`` (empty outside
    Airflow), ``model_version`` and ``scored_at``; None when the day has no scores."""
    from nightshift.warehouse import TableMissing, Warehouse, predictions_table, shadow_predictions_table

    table = predictions_table(use_case_name) if alias == "champion" else shadow_predictions_table(use_case_name)
    try:
        current = Warehouse.from_uri(settings.warehouse_uri).read(table, {"scoring_date": day})
    except TableMissing:  # a failed read raises: a lost connection must never look like an unscored day
        return None
    if current.empty:
        return None

    def values(column: str) -> str:
        return ", ".join(sorted({str(v) for v in current[column].dropna() if str(v)})) if column in current else ""

    return {"table": table, "airflow_run_id": values("airflow_run_id"), "model_version": values("model_version"),
            "scored_at": values("scored_at")}


def days_to_score(settings: Settings, use_case_name: str, candidates: list[date], scheduled: bool,
                  now: datetime | None = None) -> list[date] | None:
    """The days a run scores, oldest first; None while a scheduled run should wait.

    A run triggered by ``features`` events scores every day they name (each event is a fresh
    build of that day's features, and events that arrive together are merged into one run), as
    does a run by hand or a backfill for its day. A scheduled run is the safety net for its one
    day: it waits until ``scoring.wait_hours`` after the end of D for another run to score D, then
    scores D itself if nobody did.

    Raises:
        DayAlreadyScored: (scheduled) D has scores; names the run and model version that wrote them.
        DayNotScored: (scheduled) past the deadline, D has no scores and no features; says what to run.
    """
    from nightshift import features

    if not scheduled:
        return sorted(set(candidates))
    use_case = use_case_of(settings, use_case_name)
    day = max(candidates)
    who = scored_by(settings, use_case.name, day)
    if who is not None:
        raise DayAlreadyScored(
            f"{day} is already scored for {use_case.name}: {who['table']} holds model version {who['model_version']} "
            f"from run {who['airflow_run_id'] or '(outside Airflow)'} (scored at {who['scored_at']}); this scheduled "
            "run has nothing to do"
        )
    deadline = scoring_deadline(use_case, day)
    now = now or datetime.now(timezone.utc)
    if now < deadline:
        log.info("%s %s has no scores yet: waiting until %s UTC for the run its features trigger",
                 use_case.name, day, f"{deadline:%Y-%m-%d %H:%M}")
        return None
    try:
        plans_for(settings, use_case.name, [day])
    except features.FeatureDataMissing as exc:
        raise DayNotScored(
            f"{use_case.name} {day} was not scored: no run scored it by {deadline:%Y-%m-%d %H:%M} UTC "
            f"(scoring.wait_hours after the day ended) and its features have not landed ({exc}). "
            f"Run the `features_{use_case.name}` DAG for {day} once its `ingest_<source>` runs have succeeded: its "
            f"event starts a run that scores {day}. Or, if the features are there by now, clear this task"
        ) from exc
    log.info("nobody scored %s %s by %s UTC: this scheduled run scores it", use_case.name, day,
             f"{deadline:%Y-%m-%d %H:%M}")
    return [day]
