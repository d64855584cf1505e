"""Nightshift inside the Airflow UI: a FastAPI app served by Airflow's API server, and its tabs.

``plugins/nightshift_ui.py`` registers :class:`NightshiftPlugin`. Its app, mounted at
``/nightshift``, serves read-only pages:

- ``/runs/{dag_id}/{run_id}``: what the run wrote, by DAG family (ingest, retrain, monitor, score),
  shown as the "Nightshift" tab of every Dag run and task instance;
- ``/reports/monitor/{use_case}/{day}``: a night's Evidently HTML report;
- ``/predictions/{use_case}``: the latest night's scores; ``/``: links to MLflow, dbt docs and the
  prediction tables (the "Nightshift" entry of the navigation bar).

Every route requires the API server's login (the UI's JWT cookie or a bearer token) and, for a
run, read access to its DAG. The pages read through :mod:`nightshift.airflow.run_facts`; the only
thing read from Airflow is which day(s) a run was for.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

#: Where the app is mounted in the API server.
URL_PREFIX = "/nightshift"
#: Keys of asset-event extras that name the day(s) a triggered run is for.
_EVENT_DAY_KEYS = ("batch_date", "feature_dates", "scoring_date", "monitor_date")


def dag_family(dag_id: str) -> tuple[str, str]:
    """``ingest_activity`` -> (``ingest``, ``activity``); unknown families -> (``other``, dag_id)."""
    family, _, subject = dag_id.partition("_")
    return (family, subject) if family in ("ingest", "retrain", "monitor", "score", "features") and subject else ("other", dag_id)


def days_of(logical_date: Any, event_extras: list[dict[str, Any]]) -> list[date]:
    """The day(s) a run is for: its logical date, else the days its triggering asset events name."""
    if logical_date is not None:
        return [logical_date.date()]
    days: set[date] = set()
    for extra in event_extras:
        for key in _EVENT_DAY_KEYS:
            value = (extra or {}).get(key)
            for item in value if isinstance(value, list) else [value]:
                if item:
                    days.add(date.fromisoformat(str(item)[:10]))
    return sorted(days)


def _run_days(dag_id: str, run_id: str) -> list[date]:
    """The day(s) of Airflow run ``dag_id``/``run_id`` (404 when there is no such run)."""
    from sqlalchemy import select

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise HTTPException(status_code=404, detail=f"no run {run_id!r} of DAG {dag_id!r}")
        return days_of(run.logical_date, [event.extra for event in run.consumed_asset_events])


def _settings() -> Any:
    from nightshift.settings import Settings

    return Settings.from_env()


async def _login(request: Request) -> Any:
    """The API server's own login check (the UI's cookie or a bearer token); 401 without one.

    Airflow's security module is imported here, at request time: this module is imported by every
    process that loads plugins (each task does), and only the API server serves requests.
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


def _dag_read(request: Request, user: Any = Depends(_login)) -> None:
    """Read access to the runs of the DAG whose data is shown (403 otherwise): the ``dag_id`` in the
    path, or for a use case's scores and reports its ``score_<use case>`` / ``monitor_<use case>``."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    params = request.path_params
    dag_id = params.get("dag_id")
    if dag_id is None and "use_case" in params:
        dag_id = f"{'monitor' if '/reports/monitor/' in request.url.path else 'score'}_{params['use_case']}"
    requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=dag_id)(request, user)


def _not_found(exc: Exception) -> HTTPException:
    """A name that is no use case or source of this deployment: 404 with what was asked."""
    return HTTPException(status_code=404, detail=f"nothing to show: {exc}")


def create_app(settings_factory: Any = _settings, run_days: Any = _run_days) -> FastAPI:
    """The Nightshift app; ``settings_factory`` and ``run_days`` are replaceable for tests."""
    from nightshift.airflow import pages, run_facts

    app = FastAPI(title="Nightshift", dependencies=[Depends(_login)], docs_url=None, redoc_url=None, openapi_url=None)

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> str:
        from nightshift.usecase import load_use_cases
        from nightshift.warehouse import predictions_table

        settings = settings_factory()
        use_cases = [{"name": name, "predictions": predictions_table(name),
                      "latest": run_facts.latest_scored_day(settings, name)}
                     for name in sorted(load_use_cases(settings.config_dir))]
        return pages.render("home", "Nightshift", "Batch scoring and retraining: where each use case's data is",
                            use_cases=use_cases, mlflow=run_facts.mlflow_ui_url(), dbt_docs=run_facts.dbt_docs_url(),
                            base=base(request))

    @app.get("/runs/{dag_id}/{run_id:path}", response_class=HTMLResponse, dependencies=[Depends(_dag_read)])
    def run_page(dag_id: str, run_id: str, request: Request) -> str:
        family, subject = dag_family(dag_id)
        settings = settings_factory()
        days = run_days(dag_id, run_id)
        title = f"{dag_id}: {run_id}"
        subtitle = f"day(s): {', '.join(d.isoformat() for d in days) or 'none named by this run'}"
        try:
            if family == "ingest":
                return pages.render("ingest", title, subtitle,
                                    sources=[run_facts.ingest_facts(settings, subject, d) for d in days])
            if family == "retrain":
                return pages.render("retrain", title, subtitle, f=run_facts.retrain_facts(settings, subject, run_id))
            if family == "monitor":
                return pages.render("monitor", title, subtitle, base=base(request),
                                    nights=[run_facts.monitor_facts(settings, subject, d) for d in days])
            if family == "score":
                return pages.render("score", title, subtitle,
                                    nights=[run_facts.score_facts(settings, subject, d) for d in days])
        except (KeyError, ValueError) as exc:  # a use case or source no longer configured, a bad name
            raise _not_found(exc) from exc
        except run_facts.WarehouseBusy as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        return pages.render("other", title, subtitle, message="Nightshift shows data for ingest, retrain, monitor and "
                            "score runs; this run's own output is in its task logs.")

    @app.get("/predictions/{use_case}", response_class=HTMLResponse, dependencies=[Depends(_dag_read)])
    def predictions(use_case: str) -> str:
        from nightshift.usecase import use_case_of

        settings = settings_factory()
        try:
            use_case_of(settings, use_case)
            day = run_facts.latest_scored_day(settings, use_case)
            nights = [] if day is None else [run_facts.score_facts(settings, use_case, day)]
        except (KeyError, ValueError) as exc:
            raise _not_found(exc) from exc
        return pages.render("score", f"Latest scores of {use_case}", "the newest published night", nights=nights)

    @app.get("/reports/monitor/{use_case}/{day}", dependencies=[Depends(_dag_read)])
    def monitor_report(use_case: str, day: date) -> Response:
        try:
            html = run_facts.monitor_report(settings_factory(), use_case, day)
        except ValueError as exc:
            raise _not_found(exc) from exc
        if html is None:
            raise HTTPException(status_code=404, detail=f"no drift report for {use_case} on {day}: was the night monitored?")
        # Evidently's report runs its own scripts: sandboxed, they get an opaque origin, never the UI's session.
        return Response(content=html, media_type="text/html",
                        headers={"Content-Security-Policy": "sandbox allow-scripts allow-popups"})

    return app


def plugin_attributes() -> dict[str, Any]:
    """What :class:`NightshiftPlugin` declares: the app, a nav entry and the run/task-instance tabs."""
    prefix = URL_PREFIX.lstrip("/")
    run_tab = {"name": "Nightshift", "href": f"{prefix}/runs/{{DAG_ID}}/{{RUN_ID}}"}
    return {
        "fastapi_apps": [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Nightshift"}],
        "external_views": [
            {"name": "Nightshift", "href": f"{prefix}/", "destination": "nav", "url_route": "nightshift"},
            {**run_tab, "destination": "dag_run", "url_route": "nightshift-run"},
            {**run_tab, "destination": "task_instance", "url_route": "nightshift-task-instance"},
        ],
    }
