"""Ingest in bounded chunks: ``validate_files`` gives exactly the outcome and the errors of a whole batch.

Every comparison runs the same files both ways: ``validate_batch(read_batch(files))`` (the whole
batch in memory) and ``validate_files(files, chunk_rows=k)`` with chunks of a few rows, so that
duplicates, bad rows, files and the batch rules all straddle chunk boundaries.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from nightshift.demo.churn_data import BAD_INPUT_CLASSES, single_day_batch
from nightshift.ingest.validation import (
    BatchRejected,
    Suite,
    ValidationOutcome,
    read_batch,
    validate_batch,
    validate_files,
)
from tests.conftest import csv_bytes
from tests.unit.test_validation import HEADER, good_row, with_value

DAY = date(2026, 1, 3)
NOW = datetime(2026, 1, 6, 12, tzinfo=timezone.utc)
BAD_RATES = {name: 0.02 for name in BAD_INPUT_CLASSES}


@pytest.fixture(scope="module")
def suites(expectations_dir: Path) -> dict[str, Suite]:
    return {name: Suite.load(expectations_dir / f"{name}.json") for name in ("activity", "cancellations", "customers")}


def whole(suite: Suite, files: list[tuple[str, bytes]]) -> ValidationOutcome:
    return validate_batch(suite, read_batch(files, suite), DAY, NOW)


def assert_same_outcome(chunked: ValidationOutcome, expected: ValidationOutcome) -> None:
    pd.testing.assert_frame_equal(chunked.accepted, expected.accepted)
    pd.testing.assert_frame_equal(chunked.quarantined, expected.quarantined)
    assert chunked.landed_rows == expected.landed_rows
    assert chunked.reason_counts == expected.reason_counts
    assert chunked.extra_columns == expected.extra_columns


@pytest.mark.parametrize("source", ["activity", "cancellations", "customers"])
@pytest.mark.parametrize("chunk_rows", [7, 100, 10_000])
def test_every_bad_input_class_splits_as_in_a_whole_batch(
    suites: dict[str, Suite], source: str, chunk_rows: int
) -> None:
    files = [(f"{source}.csv", single_day_batch(source, 400, DAY, seed=3, bad_rates=BAD_RATES))]
    expected = whole(suites[source], files)

    chunked = validate_files(suites[source], files, DAY, NOW, chunk_rows=chunk_rows)

    assert_same_outcome(chunked, expected)
    # the data has bad rows of several kinds, duplicates among them
    assert len(expected.reason_counts) >= 3 and len(expected.quarantined) > 10


def test_a_duplicate_whose_twin_is_in_another_chunk_and_another_file_is_quarantined_with_it(suites: dict[str, Suite]) -> None:
    first = csv_bytes(HEADER, [good_row(i) for i in range(1, 20)])
    second = csv_bytes(HEADER + ["campaign"], [good_row(i) + ["x"] for i in range(20, 30)] + [good_row(2) + ["y"]])
    files = [("a.csv", first), ("b.csv", second)]

    chunked = validate_files(suites["activity"], files, DAY, NOW, chunk_rows=4)

    assert_same_outcome(chunked, whole(suites["activity"], files))
    assert chunked.reason_counts == {"expect_column_values_to_be_unique(event_id)": 2}
    assert sorted(chunked.quarantined["source_file"]) == ["a.csv", "b.csv"]
    assert chunked.extra_columns == ["campaign"]


def test_a_chunk_of_unreadable_values_is_quarantined_not_taken_for_a_shifted_column(suites: dict[str, Suite]) -> None:
    """The "no value of the column is readable" refusal is about the whole batch, not one chunk."""
    rows = [with_value(i, "sessions", "many") for i in range(1, 5)] + [good_row(i) for i in range(5, 12)]
    files = [("a.csv", csv_bytes(HEADER, rows))]

    chunked = validate_files(suites["activity"], files, DAY, NOW, chunk_rows=4)

    assert_same_outcome(chunked, whole(suites["activity"], files))
    assert chunked.reason_counts == {"expect_column_values_to_be_of_type(sessions)": 4}


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("a shifted column", [("a.csv", csv_bytes(HEADER, [with_value(i, "sessions", "x") for i in range(1, 9)]))]),
        ("too few rows", [("a.csv", b"")]),
        ("a missing column", [("a.csv", csv_bytes(["event_id", "x"], [["a", 1]] * 9))]),
    ],
)
def test_batch_level_refusals_are_the_whole_batchs(suites: dict[str, Suite], name: str, files: list) -> None:
    suite = suites["activity"]
    with pytest.raises(BatchRejected) as expected:
        whole(suite, files)

    with pytest.raises(BatchRejected) as chunked:
        validate_files(suite, files, DAY, NOW, chunk_rows=3)

    assert str(chunked.value) == str(expected.value)


def test_the_row_count_rule_counts_every_chunk(suites: dict[str, Suite], tmp_path: Path) -> None:
    """A batch over the suite's row cap is refused although each chunk is under it."""
    suite_file = tmp_path / "capped.json"
    definition = suites["activity"].definition
    capped = {**definition, "expectations": [
        {**e, "kwargs": {**e["kwargs"], "max_value": 10}} if e["type"] == "expect_table_row_count_to_be_between" else e
        for e in definition["expectations"]
    ]}
    suite_file.write_text(json.dumps(capped))
    suite = Suite.load(suite_file)
    files = [("a.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 12)]))]

    with pytest.raises(BatchRejected, match=r"expect_table_row_count_to_be_between failed: 11 rows"):
        validate_files(suite, files, DAY, NOW, chunk_rows=4)
    ten = [("a.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 11)]))]
    assert len(validate_files(suite, ten, DAY, NOW, chunk_rows=4).accepted) == 10


def test_by_default_a_small_batch_is_one_chunk_and_a_large_one_is_chunked(
    suites: dict[str, Suite], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift.ingest import validation

    files = [("a.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 40)]))]
    sizes: list[int] = []
    read = validation._file_chunks

    def spy(*args: object, **kwargs: object):  # noqa: ANN202
        for frame in read(*args, **kwargs):
            sizes.append(len(frame))
            yield frame

    monkeypatch.setattr(validation, "_file_chunks", spy)
    validate_files(suites["activity"], files, DAY, NOW)
    assert sizes == [39], "one pass over a batch under WHOLE_BATCH_BYTES"

    sizes.clear()
    monkeypatch.setattr(validation, "WHOLE_BATCH_BYTES", len(files[0][1]) - 1)
    monkeypatch.setattr(validation, "CHUNK_ROWS", 10)
    chunked = validate_files(suites["activity"], files, DAY, NOW)
    assert sizes == [10, 10, 10, 9] * 2, "two passes of CHUNK_ROWS rows"
    assert_same_outcome(chunked, whole(suites["activity"], files))
