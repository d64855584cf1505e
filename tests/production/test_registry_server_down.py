"""The MLflow tracking server goes down while a challenger is registered (the retrain DAG's register
step, ``registry.register``), against a real ``mlflow server`` on Postgres with its artifacts on S3.

* Down before the call: the step fails with ``RegistryUnavailable`` naming the server's URI, the
  model and the run, and saying what to do; after a restart on the same address, the retry
  registers exactly one version, with its tags.
* Gone right after the version was created (its tags not yet written): the retry finds that
  version and finishes it; the run still has exactly one version.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nightshift.modeling import registry
from nightshift.settings import Settings
from tests.conftest import free_port, mlflow_server, postgres_database

pytestmark = pytest.mark.production
TAGS = {"gate": "passed", "feature_service": "churn_v1"}


@pytest.fixture
def mlflow_backend(s3_bucket: str) -> Iterator[tuple[str, str]]:
    """A Postgres database for MLflow's backend store, and an S3 location for its artifacts."""
    with postgres_database("nightshift_test_mlflow") as url:
        yield url, f"s3://{s3_bucket}/mlflow"


def logged_model(settings: Settings) -> tuple[str, str]:
    """A small LightGBM logged through the server in a run of its own: (model URI, run id)."""
    import lightgbm as lgb
    import mlflow

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(features, (features[:, 0] > 0).astype(int)), 5)
    registry.connect(settings)
    with mlflow.start_run() as run:
        uri = mlflow.lightgbm.log_model(booster, name="model").model_uri
    return uri, run.info.run_id


def test_registering_while_mlflow_is_down_fails_naming_the_uri_and_the_retry_registers_once(
    mlflow_backend: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    backend, artifacts = mlflow_backend
    port = free_port()
    # one try per request, and a short wait for an answer: the server is down, not slow
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    settings = Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path), "NIGHTSHIFT_MLFLOW_URI": f"http://127.0.0.1:{port}"})
    with mlflow_server(backend, artifacts, tmp_path / "mlflow.log", port=port):
        model_uri, run_id = logged_model(settings)
        client = registry.connect(settings)
    # the server is down now
    with pytest.raises(registry.RegistryUnavailable) as down:
        registry.register(client, "churn", model_uri, run_id, TAGS)
    message = str(down.value)
    assert f"http://127.0.0.1:{port}" in message and "'churn'" in message and run_id in message, message
    assert "clear this task" in message, message

    with mlflow_server(backend, artifacts, tmp_path / "mlflow.log", port=port):
        client = registry.connect(settings)
        version = registry.register(client, "churn", model_uri, run_id, TAGS)
        assert version.version == "1" and TAGS.items() <= version.tags.items()
        assert registry.register(client, "churn", model_uri, run_id, TAGS).version == "1", "a second retry adds nothing"

        # the server dies right after creating the next run's version, before its tags are written
        second_uri, second_run = logged_model(settings)
        real = MlflowClient.set_model_version_tag

        def connection_lost(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            raise ConnectionError("connection reset by peer (injected)")

        monkeypatch.setattr(MlflowClient, "set_model_version_tag", connection_lost)
        with pytest.raises(registry.RegistryUnavailable, match="injected"):
            registry.register(client, "churn", second_uri, second_run, TAGS)
        monkeypatch.setattr(MlflowClient, "set_model_version_tag", real)
        retried = registry.register(client, "churn", second_uri, second_run, TAGS)
        assert retried.version == "2" and TAGS.items() <= retried.tags.items()
        versions = client.search_model_versions("name = 'churn'")
        assert sorted((v.version, v.run_id) for v in versions) == [("1", run_id), ("2", second_run)]
