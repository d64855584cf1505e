"""The dbt project as Airflow tasks (Cosmos), configured once for every DAG that runs dbt.

DAG files call :func:`dbt_task_group` while they are parsed: it reads the manifest `make` built
(no dbt run at parse time) and imports only Cosmos.

Credentials never enter a DAG: what Cosmos is given at parse time (and Airflow serializes and
shows as rendered fields) is the dbt profile with its ``env_var()`` references and the switches
that turn dbt's telemetry off. The values behind the references, the warehouse password among
them, are read from the worker's ``NIGHTSHIFT_*`` environment when a task runs and handed to the
dbt process only.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from cosmos.profiles.base import BaseProfileMapping

from nightshift.features import DBT_PROJECT
from nightshift.settings import Settings

#: Set for every dbt command Cosmos runs: no usage stats sent, no ``.user.yml`` cookie written.
DBT_TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
PROFILE_NAME = "nightshift"


class RuntimeProfileMapping(BaseProfileMapping):
    """One output of ``dbt/profiles.yml``, its ``env_var()`` values supplied when the task runs.

    Cosmos writes :attr:`profile` (references only, never a value) to a profiles.yml of its own
    and passes :attr:`env_vars` to the dbt process it starts; neither is a template field, so
    neither reaches the serialized DAG. The values come from :meth:`Settings.profile_variables`
    of the worker's environment, the same ones dbt outside Airflow and Feast use.
    """

    def __init__(self, target: str, profiles_yml: Path = DBT_PROJECT / "profiles.yml") -> None:
        # Cosmos's mappings look an Airflow Connection up by id; this one never does (no `conn`).
        super().__init__(conn_id=f"{PROFILE_NAME}_{target}")
        self.target = target
        self.profiles_yml = profiles_yml

    @property
    def profile(self) -> dict[str, Any]:
        """The target's output as written in profiles.yml, ``{{ env_var(...) }}`` left unrendered."""
        import yaml

        outputs = yaml.safe_load(self.profiles_yml.read_text())[PROFILE_NAME]["outputs"]
        if self.target not in outputs:
            raise KeyError(f"dbt target {self.target!r} is not an output of {self.profiles_yml}; "
                           f"it has {sorted(outputs)}: fix DBT_TARGET or the file")
        return dict(outputs[self.target])

    @property
    def dbt_profile_type(self) -> str:  # type: ignore[override]
        """The adapter of the target (``duckdb``, ``postgres``)."""
        return str(self.profile["type"])

    @property
    def mock_profile(self) -> dict[str, Any]:
        return self.profile

    @property
    def env_vars(self) -> dict[str, str]:
        """What profiles.yml's ``env_var()`` calls read, from the environment of the running task."""
        return {**Settings.from_env().profile_variables(), **DBT_TELEMETRY_OFF}


def dbt_task_group(group_id: str, settings: Settings, select: list[str] | None = None,
                   exclude: list[str] | None = None, source_tests: bool = False,
                   env: dict[str, str] | None = None) -> Any:
    """A Cosmos ``DbtTaskGroup``: one ``dbt build`` task per model (it, then its tests), in the ``dbt`` pool.

    Args:
        settings: the parse-time settings; only the profile (DuckDB or Postgres target) and the
            manifest path are taken from them, never a credential.
        select / exclude: dbt selectors (``tag:scoring``) choosing the models of this group.
        source_tests: also render the selected sources that have tests (``source:monitoring``),
            each as a task running its tests.
        env: more environment variables for every dbt process, rendered by Airflow when the task
            runs (a value may pull an XCom: the features DAG passes the days it builds). Not
            ``--vars``: a changed var makes dbt parse the whole project again in every task.
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, InvocationMode, LoadMode, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import SourceRenderingBehavior, TestBehavior

    target = "duckdb" if settings.profile == "embedded" else "postgres"
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=settings.dbt_manifest,
            install_dbt_deps=False,
            env_vars={**DBT_TELEMETRY_OFF, **(env or {})},
        ),
        profile_config=ProfileConfig(profile_name=PROFILE_NAME, target_name=target, profile_mapping=RuntimeProfileMapping(target)),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select or [],
            exclude=exclude or [],
            # `dbt build` per model (the model, then its tests, in one task): half the task starts of a
            # run-then-test pair; a failing test still stops the models downstream. Source tests have
            # no model to build with: they keep a task of their own after the source.
            test_behavior=TestBehavior.AFTER_EACH if source_tests else TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
            source_rendering_behavior=(SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS if source_tests
                                       else SourceRenderingBehavior.NONE),
        ),
        # dbt-duckdb holds its file for the whole command: one dbt task at a time (pool `dbt`). One
        # quick retry covers a passing lock; a failing dbt test fails the same way again.
        operator_args={"pool": "dbt", "install_deps": False, "retries": 1, "retry_delay": timedelta(seconds=20)},
    )
