"""Which day a features run builds, and whether a feature service has features for a day."""

from __future__ import annotations

from datetime import date

from nightshift.days import end_of_day
from nightshift.features.store import FeatureDataMissing, feature_store
from nightshift.settings import Settings


def resolve_day(settings: Settings, candidates: list[date]) -> date:
    """The latest candidate day for which every landed source has an ingested partition.

    Sources of one day finish ingesting at different times, so the events that trigger a run
    may name a day another source has not reached yet; an earlier complete day is then built.

    Raises:
        FeatureDataMissing: no candidate is complete; names the latest, its missing sources and
            the DAG to run.
    """
    from nightshift.usecase import all_sources, load_use_cases
    from nightshift.warehouse import VALIDATION_RUNS, Warehouse, WarehouseError

    sources = sorted(all_sources(load_use_cases(settings.config_dir)))
    try:
        runs = Warehouse.from_uri(settings.warehouse_uri).read(VALIDATION_RUNS)
        done = {(s, str(d)[:10]) for s, d in zip(runs["source"], runs["batch_date"], strict=True)}
    except WarehouseError:
        done = set()
    for day in candidates:
        if all((s, day.isoformat()) in done for s in sources):
            return day
    day = candidates[0]
    missing = [s for s in sources if (s, day.isoformat()) not in done]
    raise FeatureDataMissing(
        f"no raw data for {missing} on {day}: run the `ingest` DAG for {day} first "
        "(or clear its failed tasks), then re-run this one"
    )


def check_features_ready(settings: Settings, feature_service: str, day: date) -> None:
    """Every feature view of ``feature_service`` has rows for ``day`` (known at its end).

    Raises:
        FeatureDataMissing: naming the views, the day and the ``features`` DAG to run.
    """
    import pandas as pd

    from nightshift.warehouse import Warehouse, WarehouseError

    store = feature_store(settings)
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    wanted = pd.Timestamp(end_of_day(day)).tz_localize(None)
    stale = []
    for projection in store.get_feature_service(feature_service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        table = f"features.{view.tags.get('dbt_model', view.name)}"
        try:
            latest = warehouse.max_value(table, view.batch_source.timestamp_field)
        except WarehouseError:
            latest = None
        latest = None if latest is None else pd.Timestamp(latest).tz_localize(None)
        if latest is None or latest < wanted:
            stale.append(f"{view.name} (latest {latest or 'none'})")
    if stale:
        raise FeatureDataMissing(
            f"no features for {day} in {stale}: run the `features` DAG for {day} first, then re-run this one"
        )
