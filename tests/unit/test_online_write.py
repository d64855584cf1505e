"""The bulk online-store encoding writes the bytes and text Feast's own conversion writes, value for value.

Reference: ``feast.type_map.python_values_to_proto_values`` on the same NumPy column Feast converts
(``to_numpy(zero_copy_only=False)`` of the Arrow column), each value serialized, and its SQLite
``value_text`` from Feast's ``extract_text_and_num``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

from nightshift.features.online_write import encoded_column

RNG = np.random.default_rng(3)
SPECIAL_DOUBLES = [0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, 5e-324, 1.7976931348623157e308, 0.1, 1e-7, 123456789.125]


def feast_reference(values: np.ndarray, value_type: ValueType) -> tuple[list[bytes], list[str | None]]:
    protos = python_values_to_proto_values(values, value_type)
    return [p.SerializeToString() for p in protos], [extract_text_and_num(p, False)[0] for p in protos]


COLUMNS = {
    "doubles": (pa.array(SPECIAL_DOUBLES + list(RNG.normal(0, 1e6, 500))), ValueType.DOUBLE),
    "doubles_with_nulls": (pa.array([1.25, None, -3.0, None, np.nan, 7.5], type=pa.float64()), ValueType.DOUBLE),
    "all_null_doubles": (pa.array([None, None], type=pa.float64()), ValueType.DOUBLE),
    "floats": (pa.array(np.array([0.1, -2.5, np.nan, 3.4e38, 1e-30], dtype=np.float32)), ValueType.FLOAT),
    "float_signed_zeros": (pa.array(np.array([0.0, -0.0, 1.5, -0.0], dtype=np.float32)), ValueType.FLOAT),
    "strings": (pa.array(["free", None, "pro", "", "Zürich ✓", "free", "team"]), ValueType.STRING),
    "int64_with_nulls": (pa.array([0, None, -1, 2**62, 7, 7, None], type=pa.int64()), ValueType.INT64),
    "int64": (pa.array(RNG.integers(-(2**40), 2**40, 300)), ValueType.INT64),
    "int32": (pa.array([0, -5, 2**31 - 1, None], type=pa.int32()), ValueType.INT32),
    "bools": (pa.array([True, False, None, True]), ValueType.BOOL),
    "doubles_read_as_ints": (pa.array([1, 2, 3], type=pa.int64()), ValueType.DOUBLE),
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_value_encodes_to_feasts_bytes_and_text(name: str) -> None:
    column, value_type = COLUMNS[name]
    values = column.to_numpy(zero_copy_only=False)

    encoded, texts = encoded_column(values, value_type)

    expected_bytes, expected_texts = feast_reference(values, value_type)
    assert encoded == expected_bytes
    assert texts == expected_texts
    # the comparison is not of two lists of nulls (except where that is the point)
    assert any(encoded) == (name != "all_null_doubles")


def test_a_null_double_is_the_empty_value_and_a_zero_is_not() -> None:
    encoded, texts = encoded_column(np.array([np.nan, 0.0, -0.0]), ValueType.DOUBLE)
    assert encoded[0] == b"" and texts[0] is None
    assert encoded[1] == b"\x29" + bytes(8) and texts[1] == "0.0"
    assert encoded[2] != encoded[1] and texts[2] == "-0.0"
