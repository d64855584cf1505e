"""Airflow's embedded metadata DB (SQLite) made fit for a scheduler, a DAG processor, an API server
and task processes writing at once.

SQLite admits one writer. Stock, a reader blocks the writer (rollback journal) and a writer gives up
after Python's 5 s: under a busy scheduler Airflow's processes then fail with "database is locked"
(the scheduler itself crashed so in the demo's first scheduler-made history). Two settings fix that
on one machine, with no server:

* the WAL journal (:func:`use_wal`, a property of the DB file): readers never block the writer;
* a 60 s busy timeout (:data:`CONNECT_ARGS`, given to Airflow's engines by
  ``[database] sql_alchemy_connect_args``): a writer waits its turn instead of failing.

Only for SQLite: Postgres (the production profile) takes neither.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: sqlite3.connect's arguments for every Airflow engine on the embedded DB (sync and async).
CONNECT_ARGS = {"timeout": 60}
#: The import path Airflow's ``sql_alchemy_connect_args`` settings take.
CONNECT_ARGS_PATH = f"{__name__}.CONNECT_ARGS"


def use_wal(db: Path) -> str:
    """Switch ``db`` to the WAL journal (kept by the file); returns the journal mode now in force."""
    with sqlite3.connect(db, timeout=60) as con:
        return str(con.execute("pragma journal_mode=wal").fetchone()[0])
