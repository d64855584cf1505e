"""Features: the Feast store of a profile, applying the definitions, materializing, and
point-in-time training sets.

Training and nightly scoring both get features through :func:`training_frame` (Feast's
historical retrieval, pushed down to DuckDB's ASOF JOIN in the embedded profile by
:mod:`nightshift.feast_offline`), and the online store is filled by
:func:`materialize` through Feast's batch engine (:mod:`nightshift.feast_engine`). No
feature is computed anywhere else.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nightshift.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

log = logging.getLogger(__name__)
FEATURE_REPO = PROJECT_ROOT / "feature_repo"
DBT_PROJECT = PROJECT_ROOT / "dbt"
#: dbt models tagged `scoring` (predictions staging and marts) are built by the score DAG; the
#: features DAG builds everything else.
DBT_FEATURES_BUILD = ["build", "--exclude", "tag:scoring"]
DBT_SCORING_BUILD = ["build", "--select", "tag:scoring"]


class FeatureDataMissing(RuntimeError):
    """The inputs for the day are not there; the message names the DAG to run first."""


def end_of_day(day: date) -> datetime:
    """The moment day ``day``'s features become known (and are materialized up to)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)


def feature_store(settings: Settings, repo_path: Path = FEATURE_REPO) -> FeatureStore:
    """The Feast store of the active profile, with ``${…}`` filled in from ``settings``."""
    import os

    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    variables = {**os.environ, **settings.profile_variables()}
    text = string.Template(settings.feature_store_yaml.read_text()).substitute(variables)
    config = yaml.safe_load(text)
    (settings.home / "feast").mkdir(parents=True, exist_ok=True)
    return FeatureStore(config=RepoConfig(repo_path=repo_path, **config), repo_path=str(repo_path))


def apply_definitions(settings: Settings, repo_path: Path = FEATURE_REPO) -> list[str]:
    """``feast apply`` on ``repo_path``; returns the feature views now in the registry.

    Every declared field is checked against its source's columns first, so a definition that
    names a column no dbt model provides fails here, before the registry changes and before
    anything is materialized.
    """
    from feast.repo_operations import apply_total_with_repo_instance

    store = feature_store(settings, repo_path)
    repo = parse_definitions(repo_path)
    validate_schemas(store, repo.feature_views)
    apply_total_with_repo_instance(store, store.config.project, store.registry, repo, skip_source_validation=False)
    return sorted(fv.name for fv in store.list_feature_views())


def parse_definitions(repo_path: Path) -> Any:
    """Feast's ``parse_repo`` on ``repo_path``, importing its modules afresh.

    Feast imports repo files as modules named after their path relative to the working
    directory, so this runs it from inside the repo, and forgets modules of an earlier parse
    (a test may apply a modified copy of the repo in the same process).
    """
    import contextlib
    import importlib
    import sys

    from feast.repo_operations import parse_repo

    repo_path = repo_path.resolve()
    local_modules = {p.stem for p in repo_path.glob("*.py")}
    for name in local_modules:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    sys.path.insert(0, str(repo_path))
    try:
        with contextlib.chdir(repo_path):
            return parse_repo(repo_path)
    finally:
        sys.path.remove(str(repo_path))


def validate_schemas(store: FeatureStore, feature_views: Any) -> None:
    """Every declared field must be a column of its source.

    Feast itself accepts such a view at apply time and fails only when it is read or
    materialized; this check makes the mistake fail at apply time, naming the field.
    """
    for fv in feature_views:
        source = fv.batch_source
        try:
            columns = {name for name, _ in source.get_table_column_names_and_types(store.config)}
        except Exception as exc:  # noqa: BLE001 - Feast raises a different type per source kind
            raise FeatureDataMissing(
                f"feature view {fv.name!r}: cannot read its source {source.name!r} ({_where(source)}): {exc}. "
                "Build the feature tables first (the `features` DAG's dbt step, or `dbt build`)"
            ) from exc
        wanted = {source.field_mapping.get(f.name, f.name) for f in fv.schema} | {source.timestamp_field}
        if source.created_timestamp_column:
            wanted.add(source.created_timestamp_column)
        wanted |= set(fv.join_keys)
        missing = sorted(wanted - columns)
        if missing:
            raise ValueError(
                f"feature view {fv.name!r}: field(s) {missing} are not columns of its source {source.name!r} "
                f"({_where(source)}). Add them to the dbt model or remove them from feature_repo/definitions.py"
            )


def _where(source: Any) -> str:
    return getattr(source, "path", None) or getattr(source, "query", None) or source.name


#: dbt model folders whose models are external Parquet tables in the embedded profile.
EXTERNAL_SCHEMAS = ("features", "marts")


def external_tables(project_dir: Path = DBT_PROJECT) -> list[str]:
    """``schema.model`` of every dbt model written as an external table (features and marts)."""
    return [
        f"{schema}.{model.stem}"
        for schema in EXTERNAL_SCHEMAS
        for model in sorted((project_dir / "models" / schema).glob("*.sql"))
    ]


def prepare_dbt_tables(settings: Settings, project_dir: Path = DBT_PROJECT) -> None:
    """Create the folder of each external model's Parquet file (embedded profile only).

    dbt-duckdb writes an external model with DuckDB's COPY, which does not create folders.
    """
    if settings.profile != "embedded":
        return
    for table in external_tables(project_dir):
        (settings.warehouse_dir / "tables" / Path(*table.split("."))).mkdir(parents=True, exist_ok=True)


def publish_dbt_tables(settings: Settings, project_dir: Path = DBT_PROJECT) -> list[str]:
    """Make each built feature and mart model queryable as ``<schema>.<model>`` in the warehouse
    catalog (embedded profile: a view over the Parquet file dbt wrote; Postgres has the tables)."""
    from nightshift.warehouse import DuckDBWarehouse, Warehouse

    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    tables = [t for t in external_tables(project_dir)
              if not isinstance(warehouse, DuckDBWarehouse) or t in warehouse.tables()]
    if isinstance(warehouse, DuckDBWarehouse):
        warehouse.publish(set(tables))
    return tables


class DbtFailed(RuntimeError):
    """A dbt command failed; the message carries the end of dbt's output."""


def run_dbt(settings: Settings, args: list[str], project_dir: Path = DBT_PROJECT) -> str:
    """``dbt <args>`` on ``project_dir`` with the profile of ``settings``; returns dbt's output.

    For work outside Airflow (tests, a data team's shell); the ``features`` DAG runs dbt through
    Cosmos instead. Targets and logs go to the state directory, never into the project.
    """
    import os
    import subprocess
    import sys

    prepare_dbt_tables(settings, project_dir)
    env = {**os.environ, **settings.profile_variables(), "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    work = settings.home / "dbt" / project_dir.resolve().name
    command = [
        str(Path(sys.executable).parent / "dbt"), *args,
        "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DbtFailed(f"dbt {' '.join(args)} failed in {project_dir} (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc.stdout


@dataclass(frozen=True)
class MaterializeResult:
    """What one materialization did, per feature view."""

    end: str
    windows: dict[str, tuple[str, str]]


def materialize(settings: Settings, day: date, feature_views: list[str] | None = None) -> MaterializeResult:
    """Fill the online store up to the end of ``day``, incrementally and in chunks.

    Each feature view resumes from where it was last materialized (after a failure: from the
    last finished chunk); a never-materialized one starts ``ttl`` before the end, which is
    all the online store can serve anyway.
    """
    store = feature_store(settings)
    end = end_of_day(day)
    windows = {}
    for fv in store.list_feature_views():
        if feature_views is not None and fv.name not in feature_views:
            continue
        start = fv.most_recent_end_time or (end - fv.ttl)
        start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
        if start >= end:
            windows[fv.name] = (start.isoformat(), start.isoformat())
            continue
        store.materialize(start_date=start, end_date=end, feature_views=[fv.name])
        windows[fv.name] = (start.isoformat(), end.isoformat())
        log.info("materialized %s from %s to %s", fv.name, start, end)
    return MaterializeResult(end=end.isoformat(), windows=windows)


def training_frame(settings: Settings, feature_service: str, spine: pd.DataFrame) -> pd.DataFrame:
    """Each feature of ``feature_service`` as it was known at each spine row's ``event_timestamp``.

    Args:
        spine: the entity key column(s), ``event_timestamp`` and any other columns (a label),
            which come back unchanged.
    Returns:
        The spine with one column per feature, in the spine's row order.
    """
    store = feature_store(settings)
    service = store.get_feature_service(feature_service)
    return store.get_historical_features(entity_df=spine, features=service).to_df()


def feature_names(settings: Settings, feature_service: str) -> list[str]:
    """The features a service serves, in order (the contract a model is trained against)."""
    service = feature_store(settings).get_feature_service(feature_service)
    return [f.name for projection in service.feature_view_projections for f in projection.features]


def candidate_days(ds: str | None, triggering_asset_events: Any = None, key: str = "batch_date") -> list[date]:
    """The days a run may be for, latest first.

    An Asset-triggered run: every day its triggering events reported under ``key``
    (``batch_date`` from ingest, ``feature_date`` from features). A run started by hand or by
    a backfill: its logical date.
    """
    days = {
        date.fromisoformat(str(event.extra[key]))
        for events in (triggering_asset_events or {}).values()
        for event in events
        if (getattr(event, "extra", None) or {}).get(key)
    }
    if days:
        return sorted(days, reverse=True)
    if not ds:
        raise ValueError("the run has neither a logical date nor triggering ingest events naming a batch_date")
    return [date.fromisoformat(ds[:10])]


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
