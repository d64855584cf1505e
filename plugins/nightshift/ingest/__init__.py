"""Ingest: validate every landed batch with its GX suite, load accepted rows, quarantine the rest.

:mod:`~nightshift.ingest.validation` splits a batch row by row; :mod:`~nightshift.ingest.loading`
finds the batch, and writes the day's partitions.
"""

from nightshift.ingest.loading import (
    BatchMissing,
    IngestSummary,
    batch_deadline,
    batch_landed,
    configured_source,
    ingest_batch,
    ingest_day,
    wait_for_batch,
    write_batch,
)
from nightshift.ingest.validation import BatchRejected

__all__ = [
    "BatchMissing", "BatchRejected", "IngestSummary", "batch_deadline", "batch_landed", "configured_source",
    "ingest_batch", "ingest_day", "wait_for_batch", "write_batch",
]
