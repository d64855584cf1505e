"""Which days a use case's nightly dbt run builds: the day, not the whole history.

The use case's feature, population and label models (scope ``features``, built by the features
DAG) and its marts by scoring day (scope ``marts``, built by the score DAG) are day-partitioned
(``dbt/macros/day_partitions.sql``). A run for day D (or for days D1..D) builds the days from the
first one not built yet (or D1, if earlier: a re-run or a backfill) up to D (or the last day
built, if that is later, so the days after a changed one are rebuilt from it too). It builds every
day, the full refresh, when:

* nothing was built before for the use case and scope (or the build record was lost),
* a model definition changed: the fingerprint of the scope's models, their parents and the
  macros they call differs from the one recorded by the last build,
* the run asks for it (``full_refresh`` in the DAG run's conf), for example after a change dbt
  cannot see in the SQL (a source's meaning, a variable).

A build is recorded (``meta.dbt_builds``, one row per use case and scope) only after dbt
succeeded, so a failed or killed run (or a score run whose marts were skipped) is planned again
from the same place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nightshift.settings import Settings
from nightshift.usecase import UseCase

#: The features DAG's models (tagged with the use case, not ``scoring``) and the score DAG's marts.
SCOPES = ("features", "marts")


@dataclass(frozen=True)
class BuildPlan:
    """The days one dbt run builds for a use case (``first``/``last`` None: every day)."""

    use_case: str
    day: date
    first: date | None
    last: date | None
    fingerprint: str
    reason: str
    scope: str = "features"

    @property
    def full(self) -> bool:
        return self.first is None

    @property
    def dbt_days(self) -> str:
        """The value of ``NIGHTSHIFT_DBT_DAYS`` for dbt: ``<first>:<last>``, or empty for every day."""
        return "" if self.first is None or self.last is None else f"{self.first.isoformat()}:{self.last.isoformat()}"

    @property
    def built_through(self) -> date:
        """The last day this build leaves built (D for a full build: later days are rebuilt by their run)."""
        return self.last if self.last is not None and self.last > self.day else self.day

    def to_xcom(self) -> dict[str, Any]:
        return {"use_case": self.use_case, "scope": self.scope, "day": self.day.isoformat(),
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None,
                "fingerprint": self.fingerprint, "reason": self.reason, "dbt_days": self.dbt_days}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> BuildPlan:
        def day_or_none(value: str | None) -> date | None:
            return date.fromisoformat(value) if value else None

        return cls(data["use_case"], date.fromisoformat(data["day"]), day_or_none(data["first"]),
                   day_or_none(data["last"]), data["fingerprint"], data["reason"], data.get("scope", "features"))


def definition_fingerprint(manifest_path: Path, use_case: UseCase, scope: str = "features") -> str:
    """A hash of what decides the rows a scope builds: the SQL of the use case's models of that
    scope and of every model and source they read, and the macros those call, from dbt's manifest."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: use one of {SCOPES}")
    manifest = json.loads(manifest_path.read_text())
    nodes, sources, macros = manifest["nodes"], manifest.get("sources", {}), manifest.get("macros", {})
    wanted = [uid for uid, node in nodes.items()
              if node.get("resource_type") == "model" and use_case.dbt_tag in node.get("tags", [])
              and ("scoring" in node.get("tags", [])) == (scope == "marts")]
    if not wanted:
        raise ValueError(f"dbt manifest {manifest_path} has no {scope} model tagged {use_case.dbt_tag!r}: "
                         f"tag the use case's models (config tags) and rebuild the manifest (make)")
    seen: set[str] = set()
    parts: list[str] = []
    pending = list(wanted)
    while pending:
        uid = pending.pop()
        if uid in seen:
            continue
        seen.add(uid)
        if uid in nodes:
            node = nodes[uid]
            parts.append(f"{uid}:{node.get('checksum', {}).get('checksum', '')}:{json.dumps(node.get('config', {}).get('restate_days'))}")
            depends = node.get("depends_on", {})
            pending.extend(depends.get("nodes", []))
            pending.extend(depends.get("macros", []))
        elif uid in macros:
            parts.append(f"{uid}:{hashlib.sha256(macros[uid].get('macro_sql', '').encode()).hexdigest()}")
            pending.extend(macros[uid].get("depends_on", {}).get("macros", []))
        elif uid in sources:
            parts.append(uid)
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:16]


def last_build(settings: Settings, use_case: str, scope: str = "features") -> dict[str, Any] | None:
    """The recorded build of the use case's ``scope`` (fingerprint, built_through, …), or None."""
    from nightshift.warehouse import DBT_BUILDS, TableMissing, Warehouse

    try:
        rows = Warehouse.from_uri(settings.warehouse_uri).read(DBT_BUILDS, {"use_case": use_case, "scope": scope})
    except TableMissing:
        return None
    if rows.empty:
        return None
    row = rows.sort_values("built_at").iloc[-1].to_dict()
    row["built_through"] = _as_date(row["built_through"])
    return row


def days_to_build(settings: Settings, use_case: UseCase, day: date, full_refresh: bool = False,
                  scope: str = "features", first_day: date | None = None) -> BuildPlan:
    """The days tonight's dbt run for ``day`` (and, if given, every day from ``first_day``) builds
    (see the module's docstring)."""
    fingerprint = definition_fingerprint(settings.dbt_manifest, use_case, scope)
    earliest = min(first_day, day) if first_day else day

    def full(reason: str) -> BuildPlan:
        return BuildPlan(use_case.name, day, None, None, fingerprint, reason, scope)

    if full_refresh:
        return full("full_refresh was asked for in the run's conf")
    previous = last_build(settings, use_case.name, scope)
    if previous is None:
        return full("no earlier build is recorded")
    if previous["fingerprint"] != fingerprint:
        return full(f"the models' definitions changed (fingerprint {previous['fingerprint']} -> {fingerprint})")
    built_through: date = previous["built_through"]
    first = min(earliest, built_through + timedelta(days=1))
    last = max(day, built_through)
    if earliest <= built_through:
        reason = f"{earliest} was built before: rebuilding it and the days after it, through {last}"
    elif first < day:
        reason = f"days {first} to {day} are new (built through {built_through})"
    else:
        reason = f"{day} is the next day (built through {built_through})"
    return BuildPlan(use_case.name, day, first, last, fingerprint, reason, scope)


def record_build(settings: Settings, plan: BuildPlan, run_id: str | None = None) -> None:
    """Record that dbt built ``plan`` (call only after it succeeded)."""
    import pandas as pd

    from nightshift.warehouse import DBT_BUILDS, PartitionWrite, Warehouse

    row = pd.DataFrame([{
        "fingerprint": plan.fingerprint,
        "built_through": pd.Timestamp(plan.built_through),
        "first_day": pd.Timestamp(plan.first) if plan.first else pd.NaT,
        "last_day": pd.Timestamp(plan.last) if plan.last else pd.NaT,
        "full_build": plan.full,
        "reason": plan.reason,
        "airflow_run_id": run_id or "",
        "built_at": pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None),
    }])
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions(
        [PartitionWrite(DBT_BUILDS, {"use_case": plan.use_case, "scope": plan.scope}, row)])


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    import pandas as pd

    return pd.Timestamp(value).date()
