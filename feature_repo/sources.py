"""Where each feature table lives, per profile: the one place the definitions touch settings.

dbt builds the tables (dbt/models/features/); Feast reads them. Embedded: the folder of day
files dbt-duckdb writes (``feature_date=<day>/part.parquet``). Production: the Postgres table
dbt-postgres writes.
"""

from __future__ import annotations

from feast import FileSource
from feast.data_source import DataSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource

from nightshift.settings import Settings


def feature_table_source(table: str, description: str) -> DataSource:
    """The Feast source of dbt feature model ``table`` in the active profile."""
    settings = Settings.from_env()
    common = {
        "name": f"{table}_source",
        "timestamp_field": "feature_timestamp",
        "created_timestamp_column": "created_at",
        "description": description,
        "tags": {"dbt_model": table},
    }
    if settings.profile == "embedded":
        return FileSource(path=str(settings.warehouse_dir / "tables" / "features" / table), **common)
    return PostgreSQLSource(query=f"select * from features.{table}", **common)
