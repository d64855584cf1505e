"""The MLflow registry by aliases, and the promotion audit trail.

Scoring reads ``models:/<model>@champion``; only :func:`move_champion` moves that alias, and
every move (and every refused one) is a row in ``meta.model_promotions``. MLflow stages are
never used. A version's ``feature_service`` tag is the contract scoring relies on.

Three rules keep the alias and its audit trail honest:

* Only "this alias (or model) does not exist" means no champion; any other MLflow error is an
  error (the task fails and retries), never a reason to judge a challenger against nothing.
* Every alias move holds :func:`registry_lock`, a lock that Airflow tasks and the ``nightshift``
  CLI share across processes (a Postgres advisory lock on the production warehouse, an ``flock``
  file beside the embedded one). The ``model_registry`` Airflow pool stays as a queue in front.
* A move first writes its intent (a tag on the registered model), then moves the alias, then
  writes its audit row, then clears the intent. Whoever takes the lock next calls
  :func:`reconcile`: an intent whose move happened but whose row is missing gets its row.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from nightshift.settings import Settings
from nightshift.usecase import UseCase

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Run tag written by the gate: the champion version the challenger was judged against ("none").
EVALUATED_CHAMPION_TAG = "nightshift.gate_champion_version"
NO_CHAMPION = "none"
#: Registered-model tag holding an alias move that has started and whose audit row may be missing.
PENDING_MOVE_TAG = "nightshift.pending_alias_move"
#: How long an alias move waits for the registry lock before failing (seconds).
LOCK_TIMEOUT_SECONDS = 600.0
#: The Postgres advisory lock key of the registry lock (one key; fits in 31 bits: "NSRG").
ADVISORY_LOCK_KEY = 0x4E535247
LOCK_FILE = ".model_registry.lock"


class RegistryUnavailable(RuntimeError):
    """MLflow (or the registry lock's store) could not be reached or answered with an error; retry."""


class RollbackRefused(RuntimeError):
    """A rollback target is not acceptable (failed its gate, unknown, already champion)."""


class RegistryBusy(RuntimeError):
    """Another process holds the registry lock past the wait; the message names it."""


class ChampionMoved(RuntimeError):
    """``champion`` moved after the gate judged a challenger against it; the promotion is refused."""


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


def alias_missing(exc: Exception) -> bool:
    """Whether an MLflow error says "no such registered model" or "no such alias" (and nothing else).

    MLflow 3.17, SQL store and tracking server alike: a missing model is ``RESOURCE_DOES_NOT_EXIST``;
    a missing alias of an existing model is ``INVALID_PARAMETER_VALUE`` "Registered model alias …
    not found". A broken store answers ``TEMPORARILY_UNAVAILABLE``, an unreachable server
    ``INTERNAL_ERROR``: those are errors, not "no champion".
    """
    code = getattr(exc, "error_code", None)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    text = str(exc).lower()
    return code == "INVALID_PARAMETER_VALUE" and "alias" in text and "not found" in text


def champion_version(client: MlflowClient, model_name: str, alias: str = CHAMPION) -> ModelVersion | None:
    """The version ``alias`` points to, or None when the model or the alias does not exist.

    Raises:
        RegistryUnavailable: MLflow failed otherwise (unreachable, broken store): the caller must
            not go on as if there were no champion.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if alias_missing(exc):
            return None
        raise RegistryUnavailable(
            f"cannot read alias '{alias}' of model {model_name} from MLflow at {_client_uri(client)}: "
            f"{getattr(exc, 'error_code', '')}: {' '.join(str(exc).split())[:300]}. This is not taken as "
            "'no champion'; check the tracking store, the task will retry"
        ) from exc


def version_for_run(client: MlflowClient, model_name: str, run_id: str) -> ModelVersion | None:
    """The version already registered from ``run_id`` (a retried task must not register twice).

    A model that does not exist yet has no versions (MLflow answers with an empty list); any
    MLflow error propagates, so a failed search never registers a second version.
    """
    found = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    return found[0] if found else None


def register(client: MlflowClient, model_name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``model_name`` with ``tags`` (once per run).

    A retry after a failure at any step (the server down before, or gone after the version was
    created) finds the run's version and finishes it: one version per run, with all its tags.

    Raises:
        RegistryUnavailable: MLflow failed; names the tracking URI, the model and the run.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        version = version_for_run(client, model_name, run_id)
        if version is None:
            try:
                client.get_registered_model(model_name)
            except MlflowException as exc:
                if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                    raise
                client.create_registered_model(model_name, description="Registered by Nightshift; `champion` is what scoring reads.")
            version = mlflow.register_model(model_uri, model_name, tags={k: _tag(v) for k, v in tags.items()})
        # set again: register_model may return before a file-backed store shows its tags, and a
        # retry may find a version whose tags were never written
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version.version, key, _tag(value))
        return client.get_model_version(model_name, version.version)
    except Exception as exc:  # noqa: BLE001 - MLflow wraps transport errors in several types
        raise RegistryUnavailable(
            f"registering run {run_id} as a version of {model_name!r} failed at MLflow "
            f"{_safe_uri(mlflow.get_registry_uri())}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}. "
            "Check that the tracking server is up, then clear this task: the retry registers this run's "
            "version once (a version it already made is reused)"
        ) from exc


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
    #: Why a drift-triggered retrain was asked for (the monitoring request's reasons); None otherwise.
    trigger_reasons: str | None = None


def new_event_id() -> str:
    """An audit event id: sortable by time (the audit trail's order), unique."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def record(settings: Settings, move: AliasMove, event_id: str | None = None) -> dict[str, Any]:
    """Append ``move`` to the audit table as event ``event_id`` (new when None; one partition per
    event; never rewritten)."""
    import pandas as pd

    from nightshift.warehouse import MODEL_PROMOTIONS, PartitionWrite, Warehouse

    now = datetime.now(timezone.utc)
    event_id = event_id or new_event_id()
    row = {
        "alias": move.alias,
        "model_name": move.model_name,
        "action": move.action,
        "from_version": move.from_version,
        "to_version": move.to_version,
        "trigger": move.trigger,
        "trigger_reasons": move.trigger_reasons,
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


@contextlib.contextmanager
def registry_lock(settings: Settings, holder: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the registry lock, shared by every process that moves an alias (DAG tasks, the CLI).

    A Postgres advisory lock (session-level, on its own connection) when the warehouse is
    Postgres, an ``flock`` on a file beside the warehouse otherwise; either is released when its
    process dies. ``holder`` says who holds it, for the message of whoever waits.

    Raises:
        RegistryBusy: still held by another process after ``timeout`` seconds (default
            :data:`LOCK_TIMEOUT_SECONDS`); the message names that process.
        RegistryUnavailable: the Postgres warehouse that keeps the lock cannot be reached.
    """
    import os
    import socket

    wait = LOCK_TIMEOUT_SECONDS if timeout is None else timeout
    who = f"{holder} (pid {os.getpid()} on {socket.gethostname()}, since {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC)"
    lock = _postgres_lock if settings.warehouse_uri.startswith("postgres") else _file_lock
    with lock(settings, who, wait):
        yield


@contextlib.contextmanager
def _file_lock(settings: Settings, who: str, wait: float) -> Iterator[None]:
    import fcntl
    import time

    path = settings.warehouse_dir / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    raise RegistryBusy(_busy_message(handle.read().strip() or "another process", wait, str(path))) from None
                time.sleep(0.1)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(who)
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _postgres_lock(settings: Settings, who: str, wait: float) -> Iterator[None]:
    import time
    from urllib.parse import urlparse

    import psycopg2

    url = urlparse(settings.warehouse_uri)
    where = f"{url.hostname}:{url.port or 5432}{url.path}"  # never the password
    try:
        con = psycopg2.connect(settings.warehouse_uri.replace("postgresql+psycopg2://", "postgresql://"),
                               application_name=f"nightshift registry lock: {who}"[:63])
    except psycopg2.OperationalError as exc:
        raise RegistryUnavailable(f"cannot take the registry lock in the Postgres warehouse at {where}: "
                                  f"{' '.join(str(exc).split())}. Check NIGHTSHIFT_WAREHOUSE_URI; the task will retry") from exc
    con.autocommit = True
    deadline = time.monotonic() + wait
    try:
        with con.cursor() as cur:
            while True:
                cur.execute("select pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
                if cur.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    cur.execute(
                        "select a.application_name, a.pid, a.client_addr from pg_locks l join pg_stat_activity a "
                        "using (pid) where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = %s "
                        "and l.database = (select oid from pg_database where datname = current_database())",
                        [ADVISORY_LOCK_KEY],
                    )
                    held = cur.fetchone()
                    holder = f"{held[0] or 'a session'} (server pid {held[1]}, from {held[2]})" if held else "another session"
                    raise RegistryBusy(_busy_message(holder, wait, f"advisory lock {ADVISORY_LOCK_KEY} in {where}"))
                time.sleep(0.1)
            try:
                yield
            finally:
                cur.execute("select pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    finally:
        con.close()


def _busy_message(holder: str, wait: float, where: str) -> str:
    return (f"the model registry lock ({where}) is held by {holder}; waited {wait:g} s. An alias move (a retrain's "
            "register step or a rollback) is in progress: run this again when it ends")


def move_champion(settings: Settings, client: MlflowClient, move: AliasMove, request: str = "") -> dict[str, Any]:
    """Point ``champion`` at ``move.to_version`` and record it; the only place the alias moves.

    Call it holding :func:`registry_lock`. The intent is written first (a registered-model tag
    naming the event id and ``request``, what asked for the move), so that a crash between the
    move and the audit row is finished by :func:`reconcile`.
    """
    if move.action not in ("promoted", "rolled_back"):
        raise ValueError(f"{move.action!r} does not move the alias")
    event_id = new_event_id()
    intent = {**asdict(move), "reason": move.reason[:2000], "event_id": event_id, "request": request}
    client.set_registered_model_tag(move.model_name, PENDING_MOVE_TAG, json.dumps(intent))
    client.set_registered_model_alias(move.model_name, move.alias, str(move.to_version))
    event = record(settings, move, event_id=event_id)
    client.delete_registered_model_tag(move.model_name, PENDING_MOVE_TAG)
    return event


def reconcile(settings: Settings, client: MlflowClient, model_name: str) -> dict[str, Any] | None:
    """Finish an alias move that stopped between moving the alias and writing its audit row.

    Call it holding :func:`registry_lock`, before reading the champion. When the pending move
    happened (the alias points at its target) and its row is missing, the row is written now,
    with the event id (so the time order) of the move. A move that never happened is forgotten.

    Returns:
        The audit row of the finished move, with ``request`` (what asked for it), or None when
        nothing was pending or the move never happened.
    """
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    raw = model.tags.get(PENDING_MOVE_TAG)
    if raw is None:
        return None
    intent = json.loads(raw)
    move = AliasMove(**{f.name: intent[f.name] for f in fields(AliasMove) if f.name in intent})
    current = champion_version(client, model_name, move.alias)
    finished = None
    if current is not None and str(current.version) == str(move.to_version):
        trail = audit_trail(settings, move.use_case)
        done = trail[trail["event_id"] == intent["event_id"]] if len(trail) else trail
        if len(done):
            finished = {k: (None if _absent(v) else v) for k, v in done.iloc[0].to_dict().items()}
        else:
            finished = record(settings, replace(move, reason=f"{move.reason} (audit row written by a later run: the "
                                                           "first attempt stopped after moving the alias)"),
                              event_id=intent["event_id"])
        finished["request"] = intent["request"]
    client.delete_registered_model_tag(model_name, PENDING_MOVE_TAG)
    return finished


def audit_trail(settings: Settings, use_case: str) -> Any:
    """Every recorded decision of ``use_case``, oldest first (empty frame when none yet).

    Raises:
        WarehouseError: the audit table exists but cannot be read (never an empty trail).
    """
    import pandas as pd

    from nightshift.modeling.reads import read_if_exists
    from nightshift.warehouse import MODEL_PROMOTIONS, Warehouse

    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    rows = read_if_exists(warehouse, MODEL_PROMOTIONS, lambda: warehouse.read(MODEL_PROMOTIONS))
    if rows is None:
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
    return None if _absent(before) else str(before)


def _absent(value: Any) -> bool:
    """A missing audit value as the warehouse returns it (None, NA, NaN or its text)."""
    import pandas as pd

    return value is None or (not isinstance(value, str) and bool(pd.isna(value))) or str(value) in ("", "<NA>", "None", "nan")


def rollback(
    settings: Settings,
    use_case: UseCase,
    to: str,
    reason: str,
    force: bool = False,
    airflow_run_id: str | None = None,
    lock_timeout: float | None = None,
) -> dict[str, Any]:
    """Move ``champion`` back to version ``to`` (a number, or ``previous``), audited, holding
    the registry lock.

    Refuses, and records the refusal, when the target failed its gate (unless ``force``), does
    not exist, or is already the champion. The same request retried after it stopped between
    the alias move and its audit row is finished (the row written), not applied twice.

    Raises:
        RollbackRefused: with the reason, after the refusal was recorded.
        RegistryBusy: another alias move held the lock past ``lock_timeout`` seconds.
        RegistryUnavailable: MLflow failed (not taken as "no champion" or "no such version").
    """
    from mlflow.exceptions import MlflowException

    if not reason.strip():
        raise RollbackRefused("a rollback needs a reason (--reason \"...\"): it goes into the audit trail")
    client = connect(settings)
    model = use_case.model_name
    request = json.dumps({"rollback": to, "force": force, "reason": reason, "airflow_run_id": airflow_run_id or ""})
    with registry_lock(settings, f"rollback of {model} to {to}", lock_timeout):
        finished = reconcile(settings, client, model)
        if finished is not None and finished["request"] == request:
            return finished
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
        except MlflowException as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                raise RegistryUnavailable(
                    f"cannot read version {target} of {model} from MLflow at {_client_uri(client)}: "
                    f"{' '.join(str(exc).split())[:300]}; nothing was moved, run the rollback again"
                ) from exc
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
        ), request=request)


def _tag(value: Any) -> str:
    """MLflow tag values are strings of bounded length."""
    return str(value)[:4900]


def _client_uri(client: MlflowClient) -> str:
    """The registry URI a client talks to, without credentials."""
    return _safe_uri(str(getattr(client, "_registry_uri", "") or getattr(client, "_tracking_uri", "")))


def _safe_uri(uri: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri
