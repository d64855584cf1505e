"""Materialization that writes each entity once per run, in key partitions that resume after a kill.

Named in ``feature_store.yaml`` as ``batch_engine: {type: nightshift.features.engine.LatestPerKeyEngine}``,
through Feast's batch-engine extension point. For each feature view and window ``[start, end]``:

1. **one read**: the offline store's ``pull_latest_from_table_or_query`` gives the latest row per
   entity key in the window (latest event time, then latest created time), the rows stock Feast's
   local engine keeps after its pull and dedup. The ASOF offline store answers it with one DuckDB
   hash aggregate; Postgres with its own query. Memory follows the number of entities, not the
   window's length;
2. **key partitions**: the rows are sorted by serialized entity key and cut into partitions of at
   most ``partition_entities`` entities; each is written to the online store in one go
   (:mod:`nightshift.features.online_write`: a bulk path for SQLite, Feast's own writer, which
   pipelines, for Redis) and then recorded as done in a small progress table;
3. **the window** is recorded in the registry (``apply_materialization``) once every partition is
   written, and the progress rows are deleted.

A run killed halfway leaves the view's ``most_recent_end_time`` where it was (a zero-length
claim marks the window's start first), so the rerun asks for the same window, reads the rows
again and skips each partition already written whose rows are unchanged (a fingerprint of them is
kept with its progress row). A rerun for a different window, or over changed rows, writes them: online writes are upserts of the latest row, so writing a
key again is harmless. The end state equals one stock materialization of the window (tests and
``bench/bench_materialize.py`` compare every key, feature, value and timestamp).

The progress table lives in the registry's database when the registry is SQL (production), or
in ``<registry file>.progress.sqlite`` beside a file registry (the embedded default).

Feature views this path cannot take (a ``BatchFeatureView`` transformation or aggregation, a
``filter``, validation, an offline write, no entity, ``disable_event_timestamp``) run Feast's own local plan
in time chunks of ``chunk_days``, each recorded as an interval, as before.

A Feast plugin: it imports Feast at module level and is only imported by Feast.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, List, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import StrictStr

from feast.feature_view import DUMMY_ENTITY_ID, FeatureView
from feast.infra.common.materialization_job import (
    MaterializationJob,
    MaterializationJobStatus,
    MaterializationTask,
)
from feast.infra.compute_engines.local.compute import LocalComputeEngine
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import FeastConfigBaseModel
from feast.utils import _get_column_names, _run_pyarrow_field_mapping

from nightshift.features import online_write

logger = logging.getLogger(__name__)

PROGRESS_TABLE = "nightshift_materialization_progress"


class LatestPerKeyEngineConfig(FeastConfigBaseModel):
    type: StrictStr = "nightshift.features.engine.LatestPerKeyEngine"
    backend: Optional[str] = None
    # entities per key partition: the unit of an online write and of resumption
    partition_entities: int = 50_000
    # the time-chunked fallback, for views the latest-per-key path cannot take
    chunk_days: float = 7.0
    # align chunk boundaries to multiples of chunk size since epoch (stable boundaries across reruns)
    align: bool = True


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def chunk_bounds(
    start: datetime, end: datetime, step: timedelta, align: bool = True
) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive ``[chunk_start, chunk_end)`` slices covering ``[start, end]``.

    With ``align``, boundaries fall on multiples of ``step`` since the epoch, so a resumed run
    cuts the same chunks as the run it resumes.
    """
    start, end = _utc(start), _utc(end)
    if align:
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        first = epoch + ((start - epoch) // step + 1) * step
    else:
        first = start + step
    cur, nxt = start, min(first, end)
    while cur < end:
        yield cur, nxt
        cur, nxt = nxt, min(nxt + step, end)


def takes_latest_per_key_path(task: MaterializationTask) -> bool:
    """Whether ``task`` is a plain feature view whose materialization is "latest row per key in the window"."""
    fv = task.feature_view
    return (
        type(fv) is FeatureView
        and fv.batch_source is not None
        and bool(fv.entity_columns)
        and all(column.name != DUMMY_ENTITY_ID for column in fv.entity_columns)
        and fv.online
        and not getattr(fv, "offline", False)
        and not getattr(fv, "aggregations", None)
        and not getattr(fv, "feature_transformation", None)
        and not getattr(fv, "filter", None)
        and not getattr(fv, "enable_validation", False)
        and task.only_latest
        and not task.disable_event_timestamp
    )


def partition_bounds(rows: int, per_partition: int) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of at most ``per_partition`` rows covering ``rows`` (none for zero rows)."""
    per_partition = max(1, per_partition)
    return [(start, min(start + per_partition, rows)) for start in range(0, rows, per_partition)]


def _fingerprint(rows: pa.Table) -> str:
    """A hash of the rows a partition writes (keys, values, timestamps): a partition is skipped on
    resume only if the rows are the ones a killed run wrote (the offline rows may have changed since)."""
    import hashlib

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return hashlib.sha256(sink.getvalue()).hexdigest()


class Progress:
    """Which key partitions of a view's window are written: rows of one table, by SQLAlchemy."""

    def __init__(self, engine: sa.Engine, owned: bool = False) -> None:
        self.engine = engine
        self.owned = owned  # created here (beside a file registry): disposed by close()
        self.table = sa.Table(
            PROGRESS_TABLE,
            sa.MetaData(),
            sa.Column("project", sa.String(255), primary_key=True),
            sa.Column("feature_view", sa.String(255), primary_key=True),
            sa.Column("window_bounds", sa.String(80), primary_key=True),
            sa.Column("partitions", sa.Integer, primary_key=True),
            sa.Column("part", sa.Integer, primary_key=True),
            sa.Column("fingerprint", sa.String(64), nullable=False),
        )
        self.table.create(engine, checkfirst=True)

    @classmethod
    def of(cls, registry: BaseRegistry, repo_config: Any) -> "Progress":
        """The progress table in the SQL registry's database, or in a SQLite file beside a file registry."""
        engine = getattr(registry, "write_engine", None)
        if engine is None:
            path = Path(repo_config.registry.path)
            if not path.is_absolute():
                path = Path(repo_config.repo_path or ".") / path
            if "://" in str(repo_config.registry.path):
                raise ValueError(
                    f"LatestPerKeyEngine keeps its progress beside a local file registry or in a SQL registry; "
                    f"the registry {repo_config.registry.path!r} is neither. Use a SQL registry or a local path"
                )
            return cls(sa.create_engine(f"sqlite:///{path}.progress.sqlite"), owned=True)
        return cls(engine)

    def close(self) -> None:
        """Release the connections of an engine this object created (never the SQL registry's)."""
        if self.owned:
            self.engine.dispose()

    def _where(self, project: str, view: str, window: str) -> Any:
        t = self.table.c
        return sa.and_(t.project == project, t.feature_view == view, t.window_bounds == window)

    def done(self, project: str, view: str, window: str, partitions: int) -> dict[int, str]:
        """The written partitions of this window and partition count, with the fingerprint of what was written."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(self.table.c.part, self.table.c.fingerprint).where(
                    self._where(project, view, window), self.table.c.partitions == partitions
                )
            )
            return {row[0]: row[1] for row in rows}

    def mark(self, project: str, view: str, window: str, partitions: int, part: int, fingerprint: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(self.table).where(
                    self._where(project, view, window), self.table.c.partitions == partitions,
                    self.table.c.part == part,
                )
            )
            conn.execute(
                sa.insert(self.table).values(
                    project=project, feature_view=view, window_bounds=window, partitions=partitions, part=part,
                    fingerprint=fingerprint,
                )
            )

    def clear(self, project: str, view: str) -> None:
        t = self.table.c
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(t.project == project, t.feature_view == view))


class LatestPerKeyEngine(LocalComputeEngine):
    """Feast's local compute engine, writing each entity's latest row once per window, in key partitions."""

    def __init__(self, **kwargs: Any) -> None:
        cfg_keys = set(LatestPerKeyEngineConfig.model_fields)
        cfg = LatestPerKeyEngineConfig(**{k: kwargs.pop(k) for k in list(kwargs) if k in cfg_keys})
        super().__init__(backend=cfg.backend, **kwargs)  # kwargs: repo_config, offline_store, online_store
        self.cfg = cfg

    @property
    def supports_batch(self) -> bool:
        return True

    @property
    def applies_materialization(self) -> bool:
        return True

    def materialize(
        self,
        registry: BaseRegistry,
        tasks: Union[MaterializationTask, List[MaterializationTask]],
        **kwargs,
    ) -> List[MaterializationJob]:
        if isinstance(tasks, MaterializationTask):
            tasks = [tasks]
        # Claim markers FIRST, for every feature view: a zero-length interval (start, start). Without it, a
        # feature view that had never been materialized and whose turn had not come yet when the run died would
        # be resumed by materialize_incremental() from `now - ttl` (Feast's default when a view has no
        # intervals) instead of the requested start. max(interval ends) is unchanged if later intervals exist.
        for t in tasks:
            if t.start_time < t.end_time and not t.disable_event_timestamp:
                registry.apply_materialization(t.feature_view, t.project, t.start_time, t.start_time, commit=True)
        jobs = []
        for t in tasks:
            if takes_latest_per_key_path(t):
                jobs.append(self._materialize_latest(registry, t))
            else:
                jobs.append(self._materialize_chunked(registry, t, **kwargs))
        return jobs

    # ---------------- each entity once: latest row per key, in key partitions ----------------
    def _materialize_latest(self, registry: BaseRegistry, task: MaterializationTask) -> MaterializationJob:
        fv = task.feature_view
        start, end = _utc(task.start_time), _utc(task.end_time)
        job_id = f"{fv.name}-{start}-{end}"
        progress: Optional[Progress] = None
        try:
            t0 = time.time()
            table = self._latest_rows(registry, task)
            keys = online_write.entity_key_bytes(table, fv, self.repo_config)
            order = pc.sort_indices(pa.array(keys, type=pa.binary()))
            table = table.take(order)
            keys = [keys[i] for i in order.to_pylist()]
            parts = partition_bounds(table.num_rows, self.cfg.partition_entities)
            progress = Progress.of(registry, self.repo_config)
            window = f"{start.isoformat()}/{end.isoformat()}"
            done = progress.done(task.project, fv.name, window, len(parts))
            bulk = online_write.takes_bulk_sqlite_path(self.online_store, self.repo_config, fv)
            written, skipped = 0, 0
            for part, (lo, hi) in enumerate(parts):
                chunk = table.slice(lo, hi - lo)
                fingerprint = _fingerprint(chunk)
                if done.get(part) == fingerprint:  # written by a killed run, and the rows are the same
                    skipped += 1
                    continue
                if bulk:
                    written += online_write.write_sqlite(self.online_store, self.repo_config, fv, chunk, keys[lo:hi])
                else:
                    written += online_write.write_with_feast(self.online_store, self.repo_config, fv, chunk)
                progress.mark(task.project, fv.name, window, len(parts), part, fingerprint)
            # progress first: a kill between the two leaves a window to redo, never one to skip
            progress.clear(task.project, fv.name)
            registry.apply_materialization(fv, task.project, start, end, commit=True)
        except Exception as e:  # noqa: BLE001
            return LocalMaterializationJob(job_id, MaterializationJobStatus.ERROR, e)
        finally:
            if progress is not None:
                progress.close()
        logger.info(
            "%s: %s .. %s: %d entities in %d partition(s), %d skipped as done, %d values written in %.2fs",
            fv.name, start, end, table.num_rows, len(parts), skipped, written, time.time() - t0,
        )
        return LocalMaterializationJob(job_id, MaterializationJobStatus.SUCCEEDED)

    def _latest_rows(self, registry: BaseRegistry, task: MaterializationTask) -> pa.Table:
        """The latest row per entity key in the task's window, with Feast's names for its columns."""
        fv = task.feature_view
        entities = [registry.get_entity(name, task.project) for name in fv.entities]
        join_keys, features, timestamp, created = _get_column_names(fv, entities)
        job = self.offline_store.pull_latest_from_table_or_query(
            config=self.repo_config,
            data_source=fv.batch_source,
            join_key_columns=join_keys,
            feature_name_columns=features,
            timestamp_field=timestamp,
            created_timestamp_column=created,
            start_date=task.start_time,
            end_date=task.end_time,
        )
        table = job.to_arrow()
        if fv.batch_source.field_mapping:
            table = _run_pyarrow_field_mapping(table, fv.batch_source.field_mapping)
        return table

    # ---------------- the fallback: Feast's plan, one time chunk at a time ----------------
    def _materialize_chunked(self, registry: BaseRegistry, task: MaterializationTask, **kwargs):
        fv = task.feature_view
        step = timedelta(days=self.cfg.chunk_days)
        job_id = f"{fv.name}-{task.start_time}-{task.end_time}"
        if task.disable_event_timestamp:
            # materialize(disable_event_timestamp=True) means "everything"; not chunkable meaningfully.
            # This engine records its own intervals (applies_materialization), so record this one too.
            job = super()._materialize_one(registry, task, **kwargs)
            if job.status() == MaterializationJobStatus.SUCCEEDED:
                registry.apply_materialization(fv, task.project, task.start_time, task.end_time, commit=True)
            return job
        for cs, ce in chunk_bounds(task.start_time, task.end_time, step, self.cfg.align):
            t0 = time.time()
            sub = dataclasses.replace(task, start_time=cs, end_time=ce)
            try:
                job = super()._materialize_one(registry, sub, **kwargs)
                if job.status() == MaterializationJobStatus.ERROR:
                    return LocalMaterializationJob(job_id, MaterializationJobStatus.ERROR, job.error())
                # progress marker: one interval per finished chunk (commit=True writes the registry now)
                registry.apply_materialization(fv, task.project, cs, ce, commit=True)
            except Exception as e:  # noqa: BLE001
                return LocalMaterializationJob(job_id, MaterializationJobStatus.ERROR, e)
            logger.info("%s: chunk %s .. %s done in %.2fs", fv.name, cs, ce, time.time() - t0)
        return LocalMaterializationJob(job_id, MaterializationJobStatus.SUCCEEDED)
