"""`make test` on a machine without Postgres or Redis: the production tests are skipped with the
reason and the command that starts each service, never failed with a connection traceback; in CI
(``NIGHTSHIFT_REQUIRE_SERVICES=1``, set by .ci/run, which starts both) a missing service fails them.

Each case runs pytest in a child process with the services pointed at ports nothing listens on.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nightshift.settings import PROJECT_ROOT
from tests.conftest import free_port

PRODUCTION_TESTS = ["tests/production/test_postgres_warehouse.py", "tests/production/test_features_production.py"]


def run_production_tests(**extra: str) -> subprocess.CompletedProcess[str]:
    closed = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NIGHTSHIFT_REQUIRE_SERVICES"}
    env.update(NIGHTSHIFT_TEST_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{closed}/postgres",
               NIGHTSHIFT_TEST_REDIS_URL=f"redis://127.0.0.1:{closed}/0", **extra)
    return subprocess.run([sys.executable, "-m", "pytest", *PRODUCTION_TESTS, "-q", "-p", "no:cacheprovider"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def without_services() -> subprocess.CompletedProcess[str]:
    return run_production_tests()


def test_production_tests_are_skipped_when_their_services_are_down(without_services: subprocess.CompletedProcess[str]) -> None:
    out = without_services.stdout + without_services.stderr
    assert without_services.returncode == 0, out[-3000:]
    assert " skipped" in out and " failed" not in out and " error" not in out, out[-3000:]
    for symptom in ("Traceback", "psycopg2.OperationalError", "redis.exceptions.ConnectionError"):
        assert symptom not in out, f"a connection error reached the output ({symptom}):\n{out[-3000:]}"


def test_the_skip_says_why_and_how_to_start_each_service(without_services: subprocess.CompletedProcess[str]) -> None:
    out = without_services.stdout
    assert "postgres is not reachable at 127.0.0.1:" in out and "redis is not reachable at 127.0.0.1:" in out, out[-3000:]
    assert "pg_ctlcluster" in out and "redis-server --daemonize yes" in out and ".ci/run" in out, out[-3000:]


def test_ci_fails_instead_of_skipping_when_a_service_is_down() -> None:
    proc = run_production_tests(NIGHTSHIFT_REQUIRE_SERVICES="1")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert " skipped" not in out and "NIGHTSHIFT_REQUIRE_SERVICES=1" in out, out[-3000:]
    assert "Traceback" not in out, f"the failure should name the service, not dump a traceback:\n{out[-3000:]}"
