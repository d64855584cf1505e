"""Step 2 of a scoring run: score one shard of D's spine, chunk by chunk, and stage the result.

Features come through :func:`nightshift.features.training_frame`, the same point-in-time path
training used; LightGBM scores with its native missing-value handling.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from nightshift.scoring.planning import ScoringPlan
from nightshift.settings import Settings
from nightshift.usecase import UseCase, use_case_of

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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
    import pandas as pd

    from nightshift import features
    from nightshift.modeling import inputs, registry
    from nightshift.days import end_of_day
    from nightshift.warehouse import SCORING_ERRORS_STAGING, SCORING_STAGING, PartitionWrite, Warehouse

    use_case = use_case_of(settings, scoring_plan.use_case)
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
        chunk = pd.DataFrame({key: mine[start:start + chunk_rows], features.EVENT_TIMESTAMP: timestamp})
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
            scores = model.predict(inputs.model_input(rows, scoring_plan.features, categorical))
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
