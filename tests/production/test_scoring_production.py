"""Scoring on the production profile (Postgres warehouse, Redis online store, Postgres offline
store): every customer scored; and Postgres restarting while the task publishes (every connection
to the warehouse database terminated by the server, mid-transaction) fails the task with a message
naming the warehouse and the partitions, leaves the previous partitions whole, and the retry
replaces them."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlparse

import pytest

from nightshift import scoring
from nightshift.airflow.runs import poll_until
from nightshift.warehouse import WarehouseError, prediction_errors_table, predictions_table
from tests.conftest import PG_ADMIN
from tests.production.test_features_production import production_world, redis_url  # noqa: F401 - fixtures
from tests.unit.test_features import LAST, World, customers_on
from tests.unit.test_scoring import LINEAGE, register_model

pytestmark = pytest.mark.production


def test_a_postgres_restart_mid_publish_fails_the_task_clearly_and_the_retry_replaces_the_partition(
    production_world: World,  # noqa: F811
) -> None:
    import psycopg2

    settings, warehouse = production_world.settings, production_world.warehouse
    register_model(settings, "champion")
    result = scoring.score_day(settings, "churn", LAST, airflow_run_id="first")
    assert result["scored"] + result["errors"] == len(customers_on(production_world, LAST))
    before = warehouse.read(predictions_table("churn"), {"scoring_date": LAST}).sort_values("customer_id", ignore_index=True)
    database = urlparse(settings.warehouse_uri).path.lstrip("/")

    # Stop the publish between its two tables: another session holds a lock on the errors table,
    # so the write has already replaced D of predictions.churn_daily inside its transaction when it waits.
    locker = psycopg2.connect(settings.warehouse_uri)
    locker.cursor().execute(f"lock table {prediction_errors_table('churn')} in access exclusive mode")
    failure: list[BaseException] = []

    def publish_again() -> None:
        try:
            scoring.score_day(settings, "churn", LAST, airflow_run_id="interrupted")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    task = threading.Thread(target=publish_again)
    task.start()
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    try:
        def waiting_writers() -> list[str]:
            with admin.cursor() as cur:
                cur.execute("select query from pg_stat_activity where datname = %s and wait_event_type = 'Lock'",
                            [database])
                return [row[0] for row in cur.fetchall()]

        poll_until("the publish to wait on the errors table, predictions written in its transaction",
                   waiting_writers, lambda queries: any(q.startswith("delete from predictions.churn_errors")
                                                        for q in queries), timeout=300, interval=0.2)
        # what a restart does to every client: the server ends each session of the database
        with admin.cursor() as cur:
            cur.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                        "where datname = %s and pid <> pg_backend_pid()", [database])
            print("sessions terminated:", cur.fetchone()[0])
        task.join(timeout=120)
        assert not task.is_alive(), "the interrupted publish did not return"
    finally:
        admin.close()
        locker.close()

    assert len(failure) == 1 and isinstance(failure[0], WarehouseError), failure
    message = str(failure[0])
    print(message)
    server = urlparse(settings.warehouse_uri)
    assert f"{server.hostname}:{server.port or 5432}/{database}" in message, "names the warehouse"
    assert f"{predictions_table('churn')} (scoring_date={LAST})" in message, "names the partition"
    assert re.search("terminating connection|server closed the connection", message), "says what happened"
    assert "retry" in message, "says what happens next"
    after = warehouse.read(predictions_table("churn"), {"scoring_date": LAST}).sort_values("customer_id", ignore_index=True)
    assert after.equals(before), "no partial partition: the rows the interrupted write had replaced are back"

    retried = scoring.score_day(settings, "churn", LAST, airflow_run_id="retry")
    assert retried["scored"] == result["scored"]
    published = warehouse.read(predictions_table("churn"), {"scoring_date": LAST}).sort_values("customer_id", ignore_index=True)
    assert set(published["airflow_run_id"]) == {"retry"}, "the retry replaced the partition whole"
    assert published.drop(columns=LINEAGE).equals(before.drop(columns=LINEAGE))
