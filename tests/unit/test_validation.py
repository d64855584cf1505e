"""The validation split, one test per bad-input class: where every row went, and why.

Each test lands a small activity batch with known good and bad rows and asserts the exact
rows accepted, the exact rows quarantined with their reasons, or the batch-level refusal.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from nightshift.ingest.validation import REASONS, ROW_NUMBER, BatchRejected, Suite, ValidationOutcome, read_batch, validate_batch
from tests.conftest import csv_bytes

DAY = date(2026, 1, 3)
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
HEADER = ["event_id", "customer_id", "event_time", "sessions", "minutes", "spend", "support_tickets", "plan_change"]


def good_row(i: int) -> list[object]:
    return [f"a-{i}", i, f"2026-01-03T{i % 24:02d}:15:00", 3, 12.5, 9.99, 0, "none"]


def with_value(i: int, column: str, value: object) -> list[object]:
    row = good_row(i)
    row[HEADER.index(column)] = value
    return row


@pytest.fixture(scope="module")
def activity(expectations_dir: Path) -> Suite:
    return Suite.load(expectations_dir / "activity.json")


@pytest.fixture(scope="module")
def cancellations(expectations_dir: Path) -> Suite:
    return Suite.load(expectations_dir / "cancellations.json")


def split(suite: Suite, rows: list[list[object]], header: list[str] = HEADER) -> ValidationOutcome:
    outcome = validate_batch(suite, read_batch([("batch.csv", csv_bytes(header, rows))], suite), DAY, NOW)
    assert len(outcome.accepted) + len(outcome.quarantined) == outcome.landed_rows == len(rows)
    return outcome


def quarantined(outcome: ValidationOutcome) -> dict[int, str]:
    """Quarantined rows as {1-based row number in the file: reasons}."""
    return dict(zip(outcome.quarantined[ROW_NUMBER], outcome.quarantined[REASONS], strict=True))


def test_clean_batch_is_accepted_whole_with_declared_types(activity: Suite) -> None:
    outcome = split(activity, [good_row(i) for i in range(1, 6)])
    assert outcome.quarantined.empty and len(outcome.accepted) == 5
    assert list(outcome.accepted.columns) == HEADER
    assert str(outcome.accepted["sessions"].dtype) == "Int64"
    assert str(outcome.accepted["event_time"].dtype) == "datetime64[ns]"


def test_missing_required_column_fails_the_batch(activity: Suite) -> None:
    header = [c for c in HEADER if c != "sessions"]
    rows = [[v for c, v in zip(HEADER, good_row(1), strict=True) if c != "sessions"]]
    with pytest.raises(BatchRejected, match=r"expect_table_columns_to_match_set.*missing required column\(s\) \['sessions'\]"):
        split(activity, rows, header)


def test_extra_column_is_accepted_and_logged(activity: Suite, caplog: pytest.LogCaptureFixture) -> None:
    rows = [good_row(i) + ["surprise"] for i in range(1, 4)]
    with caplog.at_level(logging.WARNING):
        outcome = split(activity, rows, HEADER + ["campaign"])
    assert len(outcome.accepted) == 3 and outcome.quarantined.empty
    assert outcome.extra_columns == ["campaign"]
    assert "campaign" not in outcome.accepted.columns
    assert "extra column(s) ['campaign']" in caplog.text


def test_uncoercible_value_is_quarantined_under_its_type_rule(activity: Suite) -> None:
    rows = [good_row(1), with_value(2, "sessions", "abc"), with_value(3, "sessions", "2.5"), with_value(4, "event_time", "not-a-date")]
    outcome = split(activity, rows)
    assert quarantined(outcome) == {
        2: "expect_column_values_to_be_of_type(sessions)",
        3: "expect_column_values_to_be_of_type(sessions)",
        4: "expect_column_values_to_be_of_type(event_time)",
    }
    assert outcome.quarantined.set_index(ROW_NUMBER).loc[2, "sessions"] == "abc", "quarantine keeps the landed text"
    assert outcome.accepted["event_id"].tolist() == ["a-1"]


def test_column_with_no_readable_value_fails_the_batch(activity: Suite) -> None:
    rows = [with_value(i, "spend", "n/a") for i in range(1, 4)]
    with pytest.raises(BatchRejected, match=r"none of the 3 values of column 'spend' is readable as float64"):
        split(activity, rows)


def test_null_in_required_field_is_quarantined(activity: Suite) -> None:
    outcome = split(activity, [good_row(1), with_value(2, "customer_id", None), with_value(3, "plan_change", None)])
    assert quarantined(outcome) == {
        2: "expect_column_values_to_not_be_null(customer_id)",
        3: "expect_column_values_to_not_be_null(plan_change)",
    }


def test_out_of_range_number_is_quarantined(activity: Suite) -> None:
    outcome = split(activity, [good_row(1), with_value(2, "sessions", -3), with_value(3, "minutes", 5000), with_value(4, "sessions", 200)])
    assert quarantined(outcome) == {
        2: "expect_column_values_to_be_between(sessions)",
        3: "expect_column_values_to_be_between(minutes)",
    }, "200 is the inclusive upper bound and stays accepted"


def test_unknown_category_is_quarantined(activity: Suite) -> None:
    outcome = split(activity, [good_row(1), with_value(2, "plan_change", "sideways")])
    assert quarantined(outcome) == {2: "expect_column_values_to_be_in_set(plan_change)"}


def test_duplicate_key_quarantines_every_copy(activity: Suite) -> None:
    outcome = split(activity, [good_row(1), good_row(2), with_value(3, "event_id", "a-2")])
    assert quarantined(outcome) == {
        2: "expect_column_values_to_be_unique(event_id)",
        3: "expect_column_values_to_be_unique(event_id)",
    }


def test_event_time_too_late_or_in_the_future_is_quarantined(activity: Suite) -> None:
    rows = [
        good_row(1),
        with_value(2, "event_time", "2026-01-01T00:00:00"),  # 48 h before D: the lateness limit, accepted
        with_value(3, "event_time", "2025-12-24T10:00:00"),  # ten days late
        with_value(4, "event_time", "2027-02-07T10:00:00"),  # in the future
        with_value(5, "event_time", "2026-01-05T00:00:00"),  # 48 h after D ended: accepted
    ]
    outcome = split(activity, rows)
    assert quarantined(outcome) == {
        3: "expect_column_values_to_be_between(event_time)",
        4: "expect_column_values_to_be_between(event_time)",
    }


def test_event_time_after_now_is_refused_even_inside_the_lateness_window(activity: Suite) -> None:
    batch = read_batch([("b.csv", csv_bytes(HEADER, [good_row(1), with_value(2, "event_time", "2026-01-03T23:00:00")]))], activity)
    outcome = validate_batch(activity, batch, DAY, datetime(2026, 1, 3, 12, tzinfo=timezone.utc))
    assert quarantined(outcome) == {2: "expect_column_values_to_be_between(event_time)"}


def test_a_row_breaking_several_rules_lists_them_all(activity: Suite) -> None:
    outcome = split(activity, [good_row(1), with_value(2, "sessions", 900)[:7] + ["sideways"]])
    assert quarantined(outcome) == {
        2: "expect_column_values_to_be_between(sessions); expect_column_values_to_be_in_set(plan_change)"
    }
    assert outcome.reason_counts == {
        "expect_column_values_to_be_between(sessions)": 1,
        "expect_column_values_to_be_in_set(plan_change)": 1,
    }


@pytest.mark.parametrize("content", [b"", ",".join(HEADER).encode() + b"\n"], ids=["zero-bytes", "header-only"])
def test_empty_file_fails_where_the_suite_requires_rows(activity: Suite, content: bytes) -> None:
    with pytest.raises(BatchRejected, match=r"expect_table_row_count_to_be_between failed: 0 rows, expected between 1 and"):
        validate_batch(activity, read_batch([("empty.csv", content)], activity), DAY, NOW)


def test_empty_file_is_an_accepted_empty_batch_where_the_suite_allows_it(cancellations: Suite) -> None:
    outcome = validate_batch(cancellations, read_batch([("empty.csv", b"")], cancellations), DAY, NOW)
    assert outcome.landed_rows == 0 and outcome.accepted.empty and outcome.quarantined.empty


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"event_id,customer_id\n\xff\xfe\x00garbage", "NUL bytes"),
        (b"event_id,customer_id\na-1,\xff\xfe1\n", "not readable as UTF-8"),
        (b'event_id,customer_id\na-1,1\na-2,2,3,4\n', "not a readable CSV"),
    ],
    ids=["binary", "bad-utf8", "ragged-rows"],
)
def test_corrupt_or_unreadable_file_fails_the_batch(activity: Suite, content: bytes, message: str) -> None:
    with pytest.raises(BatchRejected, match=message):
        read_batch([("broken.csv", content)], activity)


def test_invariant_violation_is_refused() -> None:
    import pandas as pd

    outcome = ValidationOutcome(pd.DataFrame({"a": [1]}), pd.DataFrame({"a": []}), landed_rows=2, reason_counts={}, extra_columns=[])
    with pytest.raises(AssertionError, match=r"accepted \(1\) \+ quarantined \(0\) != landed \(2\)"):
        outcome.check_invariant("test")


def test_generated_batches_with_every_bad_class_lose_no_row(expectations_dir: Path) -> None:
    from nightshift.demo.churn_data import BAD_INPUT_CLASSES, DatagenSpec, generate

    spec = DatagenSpec(customers=300, start=DAY, days=2, seed=3, bad_rates={c: 0.02 for c in BAD_INPUT_CLASSES})
    seen_reasons: set[str] = set()
    for day, source, data in generate(spec):
        suite = Suite.load(expectations_dir / f"{source}.json")
        batch = read_batch([("f.csv", data)], suite)
        outcome = validate_batch(suite, batch, day, NOW)
        rows_out = set(outcome.quarantined[ROW_NUMBER]) | set(batch.loc[~batch[ROW_NUMBER].isin(outcome.quarantined[ROW_NUMBER]), ROW_NUMBER])
        assert rows_out == set(batch[ROW_NUMBER]) and len(outcome.accepted) + len(outcome.quarantined) == len(batch)
        seen_reasons |= {r.split("(")[0] for r in outcome.reason_counts}
    assert {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_of_type",
    } <= seen_reasons


def test_suite_declaring_an_unsupported_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "bad", "expectations": [{"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "a", "type_": "decimal"}}]}')
    with pytest.raises(ValueError, match=r"declares type 'decimal'; use one of"):
        Suite.load(path)


def test_the_cached_gx_context_judges_each_batch_alone_and_keeps_no_frame(activity: Suite) -> None:
    """One GX context serves every batch of the process: a bad batch after a good one, and a good one
    after it, are judged on their own rows, and no validated frame stays in memory."""
    import gc
    import weakref

    import pandas as pd

    from nightshift.ingest import validation

    rules = [rule for rule in validation._split_rules(activity)[1] if rule.expectation_type not in validation.CROSS_ROW_RULES]
    parameters = validation.suite_parameters(activity, DAY, NOW)

    def typed(sessions: list[float]) -> pd.DataFrame:
        text = pd.DataFrame([[str(v) for v in with_value(i + 1, "sessions", s)] for i, s in enumerate(sessions)], columns=HEADER)
        return validation._coerce(activity, validation._with_declared_columns(activity, text))[0]

    assert validation._run_row_rules(activity, rules, typed([3, 4]), parameters) == {}
    assert validation._run_row_rules(activity, rules, typed([3, 999, 5]), parameters) == {
        "expect_column_values_to_be_between(sessions)": [1]}
    assert validation._run_row_rules(activity, rules, typed([7]), parameters) == {}
    frame = typed([2, 3]).astype({"sessions": "float64", "customer_id": "float64", "support_tickets": "float64"})
    kept = weakref.ref(frame)
    assert validation._validate(activity.name, rules, frame, parameters).success
    del frame
    gc.collect()
    assert kept() is None, "the cached GX engine still holds the last validated frame"


def test_gx_hash_threshold_switch_still_exists() -> None:
    """validation._validate turns GX's frame hashing off through this module global."""
    from great_expectations.execution_engine import pandas_execution_engine

    assert hasattr(pandas_execution_engine, "HASH_THRESHOLD")
