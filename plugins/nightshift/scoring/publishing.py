"""Step 3 of a scoring run: gather the staged shards, rank the day, replace partition D.

:func:`publish` checks scored + errors = spine and replaces partition D of
``predictions.daily`` (or ``predictions.shadow``) and ``predictions.errors`` in one write: a
rerun replaces exactly D, a failure leaves the previous partition as it was.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from nightshift.scoring.planning import ScoringInvariantBroken, ScoringPlan, plan
from nightshift.scoring.shards import score_shard, spine
from nightshift.settings import Settings
from nightshift.usecase import use_case_of

if TYPE_CHECKING:
    import numpy as np


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

    use_case = use_case_of(settings, scoring_plan.use_case)
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
