"""Every alias move has its row in ``meta.model_promotions``, even when the process stops between
moving the alias and writing the row: the retry (or the next alias move) writes it, and
``rollback --to previous`` still finds the champion before.

The crash is the audit write raising once, right after MLflow moved the alias; everything else is
a real MLflow (SQLite) and the embedded warehouse.
"""

from __future__ import annotations

import pytest

from nightshift import cli
from nightshift.modeling import registry, retrain
from nightshift.settings import Settings
from tests.unit.test_registry import USE_CASE, champion, log_candidate, mlflow_settings, register  # noqa: F401


class Crash(Exception):
    """The process dies here (a worker killed, the warehouse gone for a moment)."""


def crash_after_the_next_move(monkeypatch: pytest.MonkeyPatch) -> list[registry.AliasMove]:
    """The next audit write of an alias move raises, after the alias has moved; later writes work."""
    real = registry.record
    crashed: list[registry.AliasMove] = []

    def record(settings: Settings, move: registry.AliasMove, *args: object, **kwargs: object) -> dict:
        if move.action in ("promoted", "rolled_back") and not crashed:
            crashed.append(move)
            raise Crash(f"killed after moving {move.alias} to {move.to_version}")
        return real(settings, move, *args, **kwargs)

    monkeypatch.setattr(registry, "record", record)
    return crashed


def moves(settings: Settings) -> list[list]:
    trail = registry.audit_trail(settings, USE_CASE)
    rows = trail[["action", "from_version", "to_version"]].astype(object)
    return rows.where(rows.notna(), None).values.tolist()


def test_a_retried_register_writes_the_row_of_the_promotion_it_made(
    mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    second = log_candidate(settings, "passed", "second")
    crashed = crash_after_the_next_move(monkeypatch)
    with pytest.raises(Crash):
        register(settings, second)
    assert crashed and champion(settings) == "2", "the alias moved, its row is missing"
    assert moves(settings) == [["promoted", None, "1"]]

    retried = register(settings, second)  # Airflow's retry of the register task

    assert retried["promoted"] is True and retried["version"] == "2"
    assert moves(settings) == [["promoted", None, "1"], ["promoted", "1", "2"]]
    row = registry.audit_trail(settings, USE_CASE).iloc[-1]
    assert row["mlflow_run_id"] == second and row["event_id"] == retried["audit"]
    assert row["reason"].startswith("gate passed against version 1") and "written by a later run" in row["reason"]
    assert register(settings, second)["note"] == "already champion", "a third try changes nothing"
    assert len(moves(settings)) == 2


def test_rollback_to_previous_works_after_a_promotion_lost_its_row(
    mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    crash_after_the_next_move(monkeypatch)
    with pytest.raises(Crash):
        register(settings, log_candidate(settings, "passed", "second"))  # never retried

    assert cli.main(["rollback", "--use-case", USE_CASE, "--to", "previous", "--reason", "v2 is bad"]) == 0

    assert champion(settings) == "1"
    assert moves(settings) == [["promoted", None, "1"], ["promoted", "1", "2"], ["rolled_back", "2", "1"]]


def test_a_retried_rollback_is_not_applied_twice(mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "passed", "second"))
    use_case = retrain.use_case_of(settings, USE_CASE)
    crash_after_the_next_move(monkeypatch)
    with pytest.raises(Crash):
        registry.rollback(settings, use_case, "previous", "v2 is bad", airflow_run_id="manual__r1")
    assert champion(settings) == "1"

    again = registry.rollback(settings, use_case, "previous", "v2 is bad", airflow_run_id="manual__r1")  # the retry

    assert (again["action"], again["from_version"], again["to_version"]) == ("rolled_back", "2", "1")
    assert champion(settings) == "1", "the retry finishes the rollback; it does not roll back the rollback"
    assert moves(settings) == [["promoted", None, "1"], ["promoted", "1", "2"], ["rolled_back", "2", "1"]]
    # a new request for `previous` now goes back to version 2, as before the crash it would have
    registry.rollback(settings, use_case, "previous", "undo", airflow_run_id="manual__r2")
    assert champion(settings) == "2"


def test_a_crash_before_the_alias_moved_leaves_nothing_to_reconcile(
    mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    second = log_candidate(settings, "passed", "second")
    real = MlflowClient.set_registered_model_alias
    calls: list[str] = []

    def dies_once(self: MlflowClient, name: str, alias: str, version: str) -> None:
        if not calls:
            calls.append(version)
            raise Crash("killed before the alias moved")
        real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", dies_once)
    with pytest.raises(Crash):
        register(settings, second)
    assert champion(settings) == "1" and moves(settings) == [["promoted", None, "1"]]

    assert register(settings, second)["promoted"] is True
    assert moves(settings) == [["promoted", None, "1"], ["promoted", "1", "2"]]
    tags = registry.connect(settings).get_registered_model(USE_CASE).tags
    assert registry.PENDING_MOVE_TAG not in tags


def test_an_unreadable_audit_trail_is_an_error_not_an_empty_history(
    mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift.warehouse import MODEL_PROMOTIONS, Warehouse, WarehouseError

    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "passed", "second"))
    real_read = Warehouse.from_uri(settings.warehouse_uri).__class__.read

    def lost_connection(self: Warehouse, table: str, partition: object = None) -> object:
        if table == MODEL_PROMOTIONS:
            raise WarehouseError(f"cannot read {table}: server closed the connection unexpectedly")
        return real_read(self, table, partition)

    with monkeypatch.context() as patched:
        patched.setattr(Warehouse.from_uri(settings.warehouse_uri).__class__, "read", lost_connection)
        with pytest.raises(WarehouseError, match="cannot read meta.model_promotions.*not taken as missing data"):
            registry.rollback(settings, retrain.use_case_of(settings, USE_CASE), "previous", "AUC dropped")
    assert champion(settings) == "2"
    assert "rollback_refused" not in registry.audit_trail(settings, USE_CASE)["action"].tolist()
