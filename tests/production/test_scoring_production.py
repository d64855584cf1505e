"""Scoring on the production profile (Postgres warehouse, Redis online store, Postgres offline
store): every customer scored, and a warehouse that fails mid-write leaves the previous
partition intact, after which the retry succeeds."""

from __future__ import annotations

import pytest

from nightshift import scoring
from nightshift.warehouse import PostgresWarehouse, predictions_table
from tests.production.test_features_production import production_world, redis_url  # noqa: F401 - fixtures
from tests.unit.test_features import LAST, World, customers_on
from tests.unit.test_scoring import LINEAGE, register_model

pytestmark = pytest.mark.production


def test_scoring_into_postgres_survives_a_failure_mid_write(
    production_world: World, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    import psycopg2

    settings, warehouse = production_world.settings, production_world.warehouse
    register_model(settings, "champion")
    result = scoring.score_day(settings, "churn", LAST, airflow_run_id="first")
    assert result["scored"] + result["errors"] == len(customers_on(production_world, LAST))
    before = warehouse.read(predictions_table("churn"), {"scoring_date": LAST}).sort_values("customer_id", ignore_index=True)

    def connection_lost(self, cur, table, frame):  # noqa: ANN001
        if table == predictions_table("churn"):
            raise psycopg2.OperationalError("server closed the connection unexpectedly (injected)")
        return real_copy(self, cur, table, frame)

    real_copy = PostgresWarehouse._copy
    monkeypatch.setattr(PostgresWarehouse, "_copy", connection_lost)
    with pytest.raises(psycopg2.OperationalError, match="injected"):
        scoring.score_day(settings, "churn", LAST, airflow_run_id="failed")
    after = warehouse.read(predictions_table("churn"), {"scoring_date": LAST}).sort_values("customer_id", ignore_index=True)
    assert after.equals(before), "the delete of the old partition was rolled back with the failed write"

    monkeypatch.undo()
    scoring.score_day(settings, "churn", LAST, airflow_run_id="retry")
    retried = warehouse.read(predictions_table("churn"), {"scoring_date": LAST}).sort_values("customer_id", ignore_index=True)
    assert set(retried["airflow_run_id"]) == {"retry"}
    assert retried.drop(columns=LINEAGE).equals(before.drop(columns=LINEAGE))
