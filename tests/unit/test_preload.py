"""The scheduler's preload: opt-in, only in the `airflow scheduler` process, and it loads what tasks import."""

from __future__ import annotations

import sys

from nightshift.airflow import preload


def test_nothing_is_preloaded_unless_asked_and_only_in_the_scheduler() -> None:
    scheduler = ["/venv/bin/airflow", "scheduler"]
    assert preload.preload_for_scheduler(scheduler, {}) == []
    assert preload.preload_for_scheduler(["/venv/bin/airflow", "api-server"], {"NIGHTSHIFT_PRELOAD": "1"}) == []
    assert preload.preload_for_scheduler(["/venv/bin/airflow", "tasks", "clear"], {"NIGHTSHIFT_PRELOAD": "1"}) == []
    assert not preload.is_scheduler(["python", "-m", "pytest"])


def test_the_scheduler_preloads_every_module_tasks_import() -> None:
    loaded = preload.preload_for_scheduler(["/venv/bin/airflow", "scheduler"], {"NIGHTSHIFT_PRELOAD": "1"})
    assert set(loaded) <= set(preload.MODULES)
    assert all(name in sys.modules for name in preload.MODULES)
    assert preload.preload_for_scheduler(["/venv/bin/airflow", "scheduler"], {"NIGHTSHIFT_PRELOAD": "1"}) == []
