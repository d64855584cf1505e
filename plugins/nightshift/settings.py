"""The one settings object: where Nightshift keeps its data, read from ``NIGHTSHIFT_*`` variables.

Every variable is optional. Unset, Nightshift runs on the embedded default: one git-ignored
state directory holding the landing zone, a DuckDB warehouse, artifacts and the MLflow
SQLite store. Set them to run the production profile (S3, Postgres, an MLflow server) with
the same code. Nothing here is read at import time: call :meth:`Settings.from_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

#: The repository root: plugins/nightshift/settings.py -> ../../
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    """Where each piece of Nightshift lives, for one profile."""

    home: Path
    landing_uri: str
    warehouse_uri: str
    artifacts_uri: str
    mlflow_uri: str
    config_dir: Path
    expectations_dir: Path
    redis_url: str = "redis://127.0.0.1:6379/0"
    dbt_manifest: Path = PROJECT_ROOT / "dbt" / "target" / "manifest.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``NIGHTSHIFT_*`` variables from ``env`` (default: the process environment).

        ================================  =============================================
        variable                          default (embedded profile)
        ================================  =============================================
        ``NIGHTSHIFT_HOME``               ``<repo>/state``
        ``NIGHTSHIFT_LANDING_URI``        ``$NIGHTSHIFT_HOME/landing`` (or ``s3://…``)
        ``NIGHTSHIFT_WAREHOUSE_URI``      ``duckdb:///$NIGHTSHIFT_HOME/warehouse/warehouse.duckdb``
                                          (or ``postgresql://…``)
        ``NIGHTSHIFT_ARTIFACTS_URI``      ``$NIGHTSHIFT_HOME/artifacts`` (or ``s3://…``)
        ``NIGHTSHIFT_MLFLOW_URI``         ``sqlite:///$NIGHTSHIFT_HOME/mlflow/mlflow.db``
        ``NIGHTSHIFT_CONFIG_DIR``         ``<repo>/config``
        ``NIGHTSHIFT_EXPECTATIONS_DIR``   ``<repo>/expectations``
        ``NIGHTSHIFT_REDIS_URL``          ``redis://127.0.0.1:6379/0`` (production online store)
        ``NIGHTSHIFT_DBT_MANIFEST``       ``<repo>/dbt/target/manifest.json`` (built by ``make``;
                                          Cosmos reads the dbt graph from it)
        ================================  =============================================
        """
        env = os.environ if env is None else env
        home = Path(env.get("NIGHTSHIFT_HOME") or PROJECT_ROOT / "state").resolve()
        return cls(
            home=home,
            landing_uri=env.get("NIGHTSHIFT_LANDING_URI") or str(home / "landing"),
            warehouse_uri=env.get("NIGHTSHIFT_WAREHOUSE_URI")
            or f"duckdb:///{home / 'warehouse' / 'warehouse.duckdb'}",
            artifacts_uri=env.get("NIGHTSHIFT_ARTIFACTS_URI") or str(home / "artifacts"),
            mlflow_uri=env.get("NIGHTSHIFT_MLFLOW_URI") or f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            config_dir=Path(env.get("NIGHTSHIFT_CONFIG_DIR") or PROJECT_ROOT / "config"),
            expectations_dir=Path(env.get("NIGHTSHIFT_EXPECTATIONS_DIR") or PROJECT_ROOT / "expectations"),
            redis_url=env.get("NIGHTSHIFT_REDIS_URL") or "redis://127.0.0.1:6379/0",
            dbt_manifest=Path(env.get("NIGHTSHIFT_DBT_MANIFEST") or PROJECT_ROOT / "dbt" / "target" / "manifest.json"),
        )

    @property
    def profile(self) -> str:
        """``embedded`` when the warehouse is a DuckDB file, ``production`` otherwise."""
        return "embedded" if self.warehouse_uri.startswith("duckdb:") else "production"

    @property
    def warehouse_dir(self) -> Path:
        """Directory of the embedded warehouse (its Parquet tables and dbt's own DuckDB file)."""
        if self.profile != "embedded":
            return self.home / "warehouse"
        return Path(urlparse(self.warehouse_uri).path).parent

    @property
    def feature_store_yaml(self) -> Path:
        """The Feast configuration of this profile."""
        name = "feature_store.yaml" if self.profile == "embedded" else "feature_store.production.yaml"
        return PROJECT_ROOT / "feature_repo" / name

    def profile_variables(self) -> dict[str, str]:
        """Variables that dbt's profiles.yml and Feast's feature_store.yaml are written against.

        In production they hold the warehouse password (``NIGHTSHIFT_PG_PASSWORD``): give them
        to a process's environment when it runs, never to anything a DAG keeps (an operator
        argument, a template field), which Airflow serializes and shows in its UI.
        """
        variables = {
            "NIGHTSHIFT_HOME": str(self.home),
            "NIGHTSHIFT_WAREHOUSE_DIR": str(self.warehouse_dir),
            "DBT_TARGET": "duckdb" if self.profile == "embedded" else "postgres",
        }
        if self.profile == "production":
            url = urlparse(self.warehouse_uri)
            redis = urlparse(self.redis_url)
            variables.update(
                NIGHTSHIFT_PG_HOST=url.hostname or "127.0.0.1",
                NIGHTSHIFT_PG_PORT=str(url.port or 5432),
                NIGHTSHIFT_PG_USER=url.username or "postgres",
                NIGHTSHIFT_PG_PASSWORD=url.password or "",
                NIGHTSHIFT_PG_DB=url.path.lstrip("/"),
                NIGHTSHIFT_PG_SSLMODE=parse_qs(url.query).get("sslmode", ["prefer"])[0],
                NIGHTSHIFT_REDIS_CONNECTION=f"{redis.hostname or '127.0.0.1'}:{redis.port or 6379}"
                + (f",db={redis.path.lstrip('/')}" if redis.path.lstrip("/") else ""),
            )
        return variables
