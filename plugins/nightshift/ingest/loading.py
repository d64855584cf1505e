"""Ingest one landed batch: find it, validate it, and write accepted and quarantined rows.

Called by the ``ingest`` DAG, one (source, day) at a time. The batch for (source, D) is
every file in D's landing folder that matches the source's pattern (``*.csv`` by default);
anything else there is listed in ``meta.validation_runs.ignored_files`` and never read. A
second file landed for a day that was already ingested is picked up when the day is re-run
(clear the task in the Airflow UI): the partition is then replaced by the union of all the
day's files, and a key repeated across files is quarantined as a duplicate. A batch whose
quarantined share is over the suite's limit fails whole, so a file landed twice or in the
wrong day's folder never empties a day. Nothing here ever modifies or deletes a landed file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from nightshift.landing import LandedFile, Landing, batch_id
from nightshift.settings import Settings
from nightshift.usecase import SourceConfig, all_sources, load_use_cases
from nightshift.ingest.validation import (
    BatchRejected,
    Suite,
    ValidationOutcome,
    check_quarantined_share,
    reason_counts_json,
    validate_files,
)
from nightshift.warehouse import VALIDATION_RUNS, PartitionWrite, Warehouse, quarantine_table, raw_table

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class BatchMissing(Exception):
    """No batch landed for (source, D) before its deadline."""


@dataclass(frozen=True)
class IngestSummary:
    """What one ingest did; small enough for XCom and for the run log."""

    source: str
    batch_date: str
    batch_id: str
    landed: int
    accepted: int
    quarantined: int
    reason_counts: dict[str, int]
    extra_columns: list[str]
    suite: str
    suite_version: str
    #: Names in the day folder that do not match the source's pattern (not read, not counted).
    ignored_files: list[str] = field(default_factory=list)


def batch_deadline(source: SourceConfig, day: date) -> datetime:
    """When a missing batch for ``day`` stops being late and becomes a failure."""
    end_of_day = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    return end_of_day + timedelta(hours=source.wait_hours)


def batch_landed(settings: Settings, source: SourceConfig, day: date, now: datetime | None = None,
                 wait: bool = True) -> bool:
    """True once a batch for (source, day) has landed; raise once its deadline has passed.

    ``wait=False`` (a run started by hand or by a backfill) raises at once when nothing has landed:
    only the scheduler's own nightly run waits for a late upstream.

    Raises:
        BatchMissing: nothing landed by the deadline (a past day's deadline has always passed), or
            nothing landed and the run does not wait.
    """
    landing = Landing(settings.landing_uri)
    files, ignored = landing.list_day(source.name, day, source.pattern)
    if files:
        return True
    now = now or datetime.now(timezone.utc)
    deadline = batch_deadline(source, day)
    location, note = landing.batch_location(source.name, day), _ignored_note(source, ignored)
    if not wait and now < deadline:
        raise BatchMissing(
            f"no batch for source {source.name!r} on {day}: nothing has landed in {location} yet{note}, and a run "
            "started by hand or by a backfill does not wait for one (the nightly scheduled run waits until "
            f"{deadline:%Y-%m-%d %H:%M} UTC). Land the file there, then clear this task in Airflow"
        )
    if now >= deadline:
        raise BatchMissing(
            f"no batch for source {source.name!r} on {day}: nothing landed in {location} "
            f"by {deadline:%Y-%m-%d %H:%M} UTC ({source.wait_hours:g} h after the day ended){note}. "
            "Ask the upstream owner for the export or land the file there, then clear this task in Airflow"
        )
    log.info("waiting for %s until %s%s", location, deadline, note)
    return False


def _ignored_note(source: SourceConfig, ignored: list[str]) -> str:
    if not ignored:
        return ""
    return f" (ignored, as not matching the source's pattern {source.pattern!r}: {', '.join(ignored)})"


def ingest_batch(settings: Settings, source: SourceConfig, day: date, now: datetime | None = None) -> IngestSummary:
    """Validate the batch for (source, day) and replace that day's partitions.

    Raises:
        BatchMissing: no file has landed for the day.
        BatchRejected: a batch rule failed; nothing was written and the files are untouched.
    """
    now = now or datetime.now(timezone.utc)
    landing = Landing(settings.landing_uri)
    location = landing.batch_location(source.name, day)
    files, ignored = landing.list_day(source.name, day, source.pattern)
    if not files:
        raise BatchMissing(
            f"no batch for source {source.name!r} on {day} in {location}{_ignored_note(source, ignored)}; "
            "land the file there (or fix the source's `pattern` in its use-case file), then run the ingest sensor"
        )
    if ignored:
        log.warning("%s/%s: ignored %s (not matching pattern %r)", source.name, day, ", ".join(ignored), source.pattern)
    contents = [(f.name, landing.read_bytes(f)) for f in files]
    suite = Suite.load(settings.expectations_dir / f"{source.suite}.json")
    this_batch = batch_id(source.name, day, contents)
    try:
        outcome = validate_files(suite, contents, day, now, consume=True)
        check_quarantined_share(suite, outcome)
    except BatchRejected as exc:
        reason = " ".join(str(exc).split()).rstrip(".")
        raise BatchRejected(
            f"batch {source.name}/{day} ({', '.join(f.uri for f in files)}) rejected by suite "
            f"{suite.name!r} v{suite.version}: {reason}. Nothing was written and the landed file(s) are untouched. "
            f"Fix or replace the file(s) in {location}, then clear this task in Airflow to re-run {day}"
        ) from exc

    summary = write_batch(
        Warehouse.from_uri(settings.warehouse_uri), source.name, day, this_batch, suite, files, outcome, now,
        ignored_files=ignored,
    )
    log.info(
        "%s/%s: landed %d, accepted %d, quarantined %d %s",
        source.name, day, summary.landed, summary.accepted, summary.quarantined, summary.reason_counts or "",
    )
    return summary


def write_batch(
    warehouse: Warehouse,
    source: str,
    day: date,
    this_batch: str,
    suite: Suite,
    files: list[LandedFile],
    outcome: ValidationOutcome,
    now: datetime,
    ignored_files: list[str] | None = None,
) -> IngestSummary:
    """Replace day's raw, quarantine and validation-run partitions of ``source`` in one go.

    Args:
        ignored_files: names in the day folder left out of the batch (recorded, not read).
    """
    summary = IngestSummary(
        source=source,
        batch_date=day.isoformat(),
        batch_id=this_batch,
        landed=outcome.landed_rows,
        accepted=len(outcome.accepted),
        quarantined=len(outcome.quarantined),
        reason_counts=outcome.reason_counts,
        extra_columns=outcome.extra_columns,
        suite=suite.name,
        suite_version=suite.version,
        ignored_files=list(ignored_files or []),
    )
    partition = {"batch_date": day}
    warehouse.replace_partitions(
        [
            PartitionWrite(raw_table(source), partition, _with_batch_id(outcome.accepted, this_batch)),
            PartitionWrite(quarantine_table(source), partition, _with_batch_id(outcome.quarantined, this_batch)),
            PartitionWrite(VALIDATION_RUNS, {"source": source, "batch_date": day}, _summary_row(summary, suite, files, now)),
        ]
    )
    return summary


def _with_batch_id(frame: pd.DataFrame, this_batch: str) -> pd.DataFrame:
    """``frame`` with a constant ``batch_id`` column, sharing its other columns (``assign`` copies them all).

    The column is categorical (one category): written as a dictionary-encoded text column, it costs
    a byte a row instead of the id's length (160 MB at 5M rows), and reads back as text.
    """
    import numpy as np
    import pandas as pd

    out = frame.copy(deep=False)
    out["batch_id"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=[this_batch])
    return out


def _summary_row(summary: IngestSummary, suite: Suite, files: list[LandedFile], now: datetime) -> pd.DataFrame:
    import pandas as pd

    validated_at = now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now

    return pd.DataFrame(
        [
            {
                "batch_id": summary.batch_id,
                "suite_name": suite.name,
                "suite_version": suite.version,
                "suite_sha256": suite.sha256,
                "files": json.dumps([f.uri for f in files]),
                "landed_rows": summary.landed,
                "accepted_rows": summary.accepted,
                "quarantined_rows": summary.quarantined,
                "quarantined_by_reason": reason_counts_json(summary.reason_counts),
                "extra_columns": json.dumps(summary.extra_columns),
                "ignored_files": json.dumps(summary.ignored_files),
                "validated_at": pd.Timestamp(validated_at),
            }
        ]
    ).astype({"landed_rows": "int64", "accepted_rows": "int64", "quarantined_rows": "int64"})


def configured_source(settings: Settings, name: str) -> SourceConfig:
    """The source ``name`` as the use-case files in ``settings.config_dir`` configure it."""
    return all_sources(load_use_cases(settings.config_dir))[name]


def wait_for_batch(source_name: str, day: date, wait: bool = True) -> bool:
    """Entry point of the ingest sensor: has (source, day) landed? (raises past the deadline, or at
    once when the run does not ``wait``)."""
    settings = Settings.from_env()
    return batch_landed(settings, configured_source(settings, source_name), day, wait=wait)


def ingest_day(source_name: str, day: date) -> dict[str, Any]:
    """Entry point of the ingest task: ingest (source, day); returns the summary for XCom."""
    settings = Settings.from_env()
    return asdict(ingest_batch(settings, configured_source(settings, source_name), day))

