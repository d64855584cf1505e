"""Data tests of the GX suites themselves: well-formed, complete, and neither too strict
(clean data passes whole) nor too lax (each source's bad rows are caught)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import great_expectations as gx
import pytest

from nightshift.demo import demand_data
from nightshift.demo.churn_data import BAD_INPUT_CLASSES, SOURCES, DatagenSpec, generate
from nightshift.settings import PROJECT_ROOT
from nightshift.usecase import all_sources, load_use_cases
from nightshift.ingest.validation import Suite, read_batch, validate_batch

SUITES = sorted((PROJECT_ROOT / "expectations").glob("*.json"))
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)


def test_every_configured_source_has_a_suite_and_every_suite_a_source() -> None:
    configured = {s.suite for s in all_sources(load_use_cases(PROJECT_ROOT / "config")).values()}
    # The demo generators land every source a use case reads: churn's and demand's.
    assert configured == {p.stem for p in SUITES} == set(SOURCES) | set(demand_data.SOURCES)


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_suite_is_valid_gx_and_complete(path: Path) -> None:
    definition = json.loads(path.read_text())
    gx_suite = gx.ExpectationSuite(**{k: v for k, v in definition.items() if k in ("name", "expectations", "meta", "notes")})
    types = {e.expectation_type for e in gx_suite.expectations}
    assert {"expect_table_columns_to_match_set", "expect_table_row_count_to_be_between"} <= types
    suite = Suite.load(path)
    assert suite.name == path.stem and suite.version
    column_set = next(e for e in definition["expectations"] if e["type"] == "expect_table_columns_to_match_set")
    assert set(column_set["kwargs"]["column_set"]) == set(suite.column_types), "required columns == typed columns"
    assert suite.allowed_lateness.total_seconds() > 0, "meta.allowed_lateness_hours is set"


@pytest.fixture(scope="module")
def clean_days() -> list[tuple[date, str, bytes]]:
    return list(generate(DatagenSpec(customers=400, start=date(2026, 1, 1), days=3, seed=21)))


@pytest.mark.parametrize("source", SOURCES)
def test_clean_data_passes_whole(source: str, clean_days) -> None:  # noqa: ANN001
    suite = Suite.load(PROJECT_ROOT / "expectations" / f"{source}.json")
    for day, name, data in clean_days:
        if name == source:
            outcome = validate_batch(suite, read_batch([("f.csv", data)], suite), day, NOW)
            assert outcome.quarantined.empty, f"{source} {day}: clean rows quarantined: {outcome.reason_counts}"


@pytest.mark.parametrize("bad_class", BAD_INPUT_CLASSES)
def test_each_bad_input_class_is_caught(bad_class: str) -> None:
    spec = DatagenSpec(customers=400, start=date(2026, 1, 1), days=2, seed=21, bad_rates={bad_class: 0.03})
    caught = 0
    for day, source, data in generate(spec):
        suite = Suite.load(PROJECT_ROOT / "expectations" / f"{source}.json")
        caught += len(validate_batch(suite, read_batch([("f.csv", data)], suite), day, NOW).quarantined)
    assert caught > 0, f"no row of class {bad_class!r} was quarantined"
