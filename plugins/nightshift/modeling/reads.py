"""Warehouse reads for modeling: a table that does not exist yet is "no data", a failed read is an error.

A lost connection must never become an empty training set or an empty audit trail: that would
silently drop days from training or lose the history a rollback and a retry rely on. The
warehouse raises ``TableMissing`` only for a table not written yet; every other error propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from nightshift.warehouse import Warehouse


def read_if_exists(warehouse: Warehouse, table: str, read: Callable[[], pd.DataFrame]) -> pd.DataFrame | None:
    """``read()``'s rows, or None when ``table`` does not exist yet.

    Raises:
        WarehouseError: the read failed for any other reason; the message names the table and says
            the task should be retried, not fed "no data".
    """
    from nightshift.warehouse import TableMissing, WarehouseError

    try:
        return read()
    except TableMissing:
        return None
    except WarehouseError as exc:
        raise WarehouseError(
            f"cannot read {table}: {exc}. A failed read is not taken as missing data; check the warehouse "
            "connection; the task will retry"
        ) from exc
