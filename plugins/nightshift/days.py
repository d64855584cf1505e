"""Days and the moments they end: the one definition of "end of day" and of a run's day.

Standard library only: DAG files and every stage may import it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any


def end_of_day(day: date) -> datetime:
    """The moment day ``day``'s features become known (and are materialized up to)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)



def candidate_days(ds: str | None, triggering_asset_events: Any = None, key: str = "batch_date") -> list[date]:
    """The days a run may be for, latest first.

    An Asset-triggered run: every day its triggering events reported under ``key``
    (``batch_date`` from ingest, ``feature_date`` from features), and every day of a list under
    ``key + "s"`` (a features run that made several days ready announces them all). A run
    started by hand or by a backfill: its logical date.
    """
    days: set[date] = set()
    for events in (triggering_asset_events or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            named = [extra[key]] if extra.get(key) else []
            days.update(date.fromisoformat(str(d)) for d in [*named, *(extra.get(f"{key}s") or [])])
    if days:
        return sorted(days, reverse=True)
    if not ds:
        raise ValueError("the run has neither a logical date nor triggering ingest events naming a batch_date")
    return [date.fromisoformat(ds[:10])]
