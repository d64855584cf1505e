"""The dbt project as Airflow tasks (Cosmos), configured once for every DAG that runs dbt.

DAG files call :func:`dbt_task_group` while they are parsed: it reads the manifest `make` built
(no dbt run at parse time) and imports only Cosmos.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nightshift.features import DBT_PROJECT
from nightshift.settings import Settings


def dbt_task_group(group_id: str, settings: Settings, select: list[str] | None = None,
                   exclude: list[str] | None = None) -> Any:
    """A Cosmos ``DbtTaskGroup``: one task per model, its tests right after it, in the ``dbt`` pool.

    Args:
        select / exclude: dbt selectors (``tag:scoring``) choosing the models of this group.
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, InvocationMode, LoadMode, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import TestBehavior

    variables = settings.profile_variables()
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=settings.dbt_manifest,
            install_dbt_deps=False,
            env_vars=variables,
        ),
        profile_config=ProfileConfig(
            profile_name="nightshift",
            target_name=variables["DBT_TARGET"],
            profiles_yml_filepath=DBT_PROJECT / "profiles.yml",
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select or [],
            exclude=exclude or [],
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        # dbt-duckdb holds its file for the whole command: one dbt task at a time (pool `dbt`). One
        # quick retry covers a passing lock; a failing dbt test fails the same way again.
        operator_args={"pool": "dbt", "install_deps": False, "retries": 1, "retry_delay": timedelta(seconds=20)},
    )
