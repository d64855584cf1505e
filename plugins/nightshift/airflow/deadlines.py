"""The nightly publish deadline: "scores for D not published by a set hour", as an Airflow Deadline Alert.

``score_<use case>`` carries :func:`publish_deadline`: ``scoring.publish_by_hours`` (default 8)
after the end of day D, the scheduled run for D must have finished, i.e. D's scores are published
(the run finishes as soon as they are, whoever wrote them). Airflow's built-in references do not
fit: counted from the logical date, every backfill of a past night would alert the moment it is
created. :class:`NightlyRunEnd` is the end of D for the **scheduled** run only; for a backfill, a
run by hand or one triggered by fresh features it is None, and Airflow then makes no deadline.

When the deadline passes, the triggerer calls :func:`scores_not_published`: it looks once more
(the run may be between two pokes of its sensor) and, if D has no scores, announces
``scores_late`` through the same sinks as every other alert (``nightshift.airflow.alerts``).
The reference is registered with Airflow by the Nightshift plugin (``deadline_references``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow.sdk.definitions.deadline import BaseDeadlineReference

#: Hours after the end of D by which D's scores must be published (``scoring.publish_by_hours``).
DEFAULT_PUBLISH_BY_HOURS = 8.0


class NightlyRunEnd(BaseDeadlineReference):
    """The end of the day a scheduled run is for (its data interval's end); None for any other run."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session: Any, **kwargs: Any) -> datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        row = session.execute(
            select(DagRun.run_type, DagRun.data_interval_end).where(
                DagRun.dag_id == kwargs["dag_id"], DagRun.run_id == kwargs["run_id"])
        ).one_or_none()
        if row is None or str(getattr(row.run_type, "value", row.run_type)) != "scheduled":
            return None
        return row.data_interval_end


def publish_by_hours(scoring: dict[str, Any]) -> float:
    """``scoring.publish_by_hours`` of a use case; a value that is no positive number names the key."""
    value = scoring.get("publish_by_hours", DEFAULT_PUBLISH_BY_HOURS)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"scoring.publish_by_hours must be a positive number of hours after the end of the day, "
                         f"got {value!r}")
    return float(value)


def publish_deadline(use_case_name: str, scoring: dict[str, Any]) -> Any:
    """The ``deadline=`` of ``score_<use case>``: D's scores published by ``publish_by_hours`` after D."""
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert

    hours = publish_by_hours(scoring)
    return DeadlineAlert(
        reference=NightlyRunEnd(),
        interval=timedelta(hours=hours),
        callback=AsyncCallback(scores_not_published, kwargs={"use_case": use_case_name, "publish_by_hours": hours}),
    )


def late_text(use_case: str, day: date, hours: float, run_id: str) -> str:
    """What the ``scores_late`` alert says: what, when, where, and what to do."""
    return (f"scores for {use_case} {day} were not published by {hours:g} h after the end of the day "
            f"({day + timedelta(days=1)} {int(hours):02d}:{int(hours % 1 * 60):02d} UTC): the scheduled run {run_id} of "
            f"score_{use_case} has not finished. Open it in the Airflow UI: its days_to_score log says whether it "
            f"waits for features (then look at features_{use_case} and the ingest runs of {day}) or what failed")


async def scores_not_published(use_case: str, publish_by_hours: float, context: dict | None = None) -> str | None:
    """Deadline callback (triggerer): announce ``scores_late`` unless D was scored after all."""
    import asyncio

    return await asyncio.to_thread(_announce_if_unscored, use_case, publish_by_hours, context or {})


def _announce_if_unscored(use_case: str, hours: float, context: dict) -> str | None:
    from nightshift.airflow.alerts import announce
    from nightshift.scoring.planning import scored_by
    from nightshift.settings import Settings

    run = context.get("dag_run") or {}
    day = date.fromisoformat(str(run.get("logical_date"))[:10])
    if scored_by(Settings.from_env(), use_case, day) is not None:
        return None  # published between two pokes of the run's sensor: in time after all
    text = late_text(use_case, day, hours, str(run.get("dag_run_id")))
    announce("scores_late", text)
    return text
