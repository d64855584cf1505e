"""The registry by aliases and the audit trail, on a real MLflow (SQLite backend) and warehouse.

Candidates are MLflow runs logged the way ``retrain.train_challenger`` and
``evaluate_challenger`` leave them (a LightGBM model, the tags and parameters the register step
reads, a gate verdict); ``retrain.register_challenger`` then decides exactly as in the DAG.
"""

from __future__ import annotations

import socket
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from nightshift import cli
from nightshift.modeling import registry, retrain
from nightshift.settings import Settings

USE_CASE = "churn"


@pytest.fixture
def mlflow_settings(settings: Settings) -> Settings:
    registry.connect(settings)
    return settings


def log_candidate(settings: Settings, verdict: str, reasons: str = "", judged_against: str | None = "current") -> str:
    """A trained, gated challenger run, judged against ``judged_against`` (default: the champion
    now, as the evaluate step records it; None: no champion); returns its run id."""
    import mlflow

    use_case = retrain.use_case_of(settings, USE_CASE)
    if judged_against == "current":
        judged_against = champion(settings)
    experiment = registry.ensure_experiment(settings, use_case)
    rng = np.random.default_rng(len(reasons) + (verdict == "passed"))
    x = pd.DataFrame({"sessions_28d": rng.random(300), "support_tickets_28d": rng.random(300)})
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(x, (x.sum(axis=1) > 1).astype(int)), 5)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.lightgbm.log_model(booster, name="model")
        mlflow.log_params({"window.first_day": "2026-01-01", "window.last_day": "2026-02-01"})
        mlflow.set_tags({
            "nightshift.trained": "true",
            "nightshift.model_uri": info.model_uri,
            "nightshift.feature_service": use_case.feature_service,
            "gate": verdict,
            "gate_reasons": reasons,
            registry.EVALUATED_CHAMPION_TAG: judged_against or registry.NO_CHAMPION,
        })
        return run.info.run_id


def champion(settings: Settings) -> str | None:
    version = registry.champion_version(registry.connect(settings), USE_CASE)
    return None if version is None else str(version.version)


def register(settings: Settings, run_id: str, trigger: str = "schedule") -> dict:
    return retrain.register_challenger(settings, USE_CASE, run_id, trigger, f"scheduled__{run_id[:6]}")


def test_promotions_failed_gates_and_the_audit_trail(mlflow_settings: Settings) -> None:
    settings = mlflow_settings
    first = register(settings, log_candidate(settings, "passed"))
    assert first == {**first, "version": "1", "promoted": True}
    assert champion(settings) == "1"

    failed_run = log_candidate(settings, "failed", "floor.auc: holdout AUC 0.61 below the floor 0.7")
    failed = register(settings, failed_run, trigger="drift")
    assert failed["version"] == "2" and failed["promoted"] is False
    assert champion(settings) == "1", "a failed gate never moves the alias"
    client = registry.connect(settings)
    assert client.get_model_version(USE_CASE, "1").current_stage in (None, "None"), "aliases only, never stages"
    tags = client.get_model_version(USE_CASE, "2").tags
    assert tags["gate"] == "failed" and tags["trigger"] == "drift" and tags["feature_service"] == "churn_v1"
    assert "floor.auc" in tags["gate_reasons"] and tags["training_window"] == "2026-01-01..2026-02-01"

    third = register(settings, log_candidate(settings, "passed", "x"))
    assert third["version"] == "3" and champion(settings) == "3"

    trail = registry.audit_trail(settings, USE_CASE)
    assert trail["action"].tolist() == ["promoted", "rejected", "promoted"]
    assert trail[["from_version", "to_version"]].astype(object).where(trail[["from_version", "to_version"]].notna(), None).values.tolist() == [
        [None, "1"], ["1", "2"], ["1", "3"],
    ]
    assert trail.loc[1, "mlflow_run_id"] == failed_run and trail.loc[1, "trigger"] == "drift"
    assert trail.loc[1, "gate_verdict"] == "failed" and "floor.auc" in trail.loc[1, "reason"]
    assert trail["airflow_run_id"].str.startswith("scheduled__").all()
    assert trail["alias"].eq("champion").all() and trail["recorded_at"].notna().all()


def test_registering_the_same_run_twice_makes_one_version(mlflow_settings: Settings) -> None:
    run_id = log_candidate(mlflow_settings, "passed")
    assert register(mlflow_settings, run_id)["version"] == "1"
    again = register(mlflow_settings, run_id)
    assert again["version"] == "1" and again["promoted"] is False
    assert len(registry.connect(mlflow_settings).search_model_versions(f"name = '{USE_CASE}'")) == 1


def test_rollback_to_previous_moves_the_alias_and_is_audited(mlflow_settings: Settings) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "passed", "second"))
    assert champion(settings) == "2"

    assert cli.main(["rollback", "--use-case", USE_CASE, "--to", "previous", "--reason", "AUC dropped in prod"]) == 0

    assert champion(settings) == "1"
    last = registry.audit_trail(settings, USE_CASE).iloc[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("rolled_back", "2", "1")
    assert last["reason"] == "AUC dropped in prod" and last["trigger"] == "manual"
    # rolling back again goes to what was champion before version 1 became it again: version 2
    registry.rollback(settings, retrain.use_case_of(settings, USE_CASE), "previous", "undo")
    assert champion(settings) == "2"


def test_rollback_to_a_failed_version_is_refused_without_force_and_audited(
    mlflow_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = mlflow_settings
    register(settings, log_candidate(settings, "passed"))
    register(settings, log_candidate(settings, "failed", "slices.auc: region=north"))

    assert cli.main(["rollback", "--use-case", USE_CASE, "--to", "2", "--reason", "try it"]) == 2
    assert "gate=failed" in capsys.readouterr().err and champion(settings) == "1"
    refused = registry.audit_trail(settings, USE_CASE).iloc[-1]
    assert (refused["action"], refused["to_version"]) == ("rollback_refused", "2")
    assert "pass --force" in refused["reason"]

    assert cli.main(["rollback", "--use-case", USE_CASE, "--to", "2", "--reason", "hotfix", "--force"]) == 0
    assert champion(settings) == "2"
    forced = registry.audit_trail(settings, USE_CASE).iloc[-1]
    assert forced["action"] == "rolled_back" and "forced past a failed gate" in forced["reason"]


@pytest.mark.parametrize(
    ("to", "message"),
    [("previous", "no champion to roll back from"), ("7", "has no version 7")],
)
def test_rollback_refusals_name_the_problem(mlflow_settings: Settings, to: str, message: str) -> None:
    if to != "previous":
        register(mlflow_settings, log_candidate(mlflow_settings, "passed"))
    with pytest.raises(registry.RollbackRefused, match=message):
        registry.rollback(mlflow_settings, retrain.use_case_of(mlflow_settings, USE_CASE), to, "because")


def test_unreachable_mlflow_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    settings = Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path), "NIGHTSHIFT_MLFLOW_URI": f"http://127.0.0.1:{port}"})
    with pytest.raises(registry.RegistryUnavailable, match=rf"cannot reach MLflow at http://127.0.0.1:{port}.*will retry"):
        registry.connect(settings)
