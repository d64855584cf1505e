"""Registers Nightshift's views in the Airflow UI (the code is in ``nightshift.airflow.ui``)."""

from airflow.plugins_manager import AirflowPlugin

from nightshift.airflow import notes
from nightshift.airflow.ui import plugin_attributes

_ATTRIBUTES = plugin_attributes()


class NightshiftPlugin(AirflowPlugin):
    """A FastAPI app at /nightshift, a navigation entry, a "Nightshift" tab on runs and task instances,
    and the listener that puts a run's skip and failure reasons on its note."""

    name = "nightshift"
    fastapi_apps = _ATTRIBUTES["fastapi_apps"]
    external_views = _ATTRIBUTES["external_views"]
    listeners = [notes]
