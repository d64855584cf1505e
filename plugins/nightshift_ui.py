"""Registers Nightshift's views in the Airflow UI (the code is in ``nightshift.airflow.ui``)."""

from airflow.plugins_manager import AirflowPlugin

from nightshift.airflow.ui import plugin_attributes

_ATTRIBUTES = plugin_attributes()


class NightshiftPlugin(AirflowPlugin):
    """A FastAPI app at /nightshift, a navigation entry and a "Nightshift" tab on runs and task instances."""

    name = "nightshift"
    fastapi_apps = _ATTRIBUTES["fastapi_apps"]
    external_views = _ATTRIBUTES["external_views"]
