"""The gate promotes only over the champion it judged against, and every alias move holds one lock
that Airflow tasks and the ``nightshift`` CLI share across processes.

The lock is held by a real second process (as a DAG task or a shell would hold it): an ``flock``
file beside the embedded warehouse, and a Postgres advisory lock on the production warehouse.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from nightshift import cli
from nightshift.modeling import registry, retrain
from nightshift.settings import Settings
from tests.unit.test_registry import USE_CASE, champion, log_candidate, mlflow_settings, register  # noqa: F401

HOLD = """
import sys
from nightshift.modeling import registry
from nightshift.settings import Settings
with registry.registry_lock(Settings.from_env(), sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def lock_held_elsewhere(holder: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Another process holding the registry lock until the block ends (or the test kills it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})
    try:
        assert proc.stdout.readline().strip() == "held", "the other process could not take the registry lock"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
        proc.wait(timeout=60)


def test_register_refuses_to_promote_over_a_champion_it_was_not_judged_against(mlflow_settings: Settings) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "passed", "second"))
    judged_against_2 = log_candidate(settings, "passed", "third")  # the gate ran while version 2 was champion
    registry.rollback(settings, retrain.use_case_of(settings, USE_CASE), "previous", "v2 misbehaves")
    assert champion(settings) == "1"

    with pytest.raises(registry.ChampionMoved, match=r"not promoting version 3 of churn: its gate passed against "
                       r"champion version 2, but champion is now version 1 .*clear this run's evaluate task"):
        register(settings, judged_against_2)

    assert champion(settings) == "1", "the rollback stands"
    assert registry.connect(settings).get_model_version(USE_CASE, "3").tags["gate"] == "passed"
    last = registry.audit_trail(settings, USE_CASE).iloc[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("promotion_refused", "1", "3")
    assert last["mlflow_run_id"] == judged_against_2


def test_the_cli_rollback_waits_for_the_lock_another_process_holds(
    mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "passed", "second"))
    monkeypatch.setattr(registry, "LOCK_TIMEOUT_SECONDS", 0.5, raising=False)
    rollback = ["rollback", "--use-case", USE_CASE, "--to", "previous", "--reason", "AUC dropped"]

    with lock_held_elsewhere("the register step of retrain_churn") as holder:
        assert cli.main(rollback) == 3
        err = capsys.readouterr().err
        assert "held by the register step of retrain_churn" in err and f"pid {holder.pid}" in err
        assert champion(settings) == "2", "nothing moves while another process holds the lock"

    assert cli.main(rollback) == 0
    assert champion(settings) == "1"


def test_register_changes_nothing_while_a_rollback_holds_the_lock_then_succeeds(mlflow_settings: Settings) -> None:
    settings = mlflow_settings
    run_id = log_candidate(settings, "passed")
    with lock_held_elsewhere("nightshift rollback (a shell)"):
        with pytest.raises(registry.RegistryBusy, match=r"held by nightshift rollback \(a shell\)"):
            retrain.register_challenger(settings, USE_CASE, run_id, "schedule", "scheduled__x", lock_timeout=0.3)
        assert registry.connect(settings).search_model_versions(f"name = '{USE_CASE}'") == []
    assert register(settings, run_id)["promoted"] is True


def test_a_killed_holder_frees_the_lock(settings: Settings) -> None:
    with lock_held_elsewhere("a task the scheduler will kill") as holder:
        holder.kill()
        holder.wait(timeout=60)
        with registry.registry_lock(settings, "the next task", timeout=30):
            pass


@pytest.mark.production("postgres")
def test_on_postgres_the_lock_is_an_advisory_lock_across_processes(
    nightshift_env: dict[str, str], postgres_url: str
) -> None:
    settings = Settings.from_env({**nightshift_env, "NIGHTSHIFT_WAREHOUSE_URI": postgres_url})
    with lock_held_elsewhere("the rollback DAG", {"NIGHTSHIFT_WAREHOUSE_URI": postgres_url}):
        with pytest.raises(registry.RegistryBusy, match=r"advisory lock .* held by nightshift registry lock: the rollback DAG"):
            with registry.registry_lock(settings, "a register step", timeout=0.3):
                pass
    with registry.registry_lock(settings, "a register step", timeout=30):
        pass
