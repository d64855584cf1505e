"""Step 3 of a scoring run: gather the run's staged shards, rank the day, replace partition D.

:func:`publish` reads only the shards staged under its plan's run key, checks scored + errors =
spine and replaces partition D of ``predictions.<use case>_daily`` (or ``_shadow``) and
``_errors`` in one write: a rerun replaces exactly D, a failure leaves the previous partition as
it was. Once published, the run's staged shards are dropped.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from nightshift.scoring.planning import ScoringInvariantBroken, ScoringPlan, plan, scored_by
from nightshift.features.readiness import population_of
from nightshift.scoring.shards import score_shard
from nightshift.settings import Settings
from nightshift.usecase import use_case_of

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


def publish(settings: Settings, scoring_plan: ScoringPlan, airflow_run_id: str | None = None) -> dict[str, Any]:
    """Gather the run's staged shards, rank the day, replace partition D of the target tables, then
    drop the run's staging. ``airflow_run_id`` defaults to the plan's.

    Raises:
        ScoringInvariantBroken: a shard is missing, or scored + errors differs from the spine.
    """
    import numpy as np
    import pandas as pd

    from nightshift.warehouse import (
        PartitionWrite, TableMissing, Warehouse, WarehouseError, prediction_errors_table, scoring_staging_tables,
    )

    use_case = use_case_of(settings, scoring_plan.use_case)
    keys = use_case.key_columns
    day = scoring_plan.day
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    staged_scores, staged_errors = scoring_staging_tables(use_case.name)
    scored, failed = [], []
    for shard in range(scoring_plan.shards):
        partition = scoring_plan.staging_partition(shard)
        try:
            scored.append(warehouse.read(staged_scores, partition))
            failed.append(warehouse.read(staged_errors, partition))
        except TableMissing as exc:  # a lost connection is not "not staged": it fails the task, which retries
            if _published_by(settings, scoring_plan, airflow_run_id):
                # a retry of a publish that wrote D and dropped the staging before its task was marked done
                return {"table": scoring_plan.target, "scoring_date": scoring_plan.scoring_date,
                        "model_version": scoring_plan.model_version, "already_published": True}
            raise ScoringInvariantBroken(
                f"shard {shard} of {scoring_plan.shards} was not scored for {day} by this run (run key "
                f"{scoring_plan.run_key}): {exc}. Re-run this run's score_shard tasks, then publish") from exc
    staging = list(scoring_plan.staging_partition(0))
    scores = pd.concat(scored, ignore_index=True).drop(columns=staging, errors="ignore").astype(use_case.key_dtypes)
    errors = pd.concat(failed, ignore_index=True).drop(columns=staging, errors="ignore").astype(use_case.key_dtypes)
    expected = len(population_of(settings, use_case, day))
    if len(scores) + len(errors) != expected or scores.duplicated(keys).any():
        raise ScoringInvariantBroken(
            f"{use_case.name} {day}: {len(scores)} scored + {len(errors)} errors != {expected} entities in the "
            "population (or an entity was scored twice); nothing was published. Re-run the scoring tasks of this run"
        )
    now = pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None)
    scores = scores.sort_values(["score", *keys], ascending=[False] + [True] * len(keys), ignore_index=True)
    rank = np.arange(1, len(scores) + 1)
    scores["decile"] = np.ceil(rank * 10 / max(len(scores), 1)).astype("int64")
    # Probability bands are for binary use cases; a regression's scores are ranked by decile only.
    bands = use_case.scoring.get("bands") if use_case.task == "binary" else None
    scores["band"] = band_of(scores["score"].to_numpy(), bands) if bands else None
    lineage = {
        "model_name": scoring_plan.model_name,
        "model_version": scoring_plan.model_version,
        "feature_service": scoring_plan.feature_service,
        "airflow_run_id": airflow_run_id or scoring_plan.airflow_run_id,
    }
    scores = scores.assign(**lineage, scored_at=now).astype({c: "string" for c in [*lineage, "band"]})
    errors = errors.assign(alias=scoring_plan.alias, **lineage, scored_at=now).astype({c: "string" for c in [*lineage, "alias"]})
    partition = {"scoring_date": day}
    writes = [PartitionWrite(scoring_plan.target, partition, scores)]
    if scoring_plan.alias == "champion":
        writes.append(PartitionWrite(prediction_errors_table(use_case.name), partition, errors))
    warehouse.replace_partitions(writes)
    for table in (staged_scores, staged_errors):
        try:
            warehouse.drop_partitions(table, scoring_plan.staging_partition())
        except (OSError, WarehouseError) as exc:  # published already: a leftover must not fail the run
            log.warning("published %s %s, but could not drop its staging in %s (%s): delete partition %s by hand",
                        use_case.name, day, table, exc, scoring_plan.staging_partition())
    return {"table": scoring_plan.target, "scoring_date": scoring_plan.scoring_date, "scored": int(len(scores)),
            "errors": int(len(errors)), "spine": expected, "model_version": scoring_plan.model_version}


def _published_by(settings: Settings, scoring_plan: ScoringPlan, airflow_run_id: str | None) -> bool:
    """Partition D of the plan's table was written by this very Airflow run and model version."""
    run_id = airflow_run_id or scoring_plan.airflow_run_id
    who = scored_by(settings, scoring_plan.use_case, scoring_plan.day, scoring_plan.alias)
    return bool(run_id) and who is not None and (who["airflow_run_id"], who["model_version"]) == (
        run_id, scoring_plan.model_version)


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
    scoring_plan = plan(settings, use_case_name, day, alias, airflow_run_id)
    if scoring_plan is None:
        return None
    for shard in range(scoring_plan.shards):
        score_shard(settings, scoring_plan, shard)
    return publish(settings, scoring_plan)
