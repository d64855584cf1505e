"""Only "no such model" or "no such alias" means no champion; any other MLflow error fails the step.

On a real MLflow (SQLite store in a temporary directory): a missing model or alias is None; a
broken store (the alias table gone) and an unreachable tracking server are errors, so the gate
never judges a challenger against nothing and the register step never promotes on the floors alone.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from nightshift.modeling import registry, retrain
from nightshift.settings import Settings
from tests.unit.test_registry import USE_CASE, champion, log_candidate, mlflow_settings, register  # noqa: F401

ALIASES = "registered_model_aliases"


@contextlib.contextmanager
def broken_alias_table(settings: Settings) -> Iterator[None]:
    """The tracking store loses its alias table (a half-applied migration, a damaged database)."""
    database = sqlite3.connect(settings.mlflow_uri.removeprefix("sqlite:///"))
    database.execute(f"alter table {ALIASES} rename to {ALIASES}_away")
    database.commit()
    try:
        yield
    finally:
        database.execute(f"alter table {ALIASES}_away rename to {ALIASES}")
        database.commit()
        database.close()


def test_a_missing_model_or_alias_is_no_champion(mlflow_settings: Settings) -> None:
    client = registry.connect(mlflow_settings)
    assert registry.champion_version(client, "never_registered") is None
    client.create_registered_model("no_alias_yet")
    assert registry.champion_version(client, "no_alias_yet") is None


def test_a_broken_tracking_store_is_an_error_not_no_champion(mlflow_settings: Settings) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    client = registry.connect(settings)
    with broken_alias_table(settings):
        with pytest.raises(registry.RegistryUnavailable, match=r"cannot read alias 'champion' of model churn .*"
                           r"TEMPORARILY_UNAVAILABLE.*not taken as 'no champion'.*will retry"):
            registry.champion_version(client, USE_CASE)
    assert champion(settings) == "1"


def test_an_unreachable_tracking_server_is_an_error_not_no_champion(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once the socket closes
    with pytest.raises(registry.RegistryUnavailable, match=rf"alias 'champion' of model churn from MLflow at {uri}"):
        registry.champion_version(MlflowClient(uri, uri), USE_CASE)


def gated_candidate_with_holdout(settings: Settings) -> str:
    """A trained run as ``train_challenger`` leaves it (model, holdout, training metrics), not yet gated."""
    import mlflow

    run_id = log_candidate(settings, "passed")
    client = registry.connect(settings)
    for tag in ("gate", "gate_reasons", registry.EVALUATED_CHAMPION_TAG):
        client.delete_tag(run_id, tag)
    rng = np.random.default_rng(3)
    holdout = pd.DataFrame({
        "customer_id": np.arange(2000), "sessions_28d": rng.random(2000), "support_tickets_28d": rng.random(2000),
        "region": rng.choice(["north", "south"], 2000), "plan": rng.choice(["basic", "premium"], 2000),
    })
    holdout["label"] = (holdout["sessions_28d"] + holdout["support_tickets_28d"] > 1).astype("int64")
    with mlflow.start_run(run_id=run_id):
        retrain._log_frame(holdout, retrain.HOLDOUT_ARTIFACT)
        mlflow.log_metrics({"training.rows": 5000.0, "training.positives": 1000.0, "training.label_std": 0.4})
    return run_id


def test_the_gate_fails_when_the_champion_cannot_be_read(mlflow_settings: Settings) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    run_id = gated_candidate_with_holdout(settings)
    with broken_alias_table(settings), pytest.raises(registry.RegistryUnavailable, match="not taken as 'no champion'"):
        retrain.evaluate_challenger(settings, USE_CASE, run_id)
    assert "gate" not in registry.connect(settings).get_run(run_id).data.tags, "no verdict judged against nothing"

    report = retrain.evaluate_challenger(settings, USE_CASE, run_id)  # the retry, the store mended
    assert report["champion_version"] == "1"
    assert registry.connect(settings).get_run(run_id).data.tags[registry.EVALUATED_CHAMPION_TAG] == "1"


def test_a_failed_version_lookup_is_not_a_refused_rollback(mlflow_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rollback --to N` refuses only when version N does not exist, not when MLflow fails."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "passed", "second"))

    def store_down(self: MlflowClient, name: str, version: str) -> None:
        raise MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE)

    monkeypatch.setattr(MlflowClient, "get_model_version", store_down)
    with pytest.raises(registry.RegistryUnavailable, match=r"cannot read version 1 of churn.*nothing was moved"):
        registry.rollback(settings, retrain.use_case_of(settings, USE_CASE), "1", "bad night")
    assert champion(settings) == "2"
    assert "rollback_refused" not in registry.audit_trail(settings, USE_CASE)["action"].tolist()

