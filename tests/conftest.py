"""Shared fixtures: an isolated Nightshift home per test, and small CSV batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT, Settings


@pytest.fixture
def nightshift_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """``NIGHTSHIFT_*`` variables pointing at a fresh state directory."""
    env = {"NIGHTSHIFT_HOME": str(tmp_path / "state")}
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI", "NIGHTSHIFT_MLFLOW_URI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env


@pytest.fixture
def settings(nightshift_env: dict[str, str]) -> Settings:
    """Embedded-profile settings in a fresh state directory."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def expectations_dir() -> Path:
    return PROJECT_ROOT / "expectations"


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    """A CSV file as landed: header line, then one line per row ('' for a missing value)."""
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def pytest_configure(config: pytest.Config) -> None:
    """Point any in-process Airflow import at a throwaway home and this repo's DAGs."""
    import os
    import tempfile

    from nightshift.runs import airflow_environment

    home = Path(tempfile.mkdtemp(prefix="nightshift-pytest-airflow-"))
    for key, value in airflow_environment(home).items():
        if key.startswith(("AIRFLOW", "GX_")):
            os.environ[key] = value
