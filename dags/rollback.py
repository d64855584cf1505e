"""
### Rollback: move a use case's `champion` alias back, with a reason, audited

Trigger it by hand with parameters: the use case, the target (`previous`, the version that was
champion before the current one, or a version number), a reason (required; it goes into the
audit trail) and `force`. A version that failed its gate is refused unless `force` is set; the
refusal is audited too. Every move is a row in `meta.model_promotions`. The move holds the
registry lock that the retrain DAGs' register step and the `nightshift` CLI also take, so it
never races a promotion; a retry after a crash between the move and its row writes the row.

The same from a shell: `nightshift rollback --use-case <use case> --to previous --reason "..."`.
Code: `plugins/nightshift/modeling/registry.py` (`rollback`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from nightshift.airflow.alerts import dag_callbacks, task_defaults
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases

USE_CASES = sorted(load_use_cases(Settings.from_env().config_dir))

with DAG(
    dag_id="rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    **dag_callbacks(),
    default_args={"owner": "ml-platform", "retries": 1, "retry_delay": timedelta(minutes=1), **task_defaults()},
    tags=["nightshift", "registry"],
    doc_md=__doc__,
    params={
        "use_case": Param(USE_CASES[0] if USE_CASES else "", enum=USE_CASES or [""], description="the use case"),
        "to": Param("previous", type="string", description="`previous` or a version number"),
        "reason": Param("", type="string", minLength=1, description="why; recorded in meta.model_promotions"),
        "force": Param(False, type="boolean", description="allow a version that failed its gate"),
    },
):

    @task(pool="model_registry", multiple_outputs=False)
    def rollback(params: dict | None = None, dag_run=None) -> dict:  # noqa: ANN001 - Airflow's DagRun
        """Move `champion` to the requested version, or refuse (audited) and fail."""
        from nightshift.airflow.messages import fail

        from nightshift.modeling import registry
        from nightshift.usecase import use_case_of

        settings = Settings.from_env()
        try:
            return registry.rollback(
                settings, use_case_of(settings, params["use_case"]), str(params["to"]), params["reason"],
                force=bool(params["force"]), airflow_run_id=dag_run.run_id,
            )
        except registry.RollbackRefused as exc:
            raise fail(str(exc)) from exc

    rollback()
