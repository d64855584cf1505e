"""Training/serving skew: online values against offline point-in-time values for a sample."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from nightshift.days import end_of_day
from nightshift.features.store import feature_store
from nightshift.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


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
    #: the moment both sides were read as of: the end of the check date, or the online store's
    #: materialized end when it holds a later day
    compared_as_of: str = ""


def check_skew(settings: Settings, use_case_name: str, day: date, seed: int = 0) -> SkewReport:
    """Compare online values with offline point-in-time values, like with like.

    Both sides are read as of the online store's materialized time: the end of ``day``, or a
    later end when the online store already holds a later day (a run for a past day, after its
    batch was ingested again, re-materializes up to that later day and never moves the online
    store back). A sample of the population of the day compared is read both ways, through the
    use case's feature service. Per-feature mismatch counts go to ``monitoring.feature_skew``
    (partition: use case and ``day``; ``compared_as_of`` says which moment was compared); above
    ``thresholds.skew_max_mismatch_rate`` the check fails, naming the features and entities.
    """
    import numpy as np
    import pandas as pd

    from nightshift.features.readiness import population_of
    from nightshift.features.store import materialized_until
    from nightshift.usecase import use_case_of
    from nightshift.warehouse import FEATURE_SKEW, PartitionWrite, Warehouse

    use_case = use_case_of(settings, use_case_name)
    sample_size = int(use_case.thresholds.get("skew_sample_size", 200))
    max_rate = float(use_case.thresholds.get("skew_max_mismatch_rate", 0.0))
    keys = use_case.key_columns
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    store = feature_store(settings)
    service = store.get_feature_service(use_case.feature_service)
    as_of = max(end_of_day(day), materialized_until(store, [p.name for p in service.feature_view_projections])
                or end_of_day(day))
    compared_day = (as_of - timedelta(microseconds=1)).date()
    if compared_day != day:
        log.info("skew check for %s on %s: the online store holds %s (materialized to %s); comparing as of then",
                 use_case_name, day, compared_day, as_of)
    population = population_of(settings, use_case, compared_day)
    rng = np.random.default_rng([seed, day.toordinal()])
    picked = np.sort(rng.choice(len(population), size=min(sample_size, len(population)), replace=False))
    sample = population.iloc[picked].sort_values(keys, ignore_index=True)
    index = pd.MultiIndex.from_frame(sample) if len(keys) > 1 else pd.Index(sample[keys[0]])

    names = [f.name for p in service.feature_view_projections for f in p.features]
    entity_rows = [{k: _native(v) for k, v in row.items()} for row in sample.to_dict("records")]
    online = store.get_online_features(features=service, entity_rows=entity_rows).to_df()
    spine = sample.assign(event_timestamp=pd.Timestamp(as_of))
    offline = store.get_historical_features(entity_df=spine, features=service).to_df()
    online = online.astype(use_case.key_dtypes).set_index(keys).loc[index, names]
    offline = offline.astype(use_case.key_dtypes).set_index(keys).loc[index, names]

    mismatch = pd.DataFrame({name: ~_same(online[name], offline[name]).to_numpy() for name in names}, index=index)
    by_feature = {name: int(mismatch[name].sum()) for name in names}
    bad_entities = [_label(i) for i in mismatch.index[mismatch.any(axis=1)]]
    sampled = len(sample)
    rate = len(bad_entities) / sampled if sampled else 0.0
    rows = pd.DataFrame(
        {
            "feature": names,
            "sampled": sampled,
            "mismatches": [by_feature[n] for n in names],
            "mismatch_rate": [by_feature[n] / sampled if sampled else 0.0 for n in names],
            "example_entities": [
                ",".join(_label(i) for i in mismatch.index[mismatch[n].to_numpy()][:10]) for n in names
            ],
            "compared_as_of": pd.Timestamp(as_of).tz_localize(None),
        }
    )
    warehouse.replace_partitions([PartitionWrite(FEATURE_SKEW, {"use_case": use_case_name, "check_date": day}, rows)])
    report = SkewReport(use_case_name, day.isoformat(), sampled, len(bad_entities), rate, by_feature, as_of.isoformat())
    if rate > max_rate:
        skewed = sorted(n for n, c in by_feature.items() if c)
        raise SkewDetected(
            f"training/serving skew for {use_case_name} on {day}: {len(bad_entities)} of {sampled} sampled "
            f"entities ({rate:.1%}, threshold {max_rate:.1%}) have online values that differ from "
            f"the offline point-in-time values as of {as_of.isoformat()}; features {skewed}; "
            f"entities {bad_entities[:20]}. "
            "Re-run materialization for this day and look for writes to the online store outside Feast"
        )
    return report


def _native(value: object) -> object:
    """A key value as Feast's online read wants it (a Python int or str, not a numpy scalar)."""
    return value.item() if hasattr(value, "item") else value


def _label(index_value: object) -> str:
    """One entity's keys as text: ``42`` or ``S001|P0012``."""
    parts = index_value if isinstance(index_value, tuple) else (index_value,)
    return "|".join(str(_native(p)) for p in parts)


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
