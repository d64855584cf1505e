"""Data tests of the demand use case's GX suites (stores, products, sales): well-formed,
complete, and exact about which hand-written row is accepted and which is quarantined why."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import great_expectations as gx
import pytest

from nightshift.ingest.validation import (
    REASONS,
    ROW_NUMBER,
    BatchRejected,
    Suite,
    ValidationOutcome,
    read_batch,
    validate_batch,
)
from nightshift.settings import PROJECT_ROOT
from tests.conftest import csv_bytes

DAY = date(2026, 1, 5)
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
EXPECTATIONS = PROJECT_ROOT / "expectations"

# The contract, written out: column -> declared type, in file order.
COLUMNS = {
    "stores": {
        "store_id": "str",
        "region": "str",
        "store_format": "str",
        "floor_area_sqm": "float64",
        "opened_on": "date",
        "snapshot_at": "datetime64[ns]",
    },
    "products": {"product_id": "str", "category": "str", "unit_price": "float64", "snapshot_at": "datetime64[ns]"},
    "sales": {
        "sale_id": "str",
        "store_id": "str",
        "product_id": "str",
        "sold_at": "datetime64[ns]",
        "units": "int64",
        "unit_price": "float64",
        "promo": "str",
    },
}
KEYS = {"stores": "store_id", "products": "product_id", "sales": "sale_id"}


def good_row(source: str, i: int) -> list[object]:
    if source == "stores":
        return [f"S{i:03d}", "north", "standard", 1250.5, "2019-03-01", "2026-01-05T23:00:00"]
    if source == "products":
        return [f"P{i:04d}", "dairy", 2.49, "2026-01-05T23:00:00"]
    return [f"20260105-S001-P{i:04d}", "S001", f"P{i:04d}", f"2026-01-05T{7 + i % 15:02d}:30:00", 4, 2.49, "none"]


def with_value(source: str, i: int, column: str, value: object) -> list[object]:
    row = good_row(source, i)
    row[list(COLUMNS[source]).index(column)] = value
    return row


def split(source: str, rows: list[list[object]]) -> ValidationOutcome:
    suite = Suite.load(EXPECTATIONS / f"{source}.json")
    outcome = validate_batch(suite, read_batch([("b.csv", csv_bytes(list(COLUMNS[source]), rows))], suite), DAY, NOW)
    assert len(outcome.accepted) + len(outcome.quarantined) == outcome.landed_rows == len(rows)
    return outcome


def quarantined(outcome: ValidationOutcome) -> dict[int, str]:
    """Quarantined rows as {1-based row number in the file: reasons}."""
    return dict(zip(outcome.quarantined[ROW_NUMBER], outcome.quarantined[REASONS], strict=True))


@pytest.mark.parametrize("source", COLUMNS)
def test_suite_is_valid_gx_and_declares_every_column(source: str) -> None:
    path = EXPECTATIONS / f"{source}.json"
    definition = json.loads(path.read_text())
    keep = ("name", "expectations", "meta", "notes")
    gx_suite = gx.ExpectationSuite(**{k: v for k, v in definition.items() if k in keep})
    suite = Suite.load(path)
    assert suite.name == source and suite.version == ("2" if source == "stores" else "1"), "stores v2: opened_on is a date"
    assert suite.allowed_lateness.total_seconds() == 48 * 3600
    assert suite.column_types == COLUMNS[source]
    by_type: dict[str, set[str]] = {}
    for exp in gx_suite.expectations:
        by_type.setdefault(exp.expectation_type, set()).add(exp.configuration.kwargs.get("column", ""))
    column_set = next(e for e in definition["expectations"] if e["type"] == "expect_table_columns_to_match_set")
    assert column_set["kwargs"] == {"column_set": list(COLUMNS[source]), "exact_match": False}
    assert by_type["expect_column_values_to_not_be_null"] == set(COLUMNS[source]), "every field is required"
    assert by_type["expect_column_values_to_be_unique"] == {KEYS[source]}
    window = [
        e["kwargs"]
        for e in definition["expectations"]
        if e["kwargs"].get("min_value") == {"$PARAMETER": "earliest_event_time"}
    ]
    assert window == [
        {
            "column": "sold_at" if source == "sales" else "snapshot_at",
            "min_value": {"$PARAMETER": "earliest_event_time"},
            "max_value": {"$PARAMETER": "latest_event_time"},
        }
    ]


def test_stores_rows_are_split_by_rule() -> None:
    rows = [
        good_row("stores", 1),
        with_value("stores", 2, "region", "mars"),
        with_value("stores", 3, "store_format", "kiosk"),
        with_value("stores", 4, "floor_area_sqm", 79.9),
        with_value("stores", 5, "floor_area_sqm", 20000.0),  # the inclusive upper bound
        with_value("stores", 6, "opened_on", "2026-01-06"),  # opens tomorrow
        with_value("stores", 7, "opened_on", "not-a-date"),
        with_value("stores", 8, "region", None),
        with_value("stores", 9, "store_id", "X9"),
        with_value("stores", 10, "snapshot_at", "2025-12-26T23:00:00"),
        with_value("stores", 11, "store_id", "S001"),  # repeats row 1's key: both copies go
        good_row("stores", 12)[:5] + ["2026-01-03T00:00:00"],  # 48 h late: accepted
    ]
    assert quarantined(split("stores", rows)) == {
        1: "expect_column_values_to_be_unique(store_id)",
        2: "expect_column_values_to_be_in_set(region)",
        3: "expect_column_values_to_be_in_set(store_format)",
        4: "expect_column_values_to_be_between(floor_area_sqm)",
        6: "expect_column_values_to_be_between(opened_on)",
        7: "expect_column_values_to_be_of_type(opened_on)",
        8: "expect_column_values_to_not_be_null(region)",
        9: "expect_column_values_to_match_regex(store_id)",
        10: "expect_column_values_to_be_between(snapshot_at)",
        11: "expect_column_values_to_be_unique(store_id)",
    }


def test_products_rows_are_split_by_rule() -> None:
    rows = [
        good_row("products", 1),
        with_value("products", 2, "category", "toys"),
        with_value("products", 3, "unit_price", 0),
        with_value("products", 4, "unit_price", 500.01),
        with_value("products", 5, "unit_price", "abc"),
        with_value("products", 6, "product_id", None),
        with_value("products", 7, "snapshot_at", "2027-02-09T23:00:00"),
        with_value("products", 8, "product_id", "P0001"),  # repeats row 1's key
        with_value("products", 9, "unit_price", 500),
    ]
    assert quarantined(split("products", rows)) == {
        1: "expect_column_values_to_be_unique(product_id)",
        2: "expect_column_values_to_be_in_set(category)",
        3: "expect_column_values_to_be_between(unit_price)",
        4: "expect_column_values_to_be_between(unit_price)",
        5: "expect_column_values_to_be_of_type(unit_price)",
        6: "expect_column_values_to_not_be_null(product_id)",
        7: "expect_column_values_to_be_between(snapshot_at)",
        8: "expect_column_values_to_be_unique(product_id)",
    }


def test_sales_rows_are_split_by_rule() -> None:
    rows = [
        good_row("sales", 1),
        with_value("sales", 2, "units", 0),
        with_value("sales", 3, "units", 10001),
        with_value("sales", 4, "units", "2.5"),
        with_value("sales", 5, "promo", "bogof"),
        with_value("sales", 6, "unit_price", 0),
        with_value("sales", 7, "sold_at", "2025-12-26T10:00:00"),
        with_value("sales", 8, "sold_at", None),
        with_value("sales", 9, "sale_id", "20260105-S001-P0001"),  # repeats row 1's key
        with_value("sales", 10, "units", 10000),  # the inclusive upper bound
        with_value("sales", 11, "promo", "display"),
        with_value("sales", 12, "store_id", "store-1"),
    ]
    assert quarantined(split("sales", rows)) == {
        1: "expect_column_values_to_be_unique(sale_id)",
        2: "expect_column_values_to_be_between(units)",
        3: "expect_column_values_to_be_between(units)",
        4: "expect_column_values_to_be_of_type(units)",
        5: "expect_column_values_to_be_in_set(promo)",
        6: "expect_column_values_to_be_between(unit_price)",
        7: "expect_column_values_to_be_between(sold_at)",
        8: "expect_column_values_to_not_be_null(sold_at)",
        9: "expect_column_values_to_be_unique(sale_id)",
        12: "expect_column_values_to_match_regex(store_id)",
    }


@pytest.mark.parametrize("source", COLUMNS)
def test_empty_or_incomplete_batch_is_rejected(source: str) -> None:
    suite = Suite.load(EXPECTATIONS / f"{source}.json")
    header_only = (",".join(COLUMNS[source]) + "\n").encode()
    with pytest.raises(BatchRejected, match="0 rows, expected between 1 and"):
        validate_batch(suite, read_batch([("empty.csv", header_only)], suite), DAY, NOW)
    missing = list(COLUMNS[source])[-1]
    header = [c for c in COLUMNS[source] if c != missing]
    data = csv_bytes(header, [good_row(source, 1)[:-1]])
    with pytest.raises(BatchRejected, match=rf"missing required column\(s\) \['{missing}'\]"):
        validate_batch(suite, read_batch([("b.csv", data)], suite), DAY, NOW)


def test_good_rows_are_accepted_with_declared_types() -> None:
    for source in COLUMNS:
        outcome = split(source, [good_row(source, i) for i in range(1, 4)])
        assert outcome.quarantined.empty and list(outcome.accepted.columns) == list(COLUMNS[source])
    accepted = split("sales", [good_row("sales", 1)]).accepted
    assert str(accepted["units"].dtype) == "Int64" and str(accepted["sold_at"].dtype) == "datetime64[ns]"

