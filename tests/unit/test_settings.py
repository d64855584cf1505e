"""Settings: embedded default when unset, every profile piece overridable, nothing at import."""

from __future__ import annotations

from pathlib import Path

from nightshift.settings import PROJECT_ROOT, Settings


def test_embedded_default_lives_in_one_state_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"NIGHTSHIFT_HOME": str(tmp_path)})
    assert settings.profile == "embedded"
    assert settings.landing_uri == str(tmp_path / "landing")
    assert settings.warehouse_uri == f"duckdb:///{tmp_path}/warehouse/warehouse.duckdb"
    assert settings.artifacts_uri == str(tmp_path / "artifacts")
    assert settings.mlflow_uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert settings.config_dir == PROJECT_ROOT / "config"


def test_unset_home_defaults_to_git_ignored_state_dir() -> None:
    settings = Settings.from_env({})
    assert settings.home == PROJECT_ROOT / "state"
    assert "state/" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_production_profile_from_environment() -> None:
    env = {
        "NIGHTSHIFT_LANDING_URI": "s3://landing-bucket/landing",
        "NIGHTSHIFT_WAREHOUSE_URI": "postgresql://nightshift@db:5432/warehouse",
        "NIGHTSHIFT_ARTIFACTS_URI": "s3://artifacts-bucket/artifacts",
        "NIGHTSHIFT_MLFLOW_URI": "http://mlflow:5000",
    }
    settings = Settings.from_env(env)
    assert settings.profile == "production"
    assert (settings.landing_uri, settings.warehouse_uri) == (env["NIGHTSHIFT_LANDING_URI"], env["NIGHTSHIFT_WAREHOUSE_URI"])
    assert (settings.artifacts_uri, settings.mlflow_uri) == (env["NIGHTSHIFT_ARTIFACTS_URI"], env["NIGHTSHIFT_MLFLOW_URI"])


def test_settings_are_read_when_asked_not_at_import(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "a"))
    first = Settings.from_env()
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path / "b"))
    assert Settings.from_env().home != first.home
