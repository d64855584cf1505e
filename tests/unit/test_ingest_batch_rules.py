"""Batch rules that keep bad files out whole: exact integers, per-file columns, the quarantine cap,
ragged and truncated files, messages that say what a file is, and names that become paths.

Each test lands the file a real upstream mistake produces and asserts where every row went,
or the refusal and its message (what, where, what to do next).
"""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from nightshift.ingest import BatchMissing, batch_landed, ingest_batch
from nightshift.ingest.validation import (
    REASONS,
    ROW_NUMBER,
    BatchRejected,
    Suite,
    ValidationOutcome,
    check_quarantined_share,
    read_batch,
    validate_batch,
)
from nightshift.landing import Landing
from nightshift.settings import PROJECT_ROOT, Settings
from nightshift.usecase import ConfigError, SourceConfig, load_use_case
from nightshift.warehouse import VALIDATION_RUNS, Warehouse
from tests.conftest import csv_bytes
from tests.unit.test_validation import HEADER, activity, cancellations, good_row, with_value  # noqa: F401 - shared fixtures

DAY = date(2026, 1, 3)
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
ACTIVITY = SourceConfig(name="activity", suite="activity")
INT64_MAX = 2**63 - 1
CHURN = (PROJECT_ROOT / "config" / "churn.yaml").read_text()




def relaxed_suite(tmp_path: Path, expectations_dir: Path, meta: dict | None = None) -> Suite:
    """The activity suite with its type rules only (no range, no uniqueness) and ``meta`` merged in."""
    definition = json.loads((expectations_dir / "activity.json").read_text())
    types = [e for e in definition["expectations"] if e["type"] == "expect_column_values_to_be_of_type"]
    definition["expectations"] = types
    definition["meta"].update(meta or {})
    path = tmp_path / "relaxed.json"
    path.write_text(json.dumps(definition))
    return Suite.load(path)


def split(suite: Suite, files: list[tuple[str, bytes]]) -> ValidationOutcome:
    outcome = validate_batch(suite, read_batch(files, suite), DAY, NOW)
    assert len(outcome.accepted) + len(outcome.quarantined) == outcome.landed_rows
    return outcome


def quarantined(outcome: ValidationOutcome) -> dict[int, str]:
    return dict(zip(outcome.quarantined[ROW_NUMBER], outcome.quarantined[REASONS], strict=True))


def land(settings: Settings, name: str, data: bytes, day: date = DAY, source: str = "activity") -> None:
    Landing(settings.landing_uri).write_bytes(source, day, name, data)


def snapshot(settings: Settings) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    return {t: warehouse.read(t).drop(columns="validated_at", errors="ignore") for t in warehouse.tables()}


# --- 1. integers are exact -------------------------------------------------------------------


def test_integers_beyond_2_53_are_read_exactly_and_stay_distinct(cancellations: Suite) -> None:
    header = ["customer_id", "cancelled_at", "reason"]
    rows = [[2**53, "2026-01-03T10:00:00", "price"], [2**53 + 1, "2026-01-03T11:00:00", "price"]]
    outcome = split(cancellations, [("c.csv", csv_bytes(header, rows))])
    assert outcome.quarantined.empty, "2**53 and 2**53 + 1 are two keys, not a duplicate"
    assert outcome.accepted["customer_id"].tolist() == [9007199254740992, 9007199254740993]


def test_int64_max_is_valid(activity: Suite) -> None:
    outcome = split(activity, [("a.csv", csv_bytes(HEADER, [with_value(1, "customer_id", INT64_MAX), good_row(2)]))])
    assert outcome.quarantined.empty
    assert outcome.accepted["customer_id"].tolist() == [INT64_MAX, 2]
    assert str(outcome.accepted["customer_id"].dtype) == "Int64"


@pytest.mark.parametrize("value", [str(2**63), str(-(2**63) - 1), "99999999999999999999999", "1e3", "7.5"])
def test_an_integer_that_does_not_fit_is_a_type_failure_even_in_a_relaxed_suite(
    tmp_path: Path, expectations_dir: Path, value: str
) -> None:
    suite = relaxed_suite(tmp_path, expectations_dir)
    rows = [good_row(i) for i in range(1, 5)] + [with_value(5, "customer_id", value)]
    outcome = split(suite, [("a.csv", csv_bytes(HEADER, rows))])
    assert quarantined(outcome) == {5: "expect_column_values_to_be_of_type(customer_id)"}
    assert outcome.quarantined["customer_id"].tolist() == [value], "quarantine keeps the landed text"
    assert outcome.accepted["customer_id"].tolist() == [1, 2, 3, 4]


def test_an_integer_beyond_int64_is_never_a_range_failure(activity: Suite) -> None:
    rows = [
        good_row(1),
        with_value(2, "customer_id", 2**63),
        with_value(3, "customer_id", -(2**63)),
        with_value(4, "customer_id", "7.0"),
    ]
    outcome = split(activity, [("a.csv", csv_bytes(HEADER, rows))])
    assert quarantined(outcome) == {
        2: "expect_column_values_to_be_of_type(customer_id)",
        3: "expect_column_values_to_be_between(customer_id)",  # int64's minimum fits; it breaks min_value 1
    }
    assert outcome.accepted["customer_id"].tolist() == [1, 7]


def test_exact_integers_reach_the_warehouse(settings: Settings) -> None:
    rows = [with_value(1, "customer_id", 2**53 + 1), with_value(2, "customer_id", INT64_MAX), good_row(3), good_row(4)]
    land(settings, "activity_2026-01-03.csv", csv_bytes(HEADER, rows))
    ingest_batch(settings, ACTIVITY, DAY, NOW)
    raw = Warehouse.from_uri(settings.warehouse_uri).read("raw.activity").sort_values("event_id")
    assert [int(v) for v in raw["customer_id"]] == [2**53 + 1, INT64_MAX, 3, 4]


# --- 2. columns are checked per file; only the source's files are read ------------------------


def test_a_file_missing_a_required_column_fails_naming_the_file_and_the_column(activity: Suite) -> None:
    good = csv_bytes(HEADER, [good_row(i) for i in range(1, 6)])
    header = [c for c in HEADER if c != "customer_id"]
    late = csv_bytes(header, [[v for c, v in zip(HEADER, good_row(9), strict=True) if c != "customer_id"]])
    with pytest.raises(BatchRejected) as info:
        read_batch([("a.csv", good), ("late.csv", late)], activity)
    message = str(info.value)
    assert "'late.csv'" in message and "['customer_id']" in message and "re-export the file" in message
    assert "'a.csv'" not in message


def test_files_not_matching_the_pattern_are_listed_not_read(settings: Settings) -> None:
    land(settings, "activity_2026-01-03.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 6)]))
    land(settings, "README.txt", b"exported by the nightly job\n")
    folder = settings.home / "landing" / "activity" / DAY.isoformat()
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "archive").mkdir()
    summary = ingest_batch(settings, ACTIVITY, DAY, NOW)
    assert (summary.landed, summary.accepted) == (5, 5)
    assert summary.ignored_files == [".DS_Store", "README.txt", "archive/"]
    runs = Warehouse.from_uri(settings.warehouse_uri).read(VALIDATION_RUNS)
    assert json.loads(runs["ignored_files"].iloc[0]) == [".DS_Store", "README.txt", "archive/"]
    assert json.loads(runs["files"].iloc[0]) == [str(folder / "activity_2026-01-03.csv")]


def test_a_day_with_only_ignored_files_has_no_batch_and_says_what_was_ignored(settings: Settings) -> None:
    land(settings, "activity.csv.gz", gzip.compress(csv_bytes(HEADER, [good_row(1)])))
    assert batch_landed(settings, ACTIVITY, DAY, now=datetime(2026, 1, 4, tzinfo=timezone.utc)) is False
    with pytest.raises(BatchMissing) as info:
        batch_landed(settings, ACTIVITY, DAY, now=NOW)
    assert "activity.csv.gz" in str(info.value) and "'*.csv'" in str(info.value)
    with pytest.raises(BatchMissing, match=r"ignored, as not matching the source's pattern '\*.csv': activity.csv.gz"):
        ingest_batch(settings, ACTIVITY, DAY, NOW)


def test_a_source_pattern_from_the_use_case_file_chooses_the_files(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(CHURN.replace('    pattern: "*.csv"\n', '    pattern: "export_*.csv"\n', 2))
    source = load_use_case(path).sources["activity"]
    assert source.pattern == "export_*.csv"
    land(settings, "export_1.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 6)]))
    land(settings, "scratch.csv", csv_bytes(HEADER, [good_row(9)]))
    summary = ingest_batch(settings, source, DAY, NOW)
    assert summary.landed == 5 and summary.ignored_files == ["scratch.csv"]


def test_pattern_defaults_to_csv_files() -> None:
    assert SourceConfig("activity", "activity").pattern == "*.csv"
    assert {s.pattern for s in load_use_case(PROJECT_ROOT / "config" / "churn.yaml").sources.values()} == {"*.csv"}


@pytest.mark.parametrize("pattern", ["../*.csv", "sub/*.csv", ".*", ""])
def test_a_pattern_that_is_not_a_file_name_glob_fails_at_load_time(tmp_path: Path, pattern: str) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(CHURN.replace('    pattern: "*.csv"\n', f'    pattern: "{pattern}"\n', 1))
    with pytest.raises(ConfigError, match=r"sources.customers: file pattern .* is not a glob on a file name") as info:
        load_use_case(path)
    assert str(path) in str(info.value)


def test_s3_landing_lists_ignored_files_too(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in fake.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="landing")
        landing = Landing("s3://landing/zone")
        rows = [good_row(i) for i in range(1, 6)]
        landing.write_bytes("activity", DAY, "activity_2026-01-03.csv", csv_bytes(HEADER, rows))
        landing.write_bytes("activity", DAY, "README.txt", b"notes")
        landing.write_bytes("activity", DAY, ".DS_Store", b"\x00\x01")
        boto3.client("s3").put_object(Bucket="landing", Key="zone/activity/2026-01-03/old/a.csv", Body=b"x")
        files, ignored = landing.list_day("activity", DAY, "*.csv")
        assert [f.name for f in files] == ["activity_2026-01-03.csv"]
        assert ignored == [".DS_Store", "README.txt", "old/"]
        env = {"NIGHTSHIFT_HOME": str(settings.home), "NIGHTSHIFT_LANDING_URI": "s3://landing/zone"}
        s3_settings = Settings.from_env(env)
        summary = ingest_batch(s3_settings, ACTIVITY, DAY, NOW)
    assert summary.landed == summary.accepted == 5
    assert summary.ignored_files == [".DS_Store", "README.txt", "old/"]


# --- 3. a batch that is mostly bad fails -----------------------------------------------------


def test_a_file_landed_in_the_wrong_days_folder_fails_and_writes_nothing(settings: Settings) -> None:
    land(settings, "activity_2026-01-03.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 6)]))
    ingest_batch(settings, ACTIVITY, DAY, NOW)
    before = snapshot(settings)
    wrong_day = date(2026, 1, 10)  # the same export, dropped into a later day's folder
    land(settings, "activity_2026-01-03.csv", csv_bytes(HEADER, [good_row(i) for i in range(1, 6)]), day=wrong_day)
    with pytest.raises(BatchRejected) as info:
        ingest_batch(settings, ACTIVITY, wrong_day, NOW)
    message = str(info.value)
    assert "batch activity/2026-01-10" in message and "activity_2026-01-03.csv" in message
    assert "5 of 5 rows (100.0%)" in message and "limit of 20%" in message
    assert "expect_column_values_to_be_between(event_time) (5 rows)" in message
    assert "wrong day's folder" in message and "clear this task" in message
    after = snapshot(settings)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[table], obj=table)


def test_the_same_file_landed_twice_fails_instead_of_emptying_the_day(settings: Settings) -> None:
    data = csv_bytes(HEADER, [good_row(i) for i in range(1, 6)])
    land(settings, "activity_2026-01-03.csv", data)
    land(settings, "activity_2026-01-03 (1).csv", data)
    expected = r"10 of 10 rows \(100.0%\) break a row rule.*expect_column_values_to_be_unique\(event_id\) \(10 rows\)"
    with pytest.raises(BatchRejected, match=expected):
        ingest_batch(settings, ACTIVITY, DAY, NOW)
    assert Warehouse.from_uri(settings.warehouse_uri).tables() == [], "nothing written"


def outcome_with(suite: Suite, bad: int, landed: int) -> ValidationOutcome:
    """A split of ``landed`` rows, ``bad`` of them out of range or of an unknown category."""
    rows = [good_row(i) for i in range(1, landed - bad + 1)]
    rows += [
        with_value(100 + i, "sessions", -1) if i % 2 else with_value(100 + i, "plan_change", "x") for i in range(bad)
    ]
    return split(suite, [("a.csv", csv_bytes(HEADER, rows))])


def test_the_quarantine_cap_is_20_percent_unless_the_suite_sets_it(
    activity: Suite, tmp_path: Path, expectations_dir: Path
) -> None:
    assert activity.max_quarantined_share == 0.2
    check_quarantined_share(activity, outcome_with(activity, 1, 5))  # 20 %: at the limit, accepted
    over = outcome_with(activity, 2, 5)
    with pytest.raises(BatchRejected) as info:
        check_quarantined_share(activity, over)
    message = str(info.value)
    assert "2 of 5 rows (40.0%) break a row rule, over the limit of 20% " in message
    assert "(meta.max_quarantined_share of suite 'activity'" in message
    assert (
        "top reasons: expect_column_values_to_be_between(sessions) (1 row), "
        "expect_column_values_to_be_in_set(plan_change) (1 row)"
    ) in message
    lenient = relaxed_suite(tmp_path, expectations_dir, {"max_quarantined_share": 0.5})
    assert lenient.max_quarantined_share == 0.5
    check_quarantined_share(lenient, over)


@pytest.mark.parametrize("share", [1.5, -0.1, "lots", True])
def test_a_bad_quarantine_cap_in_the_suite_is_refused(tmp_path: Path, expectations_dir: Path, share: object) -> None:
    with pytest.raises(ValueError, match=r"meta.max_quarantined_share is .*; give a fraction between 0 and 1"):
        relaxed_suite(tmp_path, expectations_dir, {"max_quarantined_share": share})


# --- 4. ragged and truncated files fail ------------------------------------------------------


def lines(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


GOOD = ",".join(map(str, good_row(1)))
GOOD2 = ",".join(map(str, good_row(2)))


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (lines(",".join(HEADER), GOOD, GOOD2.rsplit(",", 1)[0]), "line 3 has 7 field(s), fewer than the 8"),
        (lines(",".join(HEADER), GOOD + ",x", GOOD2 + ",y"), "line 2 has 9 field(s), more than the 8"),
        (lines(",".join(HEADER), GOOD, GOOD2 + ",y"), "line 3 has 9 field(s), more than the 8"),
        (lines(",".join(HEADER), GOOD, '"a-2",2,"2026-01-03T02:15:00",3,12.5'),
         "line 3 has 5 field(s), fewer than the 8"),
        (f"{','.join(HEADER)}\r\n{GOOD}\r\n{GOOD2[:20]}".encode(), "line 3 has 3 field(s), fewer than the 8"),
    ],
    ids=["short-row", "every-row-one-more", "one-long-row", "short-row-quoted", "truncated-crlf"],
)
def test_a_row_with_more_or_fewer_fields_than_the_header_fails_as_ragged(
    activity: Suite, content: bytes, where: str
) -> None:
    with pytest.raises(BatchRejected) as info:
        read_batch([("cut.csv", content)], activity)
    message = str(info.value)
    assert "file 'cut.csv'" in message and "ragged" in message and where in message and "Re-export" in message
    assert "\n" not in message


def test_blank_lines_and_crlf_are_not_ragged(activity: Suite) -> None:
    content = f"{','.join(HEADER)}\r\n{GOOD}\r\n\r\n{GOOD2}\r\n\n".encode()
    assert split(activity, [("ok.csv", content)]).accepted["event_id"].tolist() == ["a-1", "a-2"]


def test_pandas_never_takes_the_first_column_as_the_index(activity: Suite) -> None:
    batch = read_batch([("ok.csv", csv_bytes(HEADER, [good_row(1), good_row(2)]))], activity)
    assert batch["event_id"].tolist() == ["a-1", "a-2"] and list(batch.index) == [0, 1]


def test_a_timestamp_cut_to_a_date_is_quarantined(activity: Suite) -> None:
    rows = [good_row(1), with_value(2, "event_time", "2026-01-03"), with_value(3, "event_time", "2026")]
    rows += [good_row(4), good_row(5)]
    outcome = split(activity, [("a.csv", csv_bytes(HEADER, rows))])
    assert quarantined(outcome) == {
        2: "expect_column_values_to_be_of_type(event_time)",
        3: "expect_column_values_to_be_of_type(event_time)",
    }


def test_a_column_of_dates_where_a_timestamp_is_declared_fails_with_a_hint(activity: Suite) -> None:
    rows = [with_value(i, "event_time", "2026-01-03") for i in range(1, 4)]
    expected = r"none of the 3 values of column 'event_time' is readable as datetime64\[ns\].*declare the column 'date'"
    with pytest.raises(BatchRejected, match=expected):
        split(activity, [("a.csv", csv_bytes(HEADER, rows))])


def test_a_date_column_takes_dates_and_loads_them_as_midnight(expectations_dir: Path) -> None:
    customers = Suite.load(expectations_dir / "customers.json")
    header = ["customer_id", "signup_date", "plan", "region", "channel", "monthly_price", "snapshot_at"]
    row = ["2025-06-01", "basic", "north", "web", "9.99", "2026-01-03T23:00:00"]
    rows = [[i, *row] for i in range(1, 6)] + [[6, "2025-06-01T10:00:00", *row[1:]]]
    outcome = split(customers, [("c.csv", csv_bytes(header, rows))])
    assert quarantined(outcome) == {6: "expect_column_values_to_be_of_type(signup_date)"}
    assert outcome.accepted["signup_date"].tolist() == [pd.Timestamp("2025-06-01")] * 5
    assert str(outcome.accepted["signup_date"].dtype) == "datetime64[ns]"


def test_duplicate_header_names_fail_the_batch(activity: Suite) -> None:
    header = HEADER + ["sessions"]
    with pytest.raises(BatchRejected, match=r"file 'dup.csv' repeats header name\(s\) \['sessions'\]"):
        read_batch([("dup.csv", csv_bytes(header, [good_row(1) + [4]]))], activity)


@pytest.mark.parametrize("name", ["source_file", "source_row_number"])
def test_header_names_of_nightshifts_own_columns_fail_the_batch(activity: Suite, name: str) -> None:
    expected = rf"file 'own.csv' has header name\(s\) \['{name}'\], which Nightshift adds"
    with pytest.raises(BatchRejected, match=expected):
        read_batch([("own.csv", csv_bytes(HEADER + [name], [good_row(1) + ["x"]]))], activity)


# --- 6. messages say what a file is -----------------------------------------------------------


TEXT = csv_bytes(HEADER, [good_row(1)]).decode()


def parquet_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    pd.DataFrame({"event_id": ["a-1"]}).to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (gzip.compress(csv_bytes(HEADER, [good_row(1)])), "is a gzip-compressed file"),
        (parquet_bytes(), "is a Parquet file"),
        (TEXT.encode("utf-16"), "is UTF-16 text"),
        (TEXT.encode("utf-16-le"), "is UTF-16 text (little-endian, without a byte-order mark)"),
        (TEXT.encode("utf-16-be"), "is UTF-16 text (big-endian, without a byte-order mark)"),
    ],
    ids=["gzip", "parquet", "utf16-bom", "utf16le", "utf16be"],
)
def test_a_file_that_is_not_csv_text_is_named_by_what_it_is(activity: Suite, content: bytes, what: str) -> None:
    with pytest.raises(BatchRejected) as info:
        read_batch([("export.csv", content)], activity)
    assert f"file 'export.csv' {what}" in str(info.value) and "NUL" not in str(info.value)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(activity: Suite) -> None:
    content = b"\xef\xbb\xbf" + csv_bytes(HEADER, [good_row(i) for i in range(1, 4)])
    assert split(activity, [("bom.csv", content)]).accepted["event_id"].tolist() == ["a-1", "a-2", "a-3"]


def test_rejections_carry_no_stray_newline(settings: Settings) -> None:
    land(settings, "activity_2026-01-03.csv", lines(",".join(HEADER), GOOD, GOOD2 + ",3,4"))
    with pytest.raises(BatchRejected) as info:
        ingest_batch(settings, ACTIVITY, DAY, NOW)
    message = str(info.value)
    assert "\n" not in message and ".." not in message.replace("'..'", "")
    assert message.endswith("then clear this task in Airflow to re-run 2026-01-03")


# --- 18. names that become paths ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.csv", "sub/a.csv", "..", "a\\b.csv"])
def test_a_landed_file_name_that_is_not_a_plain_name_is_refused(tmp_path: Path, name: str) -> None:
    landing = Landing(str(tmp_path / "landing"))
    with pytest.raises(ValueError, match=r"landed file name .* is not a plain file name"):
        landing.write_bytes("activity", DAY, name, b"x")
    assert not (tmp_path / "landing" / "activity" / "evil.csv").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


@pytest.mark.parametrize("source", ["../activity", "a/b", "Activity", "act-ivity", ""])
def test_a_source_name_that_is_not_an_identifier_is_refused_before_any_path_is_built(
    tmp_path: Path, source: str
) -> None:
    landing = Landing(str(tmp_path))
    for call in (lambda: landing.list_batch(source, DAY), lambda: landing.batch_location(source, DAY),
                 lambda: landing.write_bytes(source, DAY, "a.csv", b"x")):
        with pytest.raises(ValueError, match=r"source name .* is not a lowercase identifier"):
            call()
    with pytest.raises(ConfigError, match=r"is not a lowercase identifier"):
        SourceConfig(source, "activity")
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda s: s.replace("suite: activity", "suite: ../expectations/activity"),
         r"sources.activity: source 'activity': suite '../expectations/activity' is not a lowercase identifier"),
        (lambda s: s.replace("  activity:\n", "  ../activity:\n"),
         r"sources.../activity: source name '../activity' is not"),
        (lambda s: s.replace("  activity:\n", "  raw/activity:\n"),
         r"sources.raw/activity: source name 'raw/activity' is not"),
    ],
    ids=["suite-path", "source-dotdot", "source-slash"],
)
def test_names_that_become_paths_fail_at_load_time(tmp_path: Path, mutation, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "churn.yaml"
    path.write_text(mutation(CHURN))
    with pytest.raises(ConfigError, match=message) as info:
        load_use_case(path)
    assert str(path) in str(info.value)


def test_a_use_case_name_that_is_not_an_identifier_fails_at_load_time(tmp_path: Path) -> None:
    path = tmp_path / "churn-v2.yaml"
    path.write_text(CHURN.replace("name: churn", "name: churn-v2"))
    with pytest.raises(ConfigError, match=r"name: 'churn-v2' is not a lowercase identifier"):
        load_use_case(path)
