"""Unit tests of the synthetic data generator (nightshift.demo.churn_data).

The expected headers, vocabularies and ranges are written out here on purpose, not imported
from the module: they are a contract with the validation suites, and a test that reads them
from the code under test could not notice the code drifting from the contract.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from nightshift.demo.churn_data import (
    BAD_INPUT_CLASSES,
    SOURCES,
    DatagenSpec,
    generate,
    main,
    single_day_batch,
    write_landing,
)

HEADERS = {
    "customers": "customer_id,signup_date,plan,region,channel,monthly_price,snapshot_at",
    "activity": "event_id,customer_id,event_time,sessions,minutes,spend,support_tickets,plan_change",
    "cancellations": "customer_id,cancelled_at,reason",
}
KEYS = {"customers": "customer_id", "activity": "event_id", "cancellations": "customer_id"}
CATEGORIES = {
    "customers": {
        "plan": {"basic", "standard", "premium"},
        "region": {"north", "south", "east", "west"},
        "channel": {"web", "mobile", "partner"},
    },
    "activity": {"plan_change": {"none", "upgrade", "downgrade"}},
    "cancellations": {"reason": {"price", "service", "competitor", "other"}},
}
# (column, lowest allowed, highest allowed, must be a whole number)
NUMBERS: dict[str, list[tuple[str, float, float | None, bool]]] = {
    "customers": [("customer_id", 1, None, True), ("monthly_price", 0.01, 500, False)],
    "activity": [
        ("customer_id", 1, None, True),
        ("sessions", 0, 200, True),
        ("minutes", 0, 1440, False),
        ("spend", 0, 10000, False),
        ("support_tickets", 0, 50, True),
    ],
    "cancellations": [("customer_id", 1, None, True)],
}
TIMESTAMPS = {"customers": "snapshot_at", "activity": "event_time", "cancellations": "cancelled_at"}
DECIMALS = {"monthly_price": r"^\d+\.\d\d$", "spend": r"^\d+\.\d\d$", "minutes": r"^\d+\.\d$"}

SMALL = DatagenSpec(customers=400, days=40, seed=3)
SMALL_START = pd.Timestamp(SMALL.start)


def read_batch(data: bytes) -> pd.DataFrame:
    """A batch exactly as written: every value a string, blanks kept as ''."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def violations(frame: pd.DataFrame, source: str, day: date) -> set[str]:
    """The bad-input classes present in one batch, judged against the written contract."""
    found: set[str] = set()
    if (frame == "").any().any():
        found.add("null_required")
    for column, low, high, whole in NUMBERS[source]:
        text = frame[column]
        value = pd.to_numeric(text, errors="coerce")
        if (value.isna() & (text != "")).any():
            found.add("uncoercible")
        bad = value.notna() & ((value < low) | ((value > high) if high is not None else False))
        if whole:
            bad |= value.notna() & (value % 1 != 0)
        if bad.any():
            found.add("out_of_range")
    for column, allowed in CATEGORIES[source].items():
        if (~frame[column].isin(allowed) & (frame[column] != "")).any():
            found.add("unknown_category")
    stamp_text = frame[TIMESTAMPS[source]]
    stamp = pd.to_datetime(stamp_text, format="%Y-%m-%dT%H:%M:%S", errors="coerce")
    if (stamp.isna() & (stamp_text != "")).any():
        found.add("uncoercible")
    if (stamp.notna() & (stamp.dt.date != day)).any():
        found.add("bad_event_time")
    if source == "customers":
        signup = pd.to_datetime(frame["signup_date"], format="%Y-%m-%d", errors="coerce")
        if (signup.isna() & (frame["signup_date"] != "")).any():
            found.add("uncoercible")
        if (signup.notna() & (signup.dt.date > day)).any():
            found.add("out_of_range")
    key = frame[KEYS[source]]
    if source != "activity":
        # Damaged ids ("", "abc", "0") repeat by chance; only a valid id repeated is a duplicate.
        numeric = pd.to_numeric(key, errors="coerce")
        key = key[numeric.notna() & (numeric > 0)]
    if key[key != ""].duplicated().any():
        found.add("duplicate_key")
    return found


@pytest.fixture(scope="module")
def small_batches() -> dict[tuple[date, str], bytes]:
    return {(day, source): data for day, source, data in generate(SMALL)}


@pytest.fixture(scope="module")
def small_frames(small_batches: dict[tuple[date, str], bytes]) -> dict[str, pd.DataFrame]:
    """All batches of SMALL per source, parsed with types, with a ``day`` column."""
    frames: dict[str, list[pd.DataFrame]] = {source: [] for source in SOURCES}
    for (day, source), data in small_batches.items():
        frames[source].append(pd.read_csv(io.BytesIO(data)).assign(day=pd.Timestamp(day)))
    return {source: pd.concat(parts, ignore_index=True) for source, parts in frames.items()}


def test_same_spec_gives_identical_bytes() -> None:
    spec = DatagenSpec(customers=150, days=4, seed=11)
    first = list(generate(spec))
    assert first == list(generate(DatagenSpec(customers=150, days=4, seed=11)))
    other_seed = list(generate(DatagenSpec(customers=150, days=4, seed=12)))
    assert [data for _, _, data in first] != [data for _, _, data in other_seed]


def test_more_days_do_not_change_earlier_days() -> None:
    short = list(generate(DatagenSpec(customers=150, days=3, seed=5)))
    longer = list(generate(DatagenSpec(customers=150, days=6, seed=5)))
    assert longer[: len(short)] == short


def test_drift_leaves_days_before_it_untouched_and_changes_later_days() -> None:
    start = date(2026, 1, 1)
    plain = list(generate(DatagenSpec(customers=300, days=6, start=start)))
    drift_day = start + timedelta(days=3)
    drifted_specs = {
        "covariate": DatagenSpec(customers=300, days=6, start=start, covariate_drift_start=drift_day),
        "concept": DatagenSpec(customers=300, days=6, start=start, concept_drift_start=drift_day),
    }
    for kind, spec in drifted_specs.items():
        drifted = list(generate(spec))
        assert drifted[:9] == plain[:9], kind  # three days x three sources
        assert drifted[9:] != plain[9:], kind


def test_covariate_drift_lowers_sessions() -> None:
    start = date(2026, 1, 1)
    drift_day = start + timedelta(days=5)
    spec = DatagenSpec(customers=500, days=10, start=start, covariate_drift_start=drift_day)
    sessions: dict[bool, list[float]] = {False: [], True: []}
    for day, source, data in generate(spec):
        if source == "activity":
            sessions[day >= drift_day].append(read_batch(data)["sessions"].astype(int).mean())
    before, after = sum(sessions[False]) / 5, sum(sessions[True]) / 5
    assert after < 0.8 * before


@pytest.mark.parametrize("source", SOURCES)
def test_header_is_the_contract(small_batches: dict[tuple[date, str], bytes], source: str) -> None:
    for (_, batch_source), data in small_batches.items():
        if batch_source == source:
            assert data.split(b"\n", 1)[0].decode("utf-8") == HEADERS[source]


def test_clean_batches_obey_every_rule(small_batches: dict[tuple[date, str], bytes]) -> None:
    rows = {source: 0 for source in SOURCES}
    for (day, source), data in small_batches.items():
        frame = read_batch(data)
        rows[source] += len(frame)
        assert violations(frame, source, day) == set(), (day, source)
        for column, pattern in DECIMALS.items():
            if column in frame:
                assert frame[column].str.match(pattern).all(), (day, source, column)
        if source == "activity":
            expected_id = "a-" + frame["customer_id"] + day.strftime("-%Y%m%d")
            assert (frame["event_id"] == expected_id).all()
    assert rows["customers"] > 400 * 30 and rows["activity"] > 400 * 10 and rows["cancellations"] > 20


def test_new_customers_sign_up_and_show_up_on_their_signup_day(small_frames: dict[str, pd.DataFrame]) -> None:
    customers = small_frames["customers"]
    first_seen = customers.groupby("customer_id")["day"].min()
    signup = pd.to_datetime(customers.groupby("customer_id")["signup_date"].first())
    joined_later = first_seen[first_seen > SMALL_START]
    assert len(joined_later) > SMALL.days  # more than one a day on average
    assert (signup[joined_later.index] == joined_later).all()


def test_cancelled_customers_never_reappear(small_frames: dict[str, pd.DataFrame]) -> None:
    cancelled_on = small_frames["cancellations"].set_index("customer_id")["day"]
    assert cancelled_on.index.is_unique
    for source in ("customers", "activity"):
        frame = small_frames[source]
        when = frame["customer_id"].map(cancelled_on)
        assert not (when.notna() & (frame["day"] >= when)).any(), source
    # Whoever cancels was an active customer the day before.
    snapshots = small_frames["customers"]
    later = cancelled_on[cancelled_on > SMALL_START]
    seen_day_before = {
        (row.customer_id, row.day) for row in snapshots[["customer_id", "day"]].itertuples(index=False)
    }
    assert all((cid, day - pd.Timedelta(days=1)) in seen_day_before for cid, day in later.items())


def test_share_cancelling_within_30_days_is_plausible(small_frames: dict[str, pd.DataFrame]) -> None:
    snapshots = small_frames["customers"]
    cancelled_on = snapshots["customer_id"].map(small_frames["cancellations"].set_index("customer_id")["day"])
    labelled = snapshots["day"] <= SMALL_START + pd.Timedelta(days=SMALL.days - 31)
    positive = (cancelled_on > snapshots["day"]) & (cancelled_on <= snapshots["day"] + pd.Timedelta(days=30))
    rate = positive[labelled].mean()
    assert 0.06 <= rate <= 0.22, rate


def test_plan_changes_show_in_the_evening_snapshot(small_frames: dict[str, pd.DataFrame]) -> None:
    order = {"basic": 0, "standard": 1, "premium": 2}
    snapshots = small_frames["customers"].set_index(["customer_id", "day"])
    activity = small_frames["activity"]
    changes = activity[(activity["plan_change"] != "none") & (activity["day"] > SMALL_START)]
    assert len(changes) > 0
    for row in changes.itertuples(index=False):
        today = snapshots.loc[(row.customer_id, row.day)]
        yesterday = snapshots.loc[(row.customer_id, row.day - pd.Timedelta(days=1))]
        step = 1 if row.plan_change == "upgrade" else -1
        assert order[today["plan"]] == order[yesterday["plan"]] + step
        assert (today["monthly_price"] > yesterday["monthly_price"]) == (step == 1)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("bad_class", BAD_INPUT_CLASSES)
def test_each_bad_class_appears_alone(source: str, bad_class: str) -> None:
    day = date(2026, 2, 1)
    clean = read_batch(single_day_batch(source, 400, day, seed=1))
    assert violations(clean, source, day) == set()
    dirty = read_batch(single_day_batch(source, 400, day, seed=1, bad_rates={bad_class: 0.1}))
    assert violations(dirty, source, day) == {bad_class}
    changed = len(dirty) - len(clean) if bad_class == "duplicate_key" else (dirty != clean).any(axis=1).sum()
    assert 15 <= changed <= 70  # about 10 % of 400 rows


def test_bad_rows_are_specific_values() -> None:
    day = date(2026, 2, 1)
    rates = {"unknown_category": 0.2}
    unknown = {}
    for source, columns in CATEGORIES.items():
        frame = read_batch(single_day_batch(source, 300, day, 2, rates))
        unknown.update({column: set(frame[column]) - allowed for column, allowed in columns.items()})
    assert unknown == {
        "plan": {"platinum"},
        "region": {"mars"},
        "channel": {"fax"},
        "plan_change": {"sideways"},
        "reason": {"bored"},
    }
    times = read_batch(single_day_batch("activity", 300, day, 2, {"bad_event_time": 0.2}))["event_time"]
    shifted = set(times.str[:10]) - {day.isoformat()}
    assert shifted == {"2026-01-22", "2027-03-08"}  # 10 days before, 400 days after


def test_bad_rates_in_generate_hit_every_batch_without_touching_clean_rows() -> None:
    rates = {name: 0.05 for name in BAD_INPUT_CLASSES}
    spec = DatagenSpec(customers=400, days=2, seed=4, bad_rates=rates)
    clean = {(day, source): data for day, source, data in generate(DatagenSpec(customers=400, days=2, seed=4))}
    for day, source, data in generate(spec):
        if source == "cancellations":
            continue  # a handful of rows a day: too few for every class to show
        dirty = read_batch(data)
        assert violations(dirty, source, day) == set(BAD_INPUT_CLASSES), (day, source)
        original = read_batch(clean[(day, source)])
        untouched = (dirty.iloc[: len(original)] == original).all(axis=1)
        assert 0.5 < untouched.mean() < 0.95


def test_unknown_bad_class_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match="null_required.*uncoercible"):
        DatagenSpec(bad_rates={"typo": 0.1})
    with pytest.raises(ValueError, match="allowed classes"):
        single_day_batch("activity", 10, date(2026, 1, 1), 1, bad_rates={"sideways": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        DatagenSpec(bad_rates={"null_required": 1.5})


def test_spec_refuses_inconsistent_knobs() -> None:
    with pytest.raises(ValueError, match="broken_day"):
        DatagenSpec(days=5, broken_day=date(2026, 3, 1))
    with pytest.raises(ValueError, match="broken_source"):
        DatagenSpec(broken_source="payments")


@pytest.mark.parametrize("source", SOURCES)
def test_broken_day_file_is_not_utf8(source: str) -> None:
    start = date(2026, 1, 1)
    broken_day = start + timedelta(days=1)
    spec = DatagenSpec(customers=200, days=3, start=start, broken_day=broken_day, broken_source=source)
    healthy = {(d, s): data for d, s, data in generate(DatagenSpec(customers=200, days=3, start=start))}
    for day, batch_source, data in generate(spec):
        if (day, batch_source) == (broken_day, source):
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8", errors="strict")
            assert b"\x00" in data
            head = data.split(b"\xff\x00", 1)[0]
            assert len(head) > 20 and healthy[(day, source)].startswith(head)
        else:
            assert data == healthy[(day, batch_source)]


def test_write_landing_uses_the_landing_layout(tmp_path: Path) -> None:
    spec = DatagenSpec(customers=100, days=2, start=date(2026, 1, 1))
    uris = write_landing(spec, str(tmp_path))
    expected = [
        tmp_path / source / day / f"{source}_{day}.csv"
        for day in ("2026-01-01", "2026-01-02")
        for source in ("customers", "activity", "cancellations")
    ]
    assert [Path(uri) for uri in uris] == expected
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(expected)
    for (_, _, data), path in zip(generate(spec), expected):
        assert path.read_bytes() == data


@pytest.mark.parametrize("source", SOURCES)
def test_single_day_batch_has_the_rows_asked_for(source: str) -> None:
    day = date(2026, 3, 3)
    data = single_day_batch(source, 1000, day, seed=9)
    assert data.split(b"\n", 1)[0].decode() == HEADERS[source]
    frame = read_batch(data)
    assert len(frame) == 1000
    assert violations(frame, source, day) == set()
    assert data == single_day_batch(source, 1000, day, seed=9)


def test_main_writes_to_the_landing_from_flag_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["--landing", str(tmp_path / "flag"), "--customers", "50", "--days", "2"]) == 0
    assert len(list((tmp_path / "flag").rglob("*.csv"))) == 6
    monkeypatch.setenv("NIGHTSHIFT_LANDING_URI", str(tmp_path / "env"))
    assert main(["--customers", "50", "--days", "1", "--bad-rate", "duplicate_key=0.1"]) == 0
    assert len(list((tmp_path / "env").rglob("*.csv"))) == 3
    monkeypatch.delenv("NIGHTSHIFT_LANDING_URI")
    with pytest.raises(SystemExit):
        main(["--days", "1"])
    with pytest.raises(SystemExit):
        main(["--landing", str(tmp_path), "--bad-rate", "typo=0.1"])


def test_import_is_light() -> None:
    code = "import sys, nightshift.demo.churn_data; sys.exit(bool({'numpy', 'pandas'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "plugins")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0

