"""The MLflow registry by aliases, and the promotion audit trail.

Scoring reads ``models:/<model>@champion``; only :func:`move_champion` moves that alias, and
every move (and every refused one) is a row in ``meta.model_promotions``. MLflow stages are
never used. A version's ``feature_service`` tag is the contract scoring relies on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from nightshift.settings import Settings
from nightshift.usecase import UseCase

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"


class RegistryUnavailable(RuntimeError):
    """MLflow could not be reached; the task should retry."""


class RollbackRefused(RuntimeError):
    """A rollback target is not acceptable (failed its gate, unknown, already champion)."""


def experiment_name(use_case: UseCase) -> str:
    """One MLflow experiment per use case."""
    return f"nightshift-{use_case.name}"


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the profile's tracking server and check that it answers.

    Raises:
        RegistryUnavailable: naming the URI (without credentials) and what to check.
    """
    import mlflow
    from mlflow import MlflowClient

    if settings.mlflow_uri.startswith("sqlite:///"):
        from pathlib import Path

        Path(settings.mlflow_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    client = MlflowClient(settings.mlflow_uri, settings.mlflow_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MLflow wraps transport errors in several types
        raise RegistryUnavailable(
            f"cannot reach MLflow at {_safe_uri(settings.mlflow_uri)}: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}. Check NIGHTSHIFT_MLFLOW_URI and that the tracking "
            "server is up; the task will retry"
        ) from exc
    return client


def ensure_experiment(settings: Settings, use_case: UseCase) -> str:
    """The use case's experiment id, created on first use (artifacts under the state directory
    for a local tracking store; a tracking server keeps its own)."""
    import mlflow

    name = experiment_name(use_case)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if not settings.mlflow_uri.startswith(("http://", "https://")):
        from pathlib import Path

        artifacts = settings.artifacts_uri
        location = f"{artifacts.rstrip('/')}/mlflow" if "://" in artifacts else (Path(artifacts) / "mlflow").resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def champion_version(client: MlflowClient, model_name: str, alias: str = CHAMPION) -> ModelVersion | None:
    """The version ``alias`` points to, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def version_for_run(client: MlflowClient, model_name: str, run_id: str) -> ModelVersion | None:
    """The version already registered from ``run_id`` (a retried task must not register twice)."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return found[0] if found else None


def register(client: MlflowClient, model_name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``model_name`` with ``tags`` (once per run)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    existing = version_for_run(client, model_name, run_id)
    if existing is not None:
        return existing
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="Registered by Nightshift; `champion` is what scoring reads.")
    version = mlflow.register_model(model_uri, model_name, tags={k: _tag(v) for k, v in tags.items()})
    # register_model may return before the tags of a file-backed store are visible; set them again
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version.version, key, _tag(value))
    return client.get_model_version(model_name, version.version)


@dataclass(frozen=True)
class AliasMove:
    """One decision about the ``champion`` alias, as written to ``meta.model_promotions``."""

    use_case: str
    model_name: str
    action: str  # promoted | rejected | rolled_back | rollback_refused
    from_version: str | None
    to_version: str | None
    trigger: str
    reason: str
    gate_verdict: str
    mlflow_run_id: str | None
    airflow_run_id: str | None
    alias: str = CHAMPION


def record(settings: Settings, move: AliasMove) -> dict[str, Any]:
    """Append ``move`` to the audit table (one partition per event; never rewritten)."""
    import pandas as pd

    from nightshift.warehouse import MODEL_PROMOTIONS, PartitionWrite, Warehouse

    now = datetime.now(timezone.utc)
    event_id = f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    row = {
        "alias": move.alias,
        "model_name": move.model_name,
        "action": move.action,
        "from_version": move.from_version,
        "to_version": move.to_version,
        "trigger": move.trigger,
        "reason": move.reason,
        "gate_verdict": move.gate_verdict,
        "mlflow_run_id": move.mlflow_run_id,
        "airflow_run_id": move.airflow_run_id,
        "recorded_at": pd.Timestamp(now).tz_localize(None),
    }
    frame = pd.DataFrame([row]).astype({k: "string" for k in row if k != "recorded_at"})
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions(
        [PartitionWrite(MODEL_PROMOTIONS, {"use_case": move.use_case, "event_id": event_id}, frame)]
    )
    return {"event_id": event_id, **row, "recorded_at": now.isoformat()}


def move_champion(settings: Settings, client: MlflowClient, move: AliasMove) -> dict[str, Any]:
    """Point ``champion`` at ``move.to_version`` and record it; the only place the alias moves."""
    if move.action not in ("promoted", "rolled_back"):
        raise ValueError(f"{move.action!r} does not move the alias")
    client.set_registered_model_alias(move.model_name, move.alias, str(move.to_version))
    return record(settings, move)


def audit_trail(settings: Settings, use_case: str) -> Any:
    """Every recorded decision of ``use_case``, oldest first (empty frame when none)."""
    import pandas as pd

    from nightshift.warehouse import MODEL_PROMOTIONS, Warehouse, WarehouseError

    try:
        rows = Warehouse.from_uri(settings.warehouse_uri).read(MODEL_PROMOTIONS)
    except WarehouseError:
        return pd.DataFrame()
    return rows[rows["use_case"] == use_case].sort_values("event_id", ignore_index=True)


def previous_champion(settings: Settings, use_case: str, current: str) -> str | None:
    """The version ``champion`` pointed to before it last moved to ``current``."""
    trail = audit_trail(settings, use_case)
    if trail.empty:
        return None
    moves = trail[trail["action"].isin(["promoted", "rolled_back"]) & (trail["to_version"] == current)]
    if moves.empty:
        return None
    before = moves.iloc[-1]["from_version"]
    return None if before is None or str(before) in ("", "<NA>", "None") else str(before)


def rollback(
    settings: Settings,
    use_case: UseCase,
    to: str,
    reason: str,
    force: bool = False,
    airflow_run_id: str | None = None,
) -> dict[str, Any]:
    """Move ``champion`` back to version ``to`` (a number, or ``previous``), audited.

    Refuses, and records the refusal, when the target failed its gate (unless ``force``), does
    not exist, or is already the champion.

    Raises:
        RollbackRefused: with the reason, after the refusal was recorded.
    """
    from mlflow.exceptions import MlflowException

    if not reason.strip():
        raise RollbackRefused("a rollback needs a reason (--reason \"...\"): it goes into the audit trail")
    client = connect(settings)
    model = use_case.model_name
    current = champion_version(client, model)
    current_version = str(current.version) if current is not None else None
    trigger = "manual"

    def refuse(message: str, target: str | None) -> RollbackRefused:
        record(settings, AliasMove(use_case.name, model, "rollback_refused", current_version, target, trigger,
                                   f"{reason} | refused: {message}", "", None, airflow_run_id))
        return RollbackRefused(message)

    if to == "previous":
        if current_version is None:
            raise refuse(f"{model} has no champion to roll back from", None)
        target = previous_champion(settings, use_case.name, str(current_version))
        if target is None:
            raise refuse(f"no earlier champion of {model} is recorded in meta.model_promotions; "
                         "name a version: --to <version>", None)
    else:
        target = str(int(to))
    try:
        version = client.get_model_version(model, target)
    except MlflowException:
        raise refuse(f"{model} has no version {target}", target) from None
    if current_version is not None and str(current_version) == target:
        raise refuse(f"version {target} is already the champion of {model}", target)
    verdict = version.tags.get("gate", "unknown")
    if verdict != "passed" and not force:
        raise refuse(f"version {target} of {model} has gate={verdict} ({version.tags.get('gate_reasons', '')}); "
                     "pass --force to promote it anyway", target)
    return move_champion(settings, client, AliasMove(
        use_case.name, model, "rolled_back", current_version, target, trigger,
        reason + (" (forced past a failed gate)" if verdict != "passed" else ""), verdict,
        version.run_id, airflow_run_id,
    ))


def _tag(value: Any) -> str:
    """MLflow tag values are strings of bounded length."""
    return str(value)[:4900]


def _safe_uri(uri: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri
