"""The Feast store of a profile: applying the definitions, materializing, point-in-time reads.

Training and nightly scoring both get features through :func:`training_frame` (Feast's
historical retrieval, pushed down to DuckDB's ASOF JOIN in the embedded profile by
:mod:`nightshift.features.offline`), and the online store is filled by :func:`materialize`
through Feast's batch engine (:mod:`nightshift.features.engine`). No feature is computed
anywhere else.
"""

from __future__ import annotations

import contextlib
import logging
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nightshift.days import end_of_day
from nightshift.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

log = logging.getLogger(__name__)
FEATURE_REPO = PROJECT_ROOT / "feature_repo"
#: The timestamp column of an entity frame: features are read as of it.
EVENT_TIMESTAMP = "event_timestamp"


class FeatureDataMissing(RuntimeError):
    """The inputs for the day are not there; the message names the DAG to run first."""


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


def apply_definitions(settings: Settings, use_case: str | None = None, repo_path: Path = FEATURE_REPO) -> list[str]:
    """Apply Feast definitions; returns the feature views they hold.

    With ``use_case``, only ``feature_repo/<use case>.py`` (and what it imports, such as shared
    entities) is read and applied, without touching any other use case's objects: a broken file
    of another use case cannot fail this one. Without it, the whole repo is applied as
    ``feast apply`` would. Every declared field is checked against its source's columns first, so
    a definition that names a column no dbt model provides fails here, before the registry changes.
    """
    store = feature_store(settings, repo_path)
    if use_case is None:
        from feast.repo_operations import apply_total_with_repo_instance

        repo = parse_definitions(repo_path)
        validate_schemas(store, repo.feature_views)
        apply_total_with_repo_instance(store, store.config.project, store.registry, repo, skip_source_validation=False)
        return sorted(fv.name for fv in store.list_feature_views())
    from feast import FeatureView

    objects = use_case_definitions(use_case, repo_path)
    views = [o for o in objects if isinstance(o, FeatureView)]
    validate_schemas(store, views)
    store.apply(objects, partial=True)
    return sorted(v.name for v in views)


def use_case_definitions(use_case: str, repo_path: Path = FEATURE_REPO) -> list[Any]:
    """The Feast objects of ``feature_repo/<use case>.py``: its entities, sources, views and services.

    Raises:
        FileNotFoundError: the use case has no definitions file.
    """
    import importlib

    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    path = (repo_path / f"{use_case}.py").resolve()
    if not path.exists():
        have = sorted(p.stem for p in repo_path.glob("*.py"))
        raise FileNotFoundError(f"no Feast definitions for use case {use_case!r}: {path} does not exist "
                                f"(feature_repo/ has {have}); one file per use case, named after it")
    with _fresh_repo(path.parent):
        module = importlib.import_module(use_case)
    kinds = (Entity, DataSource, FeatureView, FeatureService)
    found: dict[tuple[str, str], Any] = {}
    for value in vars(module).values():
        if isinstance(value, kinds):
            found.setdefault((type(value).__name__, value.name), value)
    return list(found.values())


def parse_definitions(repo_path: Path) -> Any:
    """Feast's ``parse_repo`` on ``repo_path``, importing its modules afresh.

    Feast imports repo files as modules named after their path relative to the working
    directory, so this runs it from inside the repo, and forgets modules of an earlier parse
    (a test may apply a modified copy of the repo in the same process).
    """
    from feast.repo_operations import parse_repo

    repo_path = repo_path.resolve()
    with _fresh_repo(repo_path):
        return parse_repo(repo_path)


@contextlib.contextmanager
def _fresh_repo(repo_path: Path) -> Iterator[None]:
    """Run inside ``repo_path`` with it first on ``sys.path`` and its modules forgotten, so its
    files (and a modified copy's, in a test) are imported afresh."""
    import importlib
    import sys

    for name in {p.stem for p in repo_path.glob("*.py")}:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    sys.path.insert(0, str(repo_path))
    try:
        with contextlib.chdir(repo_path):
            yield
    finally:
        sys.path.remove(str(repo_path))


def _source_columns(store: FeatureStore, source: Any) -> set[str]:
    """The column names of a feature view's source. A file source is read as the ASOF offline store
    reads it (DuckDB, a table folder's day files), not by Feast's pyarrow dataset, which cannot
    merge a day column that is both in the files and in their folder names."""
    from feast import FileSource

    if isinstance(source, FileSource):
        import duckdb

        from nightshift.features.offline import source_sql

        with duckdb.connect() as con:
            return {row[0] for row in con.execute(f"describe select * from {source_sql(source, store.config.repo_path)}").fetchall()}
    return {name for name, _ in source.get_table_column_names_and_types(store.config)}


def validate_schemas(store: FeatureStore, feature_views: Any) -> None:
    """Every declared field must be a column of its source.

    Feast itself accepts such a view at apply time and fails only when it is read or
    materialized; this check makes the mistake fail at apply time, naming the field.
    """
    for fv in feature_views:
        source = fv.batch_source
        try:
            columns = _source_columns(store, source)
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


@dataclass(frozen=True)
class MaterializeResult:
    """What one materialization did, per feature view.

    ``rewritten`` names the views whose window had been materialized already and was written
    again (a re-run of a day, or of an earlier day: its inputs may have changed).
    """

    end: str
    windows: dict[str, tuple[str, str]]
    rewritten: tuple[str, ...] = ()


def materialize(settings: Settings, day: date, feature_views: list[str] | None = None) -> MaterializeResult:
    """Fill the online store up to the end of ``day``, incrementally and in chunks.

    Each feature view resumes from where it was last materialized (after a failure: from the
    last finished chunk); a never-materialized one starts ``ttl`` before the end, which is
    all the online store can serve anyway.

    A view already materialized to the end of ``day`` or later (a re-run after ``day``'s batch
    was ingested again) is materialized again from ``day`` up to where it was: re-ingesting a day
    changes that day's feature rows and those of the days after it, and the online store must
    serve them. It never moves back to an earlier day.
    """
    store = feature_store(settings)
    end = end_of_day(day)
    windows, rewritten = {}, []
    for fv in store.list_feature_views():
        if feature_views is not None and fv.name not in feature_views:
            continue
        last = fv.most_recent_end_time
        last = None if last is None else (last if last.tzinfo else last.replace(tzinfo=timezone.utc))
        if last is None:
            start, stop = end - fv.ttl, end
        elif last < end:
            start, stop = last, end
        else:
            # the day's rows (timestamped within the day before its end) and every later one
            start, stop = end - timedelta(days=1), last
            rewritten.append(fv.name)
        store.materialize(start_date=start, end_date=stop, feature_views=[fv.name])
        windows[fv.name] = (start.isoformat(), stop.isoformat())
        log.info("materialized %s from %s to %s%s", fv.name, start, stop, " (again)" if fv.name in rewritten else "")
    return MaterializeResult(end=end.isoformat(), windows=windows, rewritten=tuple(rewritten))


def materialized_until(store: FeatureStore, view_names: list[str]) -> datetime | None:
    """The latest end any of ``view_names`` was materialized to, or None if none ever was."""
    ends = [store.get_feature_view(name).most_recent_end_time for name in view_names]
    ends = [e if e.tzinfo else e.replace(tzinfo=timezone.utc) for e in ends if e is not None]
    return max(ends, default=None)


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
    if settings.profile == "embedded":  # Nightshift's ASOF store passes the spine through, in order
        return store.get_historical_features(entity_df=spine, features=service).to_df()
    return _through_uploaded_spine(store, service, spine)


#: The row number that carries the spine's order through a store that uploads it as a table.
SPINE_ROW = "nightshift_spine_row"


def _through_uploaded_spine(store: Any, service: Any, spine: pd.DataFrame) -> pd.DataFrame:
    """The point-in-time join on Feast's Postgres offline store, with the spine kept as it was.

    That store uploads the entity frame as a table, which takes no ``date`` column (the label
    date of a training spine: "Unsupported type: date32[day]"), and returns its rows in no
    particular order. Only the entity keys, the event time and a row number go to it; the features
    come back by that number, next to the spine's own columns, unchanged and in order.
    """
    import numpy as np
    import pandas as pd

    keys = sorted({column.name for projection in service.feature_view_projections
                   for column in store.get_feature_view(projection.name).entity_columns})
    sent = spine[[*keys, "event_timestamp"]].reset_index(drop=True).assign(**{SPINE_ROW: np.arange(len(spine))})
    joined = store.get_historical_features(entity_df=sent, features=service).to_df()
    if len(joined) != len(spine) or not joined[SPINE_ROW].is_unique:
        raise RuntimeError(f"the offline store returned {len(joined)} rows for a spine of {len(spine)}: "
                           "a point-in-time join gives one row per spine row")
    found = joined.sort_values(SPINE_ROW).drop(columns=[SPINE_ROW, *keys, "event_timestamp"]).reset_index(drop=True)
    return pd.concat([spine.reset_index(drop=True), found], axis=1)


def feature_names(settings: Settings, feature_service: str) -> list[str]:
    """The features a service serves, in order (the contract a model is trained against)."""
    service = feature_store(settings).get_feature_service(feature_service)
    return [f.name for projection in service.feature_view_projections for f in projection.features]
