"""Training/serving skew: online values against offline point-in-time values for a sample."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from nightshift.days import end_of_day
from nightshift.features.store import feature_store
from nightshift.settings import Settings

if TYPE_CHECKING:
    import pandas as pd


class SkewDetected(RuntimeError):
    """Online values differ from the offline point-in-time values beyond the threshold."""


@dataclass(frozen=True)
class SkewReport:
    """The outcome of one skew check."""

    use_case: str
    check_date: str
    sampled: int
    mismatched_entities: int
    mismatch_rate: float
    mismatches_by_feature: dict[str, int]


def check_skew(settings: Settings, use_case_name: str, day: date, seed: int = 0) -> SkewReport:
    """Compare online values with offline point-in-time values at the end of ``day``.

    A sample of the entities in that day's spine is read both ways, through the use case's
    feature service. Per-feature mismatch counts go to ``monitoring.feature_skew`` (partition:
    use case and day); above ``thresholds.skew_max_mismatch_rate`` the check fails, naming
    the features and entities.
    """
    import numpy as np
    import pandas as pd

    from nightshift.usecase import load_use_cases
    from nightshift.warehouse import FEATURE_SKEW, PartitionWrite, Warehouse, raw_table

    use_case = load_use_cases(settings.config_dir)[use_case_name]
    sample_size = int(use_case.thresholds.get("skew_sample_size", 200))
    max_rate = float(use_case.thresholds.get("skew_max_mismatch_rate", 0.0))
    key = use_case.entity_key
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    spine_ids = warehouse.read(raw_table(use_case.entity_source), {"batch_date": day})[key].dropna().unique()
    rng = np.random.default_rng([seed, day.toordinal()])
    ids = sorted(rng.choice(spine_ids, size=min(sample_size, len(spine_ids)), replace=False).tolist())

    store = feature_store(settings)
    service = store.get_feature_service(use_case.feature_service)
    names = [f.name for p in service.feature_view_projections for f in p.features]
    online = store.get_online_features(features=service, entity_rows=[{key: int(i)} for i in ids]).to_df()
    spine = pd.DataFrame({key: ids, "event_timestamp": pd.Timestamp(end_of_day(day))})
    offline = store.get_historical_features(entity_df=spine, features=service).to_df()
    online = online.set_index(key).loc[ids, names]
    offline = offline.set_index(key).loc[ids, names]

    mismatch = pd.DataFrame({name: ~_same(online[name], offline[name]) for name in names}, index=ids)
    by_feature = {name: int(mismatch[name].sum()) for name in names}
    bad_entities = [int(i) for i in mismatch.index[mismatch.any(axis=1)]]
    rate = len(bad_entities) / len(ids) if ids else 0.0
    rows = pd.DataFrame(
        {
            "feature": names,
            "sampled": len(ids),
            "mismatches": [by_feature[n] for n in names],
            "mismatch_rate": [by_feature[n] / len(ids) if ids else 0.0 for n in names],
            "example_entities": [
                ",".join(str(int(i)) for i in mismatch.index[mismatch[n]][:10]) for n in names
            ],
        }
    )
    warehouse.replace_partitions([PartitionWrite(FEATURE_SKEW, {"use_case": use_case_name, "check_date": day}, rows)])
    report = SkewReport(use_case_name, day.isoformat(), len(ids), len(bad_entities), rate, by_feature)
    if rate > max_rate:
        skewed = sorted(n for n, c in by_feature.items() if c)
        raise SkewDetected(
            f"training/serving skew for {use_case_name} on {day}: {len(bad_entities)} of {len(ids)} sampled "
            f"{use_case.entity}s ({rate:.1%}, threshold {max_rate:.1%}) have online values that differ from "
            f"the offline point-in-time values; features {skewed}; entities {bad_entities[:20]}. "
            "Re-run materialization for this day and look for writes to the online store outside Feast"
        )
    return report


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality where null == null and numbers compare with a tiny tolerance."""
    import numpy as np
    import pandas as pd

    both_null = a.isna().to_numpy() & b.isna().to_numpy()
    numeric_a, numeric_b = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    if numeric_a.notna().sum() == a.notna().sum() and numeric_b.notna().sum() == b.notna().sum():
        equal = np.isclose(numeric_a.to_numpy(dtype=float), numeric_b.to_numpy(dtype=float), rtol=1e-9, atol=1e-9)
    else:
        equal = (a.astype(object).to_numpy() == b.astype(object).to_numpy())
    return pd.Series(both_null | equal, index=a.index)
