"""Online-store rows in bulk: Feast's values, encoded per column instead of per value.

Feast converts a table to the online store one value at a time (``_convert_arrow_to_proto``: a
``ValueProto`` per value, then ``online_write_batch``; the SQLite store then runs one
``INSERT`` per entity and feature). At 11,111 entities x 20 features that is most of a
materialization's time. Here:

* **values** are encoded per column. A Float64 column is packed with NumPy into the bytes of
  ``ValueProto(double_val=v)`` (tag ``0x29`` and eight little-endian bytes; a null or NaN is the
  empty ``ValueProto``, as Feast writes it). Any other scalar column goes through Feast's own
  ``python_values_to_proto_values``, once per distinct value. Tests check the bytes against
  Feast's conversion, value for value;
* **SQLite** gets the rows of a key partition with one ``executemany`` in one transaction, in
  primary-key order, with the columns and conflict clause of ``SqliteOnlineStore.online_write_batch``:
  one statement per entity, its key and timestamps bound once (half the parameters of a row each);
* **any other store** (Redis: Feast's writer already pipelines) gets Feast's own protos through
  its own ``online_write_batch``.

A Feast plugin module: imports Feast at module level; only the batch engine imports it.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow as pa

from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.infra.online_stores.online_store import OnlineStore
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.repo_config import RepoConfig
from feast.type_map import python_values_to_proto_values
from feast.utils import _build_entity_keys, _coerce_datetime, _convert_arrow_to_proto, to_naive_utc
from feast.value_type import ValueType

# ValueProto: field 5 (double_val), wire type 1 (64-bit).
_DOUBLE_TAG = 0x29
_SCALARS = {
    ValueType.INT32, ValueType.INT64, ValueType.FLOAT, ValueType.DOUBLE, ValueType.STRING, ValueType.BYTES,
    ValueType.BOOL,
}


def encoded_column(values: np.ndarray, value_type: ValueType) -> tuple[list[bytes], list[Optional[str]]]:
    """The serialized ``ValueProto`` and the SQLite ``value_text`` of each of ``values``.

    ``values`` is what Feast converts: the Arrow column's ``to_numpy(zero_copy_only=False)``.
    """
    if value_type == ValueType.DOUBLE and values.dtype == np.float64:
        return _encoded_doubles(values)
    return _encoded_by_distinct_value(values, value_type)


def _encoded_doubles(values: np.ndarray) -> tuple[list[bytes], list[Optional[str]]]:
    n = len(values)
    packed = np.empty((n, 9), dtype=np.uint8)
    packed[:, 0] = _DOUBLE_TAG
    packed[:, 1:] = values.astype("<f8", copy=False).view(np.uint8).reshape(n, 8)
    flat = packed.tobytes()
    encoded = [flat[i : i + 9] for i in range(0, 9 * n, 9)]
    texts: list[Optional[str]] = list(map(str, values.tolist()))
    for i in np.flatnonzero(np.isnan(values)).tolist():
        encoded[i], texts[i] = b"", None
    return encoded, texts


def _encoded_by_distinct_value(values: np.ndarray, value_type: ValueType) -> tuple[list[bytes], list[Optional[str]]]:
    if values.dtype.kind == "f":
        # By bit pattern: factorize takes -0.0 for 0.0, and Feast writes them differently.
        codes, bits = pd.factorize(values.view(f"u{values.dtype.itemsize}"), use_na_sentinel=True)
        uniques = bits.view(values.dtype)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = list(uniques) + [None]  # code -1 (a null) -> the last entry
    protos = python_values_to_proto_values(distinct, value_type)
    encoded_distinct = [p.SerializeToString() for p in protos]
    text_distinct = [extract_text_and_num(p, False)[0] for p in protos]
    return [encoded_distinct[c] for c in codes.tolist()], [text_distinct[c] for c in codes.tolist()]


def _timestamps(column: pa.ChunkedArray | pa.Array) -> list[Optional[datetime]]:
    """A timestamp column as Feast hands it to an online store (``_convert_arrow_fv_to_proto``)."""
    return [_coerce_datetime(v) for v in pd.to_datetime(column.to_numpy(zero_copy_only=False))]


def entity_key_bytes(table: pa.Table, feature_view: FeatureView, config: RepoConfig) -> list[bytes]:
    """The serialized entity key of each row, as the online stores key them."""
    join_keys = {entity.name: entity.dtype.to_value_type() for entity in feature_view.entity_columns}
    key_values = {
        name: python_values_to_proto_values(table.column(name).to_numpy(zero_copy_only=False), value_type)
        for name, value_type in join_keys.items()
    }
    keys: list[EntityKeyProto] = _build_entity_keys(table.num_rows, join_keys, key_values)
    version = config.entity_key_serialization_version
    return [serialize_entity_key(key, entity_key_serialization_version=version) for key in keys]


def takes_bulk_sqlite_path(online_store: OnlineStore, config: RepoConfig, feature_view: FeatureView) -> bool:
    """Whether :func:`write_sqlite` writes exactly what Feast's SQLite writer would.

    Scalar features only, and none of the store's optional columns (vectors, ``value_num``).
    """
    return (
        isinstance(online_store, SqliteOnlineStore)
        and sys.byteorder == "little"
        and not getattr(config.online_store, "vector_enabled", False)
        and not getattr(config.online_store, "enable_openai_compatible_store", False)
        and all(field.dtype.to_value_type() in _SCALARS for field in feature_view.features)
    )


def write_sqlite(
    online_store: SqliteOnlineStore, config: RepoConfig, feature_view: FeatureView, table: pa.Table,
    entity_keys: list[bytes],
) -> int:
    """Upsert ``table`` (latest row per entity, in ``entity_keys`` order) in one transaction; rows written."""
    if table.num_rows == 0:
        return 0
    adapt = sqlite3.adapters[(datetime, sqlite3.PrepareProtocol)]
    source = feature_view.batch_source
    event = [adapt(to_naive_utc(ts)) for ts in _timestamps(table.column(source.timestamp_field))]
    if source.created_timestamp_column:
        created = [adapt(to_naive_utc(ts)) for ts in _timestamps(table.column(source.created_timestamp_column))]
    else:
        created = [None] * table.num_rows
    features = sorted(feature_view.features, key=lambda field: field.name)
    names = [field.name for field in features]
    if not names:
        return 0
    encoded = [
        encoded_column(table.column(field.name).to_numpy(zero_copy_only=False), field.dtype.to_value_type())
        for field in features
    ]
    # One statement per entity: its key and timestamps bound once, then (value, value_text) per feature.
    per_feature = [column for pair in encoded for column in pair]
    params = (
        (key, event[i], created[i], *[column[i] for column in per_feature]) for i, key in enumerate(entity_keys)
    )
    table_name = _table_id(config.project, feature_view, config.registry.enable_online_feature_view_versioning)
    conn = online_store._get_conn(config)
    with conn:
        conn.executemany(_entity_upsert(table_name, names), params)
    return table.num_rows * len(names)


def _entity_upsert(table_name: str, feature_names: list[str]) -> str:
    """The upsert of one entity's rows: Feast's columns and conflict clause, one row per feature.

    Parameters: ``?1`` entity key, ``?2`` event time, ``?3`` created time, then value and
    value_text of each feature in ``feature_names`` order.
    """
    rows = ", ".join(
        f"({_sql_text(name)}, ?{4 + 2 * i}, ?{5 + 2 * i})" for i, name in enumerate(feature_names)
    )
    return (
        f"INSERT INTO {_quote_id(table_name)} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
        f"SELECT ?1, column1, column2, column3, ?2, ?3 FROM (VALUES {rows}) WHERE true "
        "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
        "value_text = excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts;"
    )


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_with_feast(online_store: OnlineStore, config: RepoConfig, feature_view: FeatureView, table: pa.Table) -> int:
    """Feast's own conversion and ``online_write_batch``, for the stores without a bulk path here."""
    if table.num_rows == 0:
        return 0
    join_keys = {entity.name: entity.dtype.to_value_type() for entity in feature_view.entity_columns}
    rows = _convert_arrow_to_proto(table.combine_chunks().to_batches()[0], feature_view, join_keys)
    online_store.online_write_batch(config=config, table=feature_view, data=rows, progress=None)
    return table.num_rows * len(feature_view.features)
