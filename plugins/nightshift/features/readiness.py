"""Which day a features run builds, and whether a feature service has features for a day."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from nightshift.days import end_of_day
from nightshift.features.store import FeatureDataMissing, feature_store
from nightshift.settings import Settings
from nightshift.usecase import UseCase

if TYPE_CHECKING:
    import pandas as pd


def ready_days(settings: Settings, use_case: UseCase, candidates: list[date], built: date) -> list[date]:
    """The candidate days up to ``built`` whose every source has an ingested partition, oldest first.

    A features run builds every day's rows (dbt) and materializes up to ``built``; each of these
    days now has features, so the run announces them all: after a late upstream, several days
    become ready at once and each must be scored.
    """
    done = _ingested(settings)
    return sorted(day for day in set(candidates)
                  if day <= built and all((s, day.isoformat()) in done for s in use_case.sources))


def features_event(settings: Settings, use_case: UseCase, built: date, candidates: list[date]) -> dict[str, Any]:
    """The extra of the ``features/<use case>`` event: ``feature_date`` D and ``feature_dates``, D and
    every earlier candidate day that is ready too (the score DAG scores each of them)."""
    ready = {d.isoformat() for d in ready_days(settings, use_case, candidates, built)}
    return {"feature_date": built.isoformat(), "feature_dates": sorted(ready | {built.isoformat()})}


def _ingested(settings: Settings) -> set[tuple[str, str]]:
    """(source, ISO day) of every ingested partition, read once from ``meta.validation_runs``."""
    from nightshift.warehouse import VALIDATION_RUNS, TableMissing, Warehouse

    try:
        runs = Warehouse.from_uri(settings.warehouse_uri).read(VALIDATION_RUNS)
    except TableMissing:  # nothing ingested yet; a failed read is an error, never "no data"
        return set()
    return {(s, str(d)[:10]) for s, d in zip(runs["source"], runs["batch_date"], strict=True)}


def resolve_day(settings: Settings, use_case: UseCase, candidates: list[date]) -> date:
    """The latest candidate day for which every source of ``use_case`` has an ingested partition.

    Sources of one day finish ingesting at different times, so the events that trigger a run
    may name a day another source has not reached yet; an earlier complete day is then built.

    Raises:
        FeatureDataMissing: no candidate is complete; names the latest, its missing sources and
            the DAG to run.
    """
    sources = sorted(use_case.sources)
    done = _ingested(settings)
    for day in candidates:
        if all((s, day.isoformat()) in done for s in sources):
            return day
    day = candidates[0]
    missing = [s for s in sources if (s, day.isoformat()) not in done]
    raise FeatureDataMissing(
        f"no raw data for {missing} on {day} (use case {use_case.name}): run the "
        + ", ".join(f"`ingest_{source}`" for source in missing)
        + f" DAG for {day} first (or clear its failed tasks), then re-run this one"
    )


def check_features_ready(settings: Settings, feature_service: str, day: date, use_case: str = "<use case>") -> None:
    """Every feature view of ``feature_service`` has rows for ``day`` (known at its end).

    Raises:
        FeatureDataMissing: naming the views, the day and the ``features`` DAG to run.
    """
    import pandas as pd

    from nightshift.warehouse import TableMissing, Warehouse

    store = feature_store(settings)
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    wanted = pd.Timestamp(end_of_day(day)).tz_localize(None)
    stale = []
    for projection in store.get_feature_service(feature_service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        table = f"features.{view.tags.get('dbt_model', view.name)}"
        try:
            latest = warehouse.max_value(table, view.batch_source.timestamp_field)
        except TableMissing:
            latest = None
        latest = None if latest is None else pd.Timestamp(latest).tz_localize(None)
        if latest is None or latest < wanted:
            stale.append(f"{view.name} (latest {latest or 'none'})")
    if stale:
        raise FeatureDataMissing(
            f"no features for {day} in {stale}: run the `features_{use_case}` DAG for {day} first, then re-run this one"
        )


def population_of(settings: Settings, use_case: UseCase, day: date) -> pd.DataFrame:
    """Every entity of the use case's population on ``day``, once each, keys in their declared types.

    Raises:
        FeatureDataMissing: the population model has not been built, or has no row for ``day``.
    """
    from nightshift.warehouse import TableMissing, Warehouse

    try:
        rows = Warehouse.from_uri(settings.warehouse_uri).read_range(use_case.population_table, "as_of_date", day, day)
    except TableMissing as exc:
        raise FeatureDataMissing(f"population model {use_case.population_table} cannot be read ({exc}): run the "
                                 f"`features_{use_case.name}` DAG for {day} first") from exc
    if rows.empty:
        raise FeatureDataMissing(f"population model {use_case.population_table} has no entity for {day}: run the "
                                 f"`features_{use_case.name}` DAG for {day} first (it builds the population)")
    keys = use_case.key_columns
    try:
        return rows[keys].drop_duplicates().astype(use_case.key_dtypes).reset_index(drop=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"population model {use_case.population_table} on {day}: keys {use_case.keys} cannot be "
                         f"read as declared in config/{use_case.name}.yaml ({exc})") from exc
