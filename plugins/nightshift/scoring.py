"""Nightly batch scoring: every active customer of day D, by the champion, into tables analysts read.

A scoring run is three steps, so that it can fan out over workers:

1. :func:`plan` resolves ``models:/<model>@champion`` to one version (pinned for the whole run:
   an alias moving mid-run changes nothing), takes its feature service from the version's
   ``feature_service`` tag, checks that the model's features are all in that service and that
   the service has features for D.
2. :func:`score_shard` scores the customers whose stable id hash falls in one shard (all of
   them when there is one shard), chunk by chunk: features through
   :func:`nightshift.features.training_frame` (the same point-in-time path training used), then
   LightGBM with its native missing-value handling. Results are staged per shard.
3. :func:`publish` gathers the staged shards, ranks the day (decile, band), checks
   scored + errors = spine, and replaces partition D of ``predictions.daily`` (or
   ``predictions.shadow``) and ``predictions.errors`` in one write: a rerun replaces exactly
   D, a failure leaves the previous partition as it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from nightshift.settings import Settings
from nightshift.usecase import UseCase

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SHADOW_ALIAS = "challenger"


class NoChampion(RuntimeError):
    """No version carries the alias scoring reads."""


class FeatureContractBroken(RuntimeError):
    """The model needs features its feature service does not serve."""


class ScoringInvariantBroken(RuntimeError):
    """scored + errors != spine: a customer would be lost."""


@dataclass(frozen=True)
class ScoringPlan:
    """What one scoring run scores with, resolved once (XCom-friendly)."""

    use_case: str
    scoring_date: str
    alias: str
    model_name: str
    model_version: str
    feature_service: str
    features: list[str]
    shards: int

    @property
    def day(self) -> date:
        return date.fromisoformat(self.scoring_date)

    @property
    def target(self) -> str:
        """The table this plan's scores are published to."""
        from nightshift.warehouse import PREDICTIONS, SHADOW_PREDICTIONS

        return PREDICTIONS if self.alias == "champion" else SHADOW_PREDICTIONS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _use_case(settings: Settings, name: str) -> UseCase:
    from nightshift.retrain import use_case_of

    return use_case_of(settings, name)


def plan(settings: Settings, use_case_name: str, day: date, alias: str = "champion") -> ScoringPlan | None:
    """Resolve the model, its feature service and the shard count for scoring ``day``.

    Returns None for the shadow alias when no version carries it.

    Raises:
        NoChampion: no model has passed the gate (for ``champion``).
        FeatureContractBroken: names the model's features missing from its feature service.
        FeatureDataMissing: names D and the ``features`` DAG.
    """
    import mlflow

    from nightshift import features, registry

    use_case = _use_case(settings, use_case_name)
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
    features.check_features_ready(settings, service, day)
    return ScoringPlan(
        use_case=use_case.name,
        scoring_date=day.isoformat(),
        alias=alias,
        model_name=use_case.model_name,
        model_version=str(version.version),
        feature_service=service,
        features=needed,
        shards=max(1, int(use_case.scoring.get("shards", 1))),
    )


def already_published(settings: Settings, scoring_plan: ScoringPlan) -> bool:
    """Partition D of the plan's table holds scores of the plan's model version."""
    from nightshift.warehouse import Warehouse, WarehouseError

    try:
        current = Warehouse.from_uri(settings.warehouse_uri).read(
            scoring_plan.target, {"use_case": scoring_plan.use_case, "scoring_date": scoring_plan.day})
    except WarehouseError:
        return False
    return len(current) > 0 and set(current["model_version"].astype(str)) == {scoring_plan.model_version}


def shard_of(ids: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each entity id: a stable hash (the same on every machine and run) mod ``shards``."""
    import numpy as np
    import pandas as pd

    return (pd.util.hash_array(np.asarray(ids, dtype="int64")) % np.uint64(shards)).astype("int64")


def spine(settings: Settings, use_case: UseCase, day: date) -> pd.DataFrame:
    """Every active entity of ``day`` (from the use case's ``entity_source`` partition), once each."""
    import pandas as pd

    from nightshift.warehouse import Warehouse, WarehouseError, raw_table

    try:
        active = Warehouse.from_uri(settings.warehouse_uri).read(raw_table(use_case.entity_source), {"batch_date": day})
    except WarehouseError as exc:
        from nightshift.features import FeatureDataMissing

        raise FeatureDataMissing(
            f"no {use_case.entity_source} partition for {day}: run the `ingest` DAG for {day} first ({exc})"
        ) from exc
    ids = pd.Series(active[use_case.entity_key]).drop_duplicates()
    return pd.DataFrame({use_case.entity_key: ids.to_numpy()})


def score_shard(settings: Settings, scoring_plan: ScoringPlan, shard: int) -> dict[str, int]:
    """Score one shard of D's spine in chunks and stage the result; returns its counts."""
    import mlflow
    import numpy as np
    import pandas as pd

    from nightshift import features, registry, training
    from nightshift.features import end_of_day
    from nightshift.warehouse import SCORING_ERRORS_STAGING, SCORING_STAGING, PartitionWrite, Warehouse

    use_case = _use_case(settings, scoring_plan.use_case)
    key = use_case.entity_key
    day = scoring_plan.day
    everyone = spine(settings, use_case, day)
    ids = everyone[key]
    valid = pd.to_numeric(ids, errors="coerce").notna()
    errors = [pd.DataFrame({key: ids[~valid].astype("string"), "reason": f"{key} is not an integer id"})]
    ids = ids[valid].astype("int64")
    mine = ids[shard_of(ids.to_numpy(), scoring_plan.shards) == shard].to_numpy()

    registry.connect(settings)  # a mapped task is a fresh process: point MLflow at the profile's registry
    model = mlflow.lightgbm.load_model(f"models:/{scoring_plan.model_name}/{scoring_plan.model_version}")
    categorical = [c for c in use_case.training.get("categorical", []) if c in scoring_plan.features]
    chunk_rows = int(use_case.scoring.get("chunk_rows", 200_000))
    timestamp = pd.Timestamp(end_of_day(day))
    scored = []
    for start in range(0, len(mine), chunk_rows):
        chunk = pd.DataFrame({key: mine[start:start + chunk_rows], training.EVENT_TIMESTAMP: timestamp})
        frame = features.training_frame(settings, scoring_plan.feature_service, chunk)
        missing = frame[scoring_plan.features].isna().sum(axis=1).to_numpy()
        unscorable = missing == len(scoring_plan.features)
        if unscorable.any():
            errors.append(pd.DataFrame({
                key: frame.loc[unscorable, key].astype("string"),
                "reason": f"no feature of {scoring_plan.feature_service} is known for it as of the end of {day}",
            }))
        rows = frame[~unscorable]
        if len(rows):
            scores = model.predict(training.model_input(rows, scoring_plan.features, categorical))
            scored.append(pd.DataFrame({key: rows[key].to_numpy(), "score": scores,
                                        "features_missing": missing[~unscorable].astype("int64")}))
    result = pd.concat(scored, ignore_index=True) if scored else pd.DataFrame(
        {key: pd.Series(dtype="int64"), "score": pd.Series(dtype="float64"), "features_missing": pd.Series(dtype="int64")})
    failed = pd.concat(errors, ignore_index=True)
    if shard != 0:
        failed = failed[failed["reason"] != f"{key} is not an integer id"]  # counted once, by shard 0
    partition = {"use_case": scoring_plan.use_case, "scoring_date": day, "alias": scoring_plan.alias, "shard": shard}
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions([
        PartitionWrite(SCORING_STAGING, partition, result),
        PartitionWrite(SCORING_ERRORS_STAGING, partition, failed.astype({key: "string", "reason": "string"})),
    ])
    return {"shard": shard, "scored": int(len(result)), "errors": int(len(failed))}


def publish(settings: Settings, scoring_plan: ScoringPlan, airflow_run_id: str | None = None) -> dict[str, Any]:
    """Gather the staged shards, rank the day and replace partition D of the target tables.

    Raises:
        ScoringInvariantBroken: a shard is missing, or scored + errors differs from the spine.
    """
    import numpy as np
    import pandas as pd

    from nightshift.warehouse import (
        PREDICTION_ERRORS, SCORING_ERRORS_STAGING, SCORING_STAGING, PartitionWrite, Warehouse, WarehouseError,
    )

    use_case = _use_case(settings, scoring_plan.use_case)
    key = use_case.entity_key
    day = scoring_plan.day
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    scored, failed = [], []
    for shard in range(scoring_plan.shards):
        partition = {"use_case": scoring_plan.use_case, "scoring_date": day, "alias": scoring_plan.alias, "shard": shard}
        try:
            scored.append(warehouse.read(SCORING_STAGING, partition))
            failed.append(warehouse.read(SCORING_ERRORS_STAGING, partition))
        except WarehouseError as exc:
            raise ScoringInvariantBroken(f"shard {shard} of {scoring_plan.shards} was not scored for {day}: {exc}") from exc
    staging = ["use_case", "scoring_date", "alias", "shard"]
    scores = pd.concat(scored, ignore_index=True).drop(columns=staging, errors="ignore")
    errors = pd.concat(failed, ignore_index=True).drop(columns=staging, errors="ignore")
    expected = len(spine(settings, use_case, day))
    if len(scores) + len(errors) != expected or scores[key].duplicated().any():
        raise ScoringInvariantBroken(
            f"{use_case.name} {day}: {len(scores)} scored + {len(errors)} errors != {expected} customers in the spine "
            "(or a customer was scored twice); nothing was published. Re-run the scoring tasks of this run"
        )
    now = pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None)
    scores = scores.sort_values(["score", key], ascending=[False, True], ignore_index=True)
    rank = np.arange(1, len(scores) + 1)
    scores["decile"] = np.ceil(rank * 10 / max(len(scores), 1)).astype("int64")
    scores["band"] = band_of(scores["score"].to_numpy(), use_case.scoring.get("bands", {"high": 0.3, "medium": 0.1, "low": 0.0}))
    lineage = {
        "model_name": scoring_plan.model_name,
        "model_version": scoring_plan.model_version,
        "feature_service": scoring_plan.feature_service,
        "airflow_run_id": airflow_run_id or "",
    }
    scores = scores.assign(**lineage, scored_at=now).astype({c: "string" for c in [*lineage, "band"]})
    errors = errors.assign(alias=scoring_plan.alias, **lineage, scored_at=now).astype({c: "string" for c in [*lineage, "alias"]})
    partition = {"use_case": scoring_plan.use_case, "scoring_date": day}
    writes = [PartitionWrite(scoring_plan.target, partition, scores)]
    if scoring_plan.alias == "champion":
        writes.append(PartitionWrite(PREDICTION_ERRORS, partition, errors))
    warehouse.replace_partitions(writes)
    return {"table": scoring_plan.target, "scoring_date": scoring_plan.scoring_date, "scored": int(len(scores)),
            "errors": int(len(errors)), "spine": expected, "model_version": scoring_plan.model_version}


def band_of(scores: np.ndarray, bands: dict[str, float]) -> np.ndarray:
    """The name of the highest band whose lower bound each score reaches."""
    import numpy as np

    ordered = sorted(bands.items(), key=lambda item: item[1], reverse=True)
    out = np.full(len(scores), ordered[-1][0], dtype=object)
    for name, lower in reversed(ordered):
        out[scores >= lower] = name
    return out


def score_day(settings: Settings, use_case_name: str, day: date, alias: str = "champion",
              airflow_run_id: str | None = None) -> dict[str, Any] | None:
    """All three steps in one process (tests, the benchmark, a shell); None if ``alias`` is unset."""
    scoring_plan = plan(settings, use_case_name, day, alias)
    if scoring_plan is None:
        return None
    for shard in range(scoring_plan.shards):
        score_shard(settings, scoring_plan, shard)
    return publish(settings, scoring_plan, airflow_run_id)
