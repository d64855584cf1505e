"""The host name a task instance records, told apart per worker when several run on one machine.

Airflow records ``socket.getfqdn()`` as a task instance's ``hostname``: two Celery workers on one
machine (or one VM) record the same name, so the UI and the API cannot say which ran a task. Point
``[core] hostname_callable`` at :func:`worker_hostname` and give each worker ``NIGHTSHIFT_WORKER_NAME``:
its tasks then record ``<worker name>@<host>``, as Celery names the worker itself. Containers
(docker-compose.yml) have a host name each and need neither.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``<NIGHTSHIFT_WORKER_NAME>@<fqdn>`` when the variable is set, else the fully qualified host name."""
    name = os.environ.get("NIGHTSHIFT_WORKER_NAME")
    return f"{name}@{socket.getfqdn()}" if name else socket.getfqdn()
