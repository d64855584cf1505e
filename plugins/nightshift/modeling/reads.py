"""Warehouse reads for modeling: a table that does not exist yet is "no data", a failed read is an error.

The warehouse raises one error type for both (``WarehouseError``), and a lost connection must
never become an empty training set or an empty audit trail: that would silently drop days from
training or lose the history a rollback and a retry rely on. So a failed read is asked one more
question, "does the table exist?", and only a "no" makes it missing. This module never turns an
error into data.
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
        WarehouseError: the table exists (or its existence cannot be checked) but the read failed;
            the message names the table and says the task should be retried, not fed "no data".
    """
    from nightshift.warehouse import WarehouseError

    try:
        return read()
    except WarehouseError as exc:
        try:
            present = table in warehouse.tables()
        except WarehouseError as listing:
            raise WarehouseError(
                f"cannot read {table} ({exc}) nor list the warehouse's tables ({listing}): a failed read is not "
                "taken as missing data. Check the warehouse connection; the task will retry"
            ) from exc
        if present:
            raise WarehouseError(
                f"{table} exists but cannot be read: {exc}. A failed read is not taken as missing data; check the "
                "warehouse connection; the task will retry"
            ) from exc
        return None
