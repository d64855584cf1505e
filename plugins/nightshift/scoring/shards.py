"""Step 2 of a scoring run: score one shard of D's spine, chunk by chunk, and stage the result
under the run's key (:meth:`~nightshift.scoring.planning.ScoringPlan.staging_partition`).

Features come through :func:`nightshift.features.training_frame`, the same point-in-time path
training used; LightGBM scores with its native missing-value handling.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from nightshift.features.readiness import population_of
from nightshift.scoring.planning import ScoringPlan
from nightshift.settings import Settings
from nightshift.usecase import use_case_of

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def shard_of(keys: pd.DataFrame, shards: int) -> np.ndarray:
    """The shard of each entity: a stable hash of its keys (the same on every machine and run) mod ``shards``."""
    import numpy as np
    import pandas as pd

    hashed = pd.util.hash_pandas_object(keys.reset_index(drop=True), index=False).to_numpy()
    return (hashed % np.uint64(shards)).astype("int64")


def score_shard(settings: Settings, scoring_plan: ScoringPlan, shard: int) -> dict[str, int]:
    """Score one shard of D's spine in chunks and stage the result; returns its counts."""
    import mlflow
    import pandas as pd

    from nightshift import features
    from nightshift.days import end_of_day
    from nightshift.modeling import inputs, registry
    from nightshift.warehouse import PartitionWrite, Warehouse, scoring_staging_tables

    use_case = use_case_of(settings, scoring_plan.use_case)
    keys = use_case.key_columns
    day = scoring_plan.day
    everyone = population_of(settings, use_case, day)
    mine = everyone[shard_of(everyone, scoring_plan.shards) == shard].reset_index(drop=True)

    registry.connect(settings)  # a mapped task is a fresh process: point MLflow at the profile's registry
    model = mlflow.lightgbm.load_model(f"models:/{scoring_plan.model_name}/{scoring_plan.model_version}")
    categorical = [c for c in use_case.training.get("categorical", []) if c in scoring_plan.features]
    chunk_rows = int(use_case.scoring.get("chunk_rows", 200_000))
    timestamp = pd.Timestamp(end_of_day(day))
    scored, errors = [], []
    for start in range(0, len(mine), chunk_rows):
        chunk = mine.iloc[start:start + chunk_rows].assign(**{features.EVENT_TIMESTAMP: timestamp})
        frame = features.training_frame(settings, scoring_plan.feature_service, chunk)
        missing = frame[scoring_plan.features].isna().sum(axis=1).to_numpy()
        unscorable = missing == len(scoring_plan.features)
        if unscorable.any():
            errors.append(frame.loc[unscorable, keys].assign(
                reason=f"no feature of {scoring_plan.feature_service} is known for it as of the end of {day}"))
        rows = frame[~unscorable]
        if len(rows):
            scores = model.predict(inputs.model_input(rows, scoring_plan.features, categorical))
            scored.append(rows[keys].assign(score=scores, features_missing=missing[~unscorable].astype("int64")))
    empty = mine.iloc[:0]
    result = pd.concat(scored, ignore_index=True) if scored else empty.assign(
        score=pd.Series(dtype="float64"), features_missing=pd.Series(dtype="int64"))
    failed = pd.concat(errors, ignore_index=True) if errors else empty.assign(reason=pd.Series(dtype="string"))
    staged_scores, staged_errors = scoring_staging_tables(use_case.name)
    partition = scoring_plan.staging_partition(shard)  # keyed by the run: another run's shards stay apart
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions([
        PartitionWrite(staged_scores, partition, result.astype(use_case.key_dtypes)),
        PartitionWrite(staged_errors, partition, failed.astype({**use_case.key_dtypes, "reason": "string"})),
    ])
    return {"shard": shard, "scored": int(len(result)), "errors": int(len(failed))}
