"""Materialization in time chunks, resumable, through Feast's batch-engine extension point.

Stock ``materialize`` loads the whole window at once and runs out of memory on long windows
(Feast issue 6307). This engine, named in ``feature_store.yaml`` as
``batch_engine: {type: nightshift.features.engine.ChunkedLocalComputeEngine, chunk_days: 7}``,
splits each feature view's window into chunks and runs each chunk with Feast's own local
compute plan (pull from the offline store -> latest row per key -> ``online_write_batch``),
so peak memory follows the chunk, not the window, and per-chunk semantics are Feast's.

After every finished chunk it records the chunk as a materialization interval in the
registry; ``FeatureView.most_recent_end_time`` therefore advances chunk by chunk, and a run
killed halfway resumes from the last finished chunk. Chunks run in time order and the
online stores upsert, so the end state equals one big materialization.

A Feast plugin: it imports Feast at module level and is only imported by Feast.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from typing import Any, List, Optional, Union

from pydantic import StrictStr

from feast.infra.common.materialization_job import (
    MaterializationJob,
    MaterializationJobStatus,
    MaterializationTask,
)
from feast.infra.compute_engines.local.compute import LocalComputeEngine
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import FeastConfigBaseModel

logger = logging.getLogger(__name__)


class ChunkedLocalComputeEngineConfig(FeastConfigBaseModel):
    type: StrictStr = "nightshift.features.engine.ChunkedLocalComputeEngine"
    backend: Optional[str] = None
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


class ChunkedLocalComputeEngine(LocalComputeEngine):
    """Feast's local compute engine, run one time chunk at a time with progress recorded."""

    def __init__(self, **kwargs: Any) -> None:
        cfg_keys = set(ChunkedLocalComputeEngineConfig.model_fields)
        cfg = ChunkedLocalComputeEngineConfig(**{k: kwargs.pop(k) for k in list(kwargs) if k in cfg_keys})
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
        return [self._materialize_chunked(registry, t, **kwargs) for t in tasks]

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
