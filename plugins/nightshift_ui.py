"""Nightshift's Airflow plugin: its views in the Airflow UI (``nightshift.airflow.ui``), the listener
that writes run notes (``nightshift.airflow.notes``), the deadline reference of the nightly score
(``nightshift.airflow.deadlines``), and, in the scheduler only, the preload of the
libraries tasks use (``nightshift.airflow.preload``)."""

from airflow.plugins_manager import AirflowPlugin

from nightshift.airflow import notes
from nightshift.airflow.deadlines import NightlyRunEnd
from nightshift.airflow.preload import preload_for_scheduler
from nightshift.airflow.ui import plugin_attributes

_ATTRIBUTES = plugin_attributes()
# In the scheduler only: the libraries tasks import, loaded once before LocalExecutor forks its workers.
preload_for_scheduler()


class NightshiftPlugin(AirflowPlugin):
    """A FastAPI app at /nightshift, a navigation entry, a "Nightshift" tab on runs and task instances,
    and the listener that puts a run's skip and failure reasons on its note."""

    name = "nightshift"
    fastapi_apps = _ATTRIBUTES["fastapi_apps"]
    external_views = _ATTRIBUTES["external_views"]
    listeners = [notes]
    # the nightly score's publish deadline counts from the end of D for scheduled runs only
    deadline_references = [NightlyRunEnd]
