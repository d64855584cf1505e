"""Unit tests of the demand demo's data generator (nightshift.demo.demand_data).

Headers and vocabularies are written out here, not imported from the module: they are a
contract with the suites in expectations/, and a test reading them from the code under test
could not notice the code drifting from the contract. Batches are validated through
nightshift.ingest.validation with the shipped suites, exactly as the ingest does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from nightshift.demo.demand_data import BAD_INPUT_CLASSES, SOURCES, DemandSpec, generate, main, write_landing
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

HEADERS = {
    "stores": "store_id,region,store_format,floor_area_sqm,opened_on,snapshot_at",
    "products": "product_id,category,unit_price,snapshot_at",
    "sales": "sale_id,store_id,product_id,sold_at,units,unit_price,promo",
}
EVENT_TIME = {"stores": "snapshot_at", "products": "snapshot_at", "sales": "sold_at"}
# The GX rule each bad-input class must be caught by (type plus, for time, the column).
CAUGHT_BY = {
    "null_required": "expect_column_values_to_not_be_null(",
    "out_of_range": "expect_column_values_to_be_between(",
    "unknown_category": "expect_column_values_to_be_in_set(",
    "duplicate_key": "expect_column_values_to_be_unique(",
    "bad_event_time": "expect_column_values_to_be_between(",
    "uncoercible": "expect_column_values_to_be_of_type(",
}
NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
START = date(2026, 1, 1)


@pytest.fixture(scope="module")
def suites() -> dict[str, Suite]:
    return {source: Suite.load(PROJECT_ROOT / "expectations" / f"{source}.json") for source in SOURCES}


@pytest.fixture(scope="module")
def default_run() -> list[tuple[date, str, bytes]]:
    """The default spec: 8 stores, 40 products, 60 days."""
    return list(generate(DemandSpec()))


def frame(data: bytes) -> pd.DataFrame:
    """A batch exactly as written: every value a string."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def sales_of(run: list[tuple[date, str, bytes]]) -> pd.DataFrame:
    """All sales rows of a run, typed, with their batch ``day``."""
    parts = [pd.read_csv(io.BytesIO(data)).assign(day=day) for day, source, data in run if source == "sales"]
    return pd.concat(parts, ignore_index=True)


def validate(suite: Suite, data: bytes, day: date) -> ValidationOutcome:
    """One generated batch through the ingest's reader and validator."""
    return validate_batch(suite, read_batch([("f.csv", data)], suite), day, NOW)


def test_same_spec_gives_identical_bytes() -> None:
    first = list(generate(DemandSpec(days=4)))
    assert first == list(generate(DemandSpec(days=4)))
    other_seed = list(generate(DemandSpec(days=4, seed=12)))
    assert [data for _, _, data in first] != [data for _, _, data in other_seed]


def test_more_days_do_not_change_earlier_days(default_run: list[tuple[date, str, bytes]]) -> None:
    short = list(generate(DemandSpec(days=5)))
    assert default_run[: len(short)] == short
    assert len(default_run) == 60 * 3


@pytest.mark.parametrize("kind", ["covariate", "concept"])
def test_drift_leaves_days_before_it_untouched_and_changes_later_days(kind: str) -> None:
    plain = list(generate(DemandSpec(days=8)))
    drifted = list(generate(DemandSpec(days=8, **{f"{kind}_drift_start": START + timedelta(days=4)})))
    assert drifted[:12] == plain[:12]  # four days x three sources
    assert [d for _, s, d in drifted[12:] if s == "sales"] != [d for _, s, d in plain[12:] if s == "sales"]


def test_headers_ids_and_shapes_are_the_contract(default_run: list[tuple[date, str, bytes]]) -> None:
    for day, source, data in default_run:
        assert data.split(b"\n", 1)[0].decode() == HEADERS[source]
        rows = frame(data)
        assert (rows[EVENT_TIME[source]].str[:10] == day.isoformat()).all()
        if source == "stores":
            assert rows["store_id"].tolist() == [f"S{i:03d}" for i in range(1, 9)]
        elif source == "products":
            assert rows["product_id"].tolist() == [f"P{i:04d}" for i in range(1, 41)]
        else:
            assert 50 < len(rows) < 8 * 40
            expected_id = day.strftime("%Y%m%d-") + rows["store_id"] + "-" + rows["product_id"]
            assert (rows["sale_id"] == expected_id).all() and rows["sale_id"].is_unique
            assert rows["units"].astype(int).min() >= 1
            assert rows["sold_at"].is_monotonic_increasing


def test_clean_data_is_accepted_whole_by_the_shipped_suites(suites: dict[str, Suite]) -> None:
    # Drift on from day 31, so drifted inputs must be clean too.
    drift = START + timedelta(days=30)
    spec = DemandSpec(covariate_drift_start=drift, concept_drift_start=drift)
    checked = {START, START + timedelta(days=35), spec.end}
    landed = 0
    for day, source, data in generate(spec):
        if day in checked:
            outcome = validate(suites[source], data, day)
            assert outcome.quarantined.empty, (day, source, outcome.reason_counts)
            assert len(outcome.accepted) == outcome.landed_rows > 0
            landed += outcome.landed_rows
    assert landed > 3 * (8 + 40 + 100)


@pytest.mark.parametrize("bad_class", BAD_INPUT_CLASSES)
def test_each_bad_class_is_quarantined_under_its_rule(suites: dict[str, Suite], bad_class: str) -> None:
    spec = DemandSpec(stores=20, products=50, days=1, seed=5)
    clean = {source: frame(data) for _, source, data in generate(spec)}
    dirty_spec = DemandSpec(stores=20, products=50, days=1, seed=5, bad_rates={bad_class: 0.2})
    for day, source, data in generate(dirty_spec):
        outcome = validate(suites[source], data, day)
        reasons = {r for text in outcome.quarantined[REASONS] for r in text.split("; ")}
        assert reasons and all(r.startswith(CAUGHT_BY[bad_class]) for r in reasons), (source, reasons)
        time_rules = {r for r in reasons if r.endswith(f"({EVENT_TIME[source]})")}
        if bad_class == "bad_event_time":
            assert reasons == time_rules, source
        elif bad_class == "out_of_range":
            assert not time_rules, source
        dirty, original = frame(data), clean[source]
        bad_rows = set(outcome.quarantined[ROW_NUMBER])
        if bad_class == "duplicate_key":
            copies = len(dirty) - len(original)
            assert copies > 0 and len(bad_rows) == 2 * copies, source  # the copy and its original
        else:
            assert len(dirty) == len(original)
            changed = (dirty != original).any(axis=1)
            assert bad_rows == {i + 1 for i in changed[changed].index}, source
        assert 0 < len(bad_rows) < 0.6 * len(dirty), source


def test_unknown_bad_class_and_inconsistent_knobs_are_refused() -> None:
    with pytest.raises(ValueError, match="allowed classes are null_required.*uncoercible"):
        DemandSpec(bad_rates={"typo": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        DemandSpec(bad_rates={"null_required": 1.5})
    with pytest.raises(ValueError, match="broken_day"):
        DemandSpec(days=5, broken_day=date(2026, 3, 1))
    with pytest.raises(ValueError, match="broken_source"):
        DemandSpec(broken_source="customers")
    with pytest.raises(ValueError, match="stores"):
        DemandSpec(stores=0)


@pytest.mark.parametrize("source", SOURCES)
def test_broken_day_file_is_rejected_as_a_batch(suites: dict[str, Suite], source: str) -> None:
    broken_day = START + timedelta(days=1)
    healthy = {(d, s): data for d, s, data in generate(DemandSpec(days=3))}
    for day, batch_source, data in generate(DemandSpec(days=3, broken_day=broken_day, broken_source=source)):
        if (day, batch_source) == (broken_day, source):
            with pytest.raises(BatchRejected, match="NUL bytes"):
                read_batch([("f.csv", data)], suites[source])
            assert healthy[(day, source)].startswith(data.split(b"\xff\x00", 1)[0])
        else:
            assert data == healthy[(day, batch_source)]


def test_covariate_drift_raises_promos_and_lowers_prices_only_after_its_start() -> None:
    drift = START + timedelta(days=20)
    run = list(generate(DemandSpec(days=40, covariate_drift_start=drift)))
    sales = sales_of(run)
    after = sales["day"] >= drift
    promo_share = (sales["promo"] != "none").groupby(after).mean()
    assert promo_share[True] > 2 * promo_share[False]
    prices = {day: frame(data)["unit_price"].astype(float) for day, source, data in run if source == "products"}
    assert (prices[START] == prices[drift - timedelta(days=1)]).all()
    ratio = prices[drift] / prices[START]
    assert ratio.between(0.83, 0.87).all()
    assert (prices[drift] == prices[drift + timedelta(days=19)]).all()


def test_concept_drift_flips_the_weekday_pattern() -> None:
    drift = START + timedelta(days=28)
    sales = sales_of(list(generate(DemandSpec(days=56, concept_drift_start=drift))))
    daily = sales.groupby("day")["units"].sum()
    when = pd.to_datetime(pd.Series(daily.index, index=daily.index))
    weekend, before = when.dt.dayofweek >= 5, when < pd.Timestamp(drift)
    assert daily[before & weekend].mean() > 1.2 * daily[before & ~weekend].mean()
    assert daily[~before & weekend].mean() < 0.8 * daily[~before & ~weekend].mean()


def test_assortment_changes_slowly(default_run: list[tuple[date, str, bytes]]) -> None:
    sales = sales_of(default_run)
    days_sold = sales.assign(week=(pd.to_datetime(sales["day"]) - pd.Timestamp(START)).dt.days)
    first = days_sold[days_sold["week"] < 7].groupby(["store_id", "product_id"]).size()
    last = days_sold[days_sold["week"] >= 46].groupby(["store_id", "product_id"]).size()  # the last 14 days
    regular_then = set(first[first >= 5].index)  # sold on 5+ of the first 7 days: surely carried
    regular_now = set(last[last >= 10].index)  # sold on 10+ of the last 14 days
    delisted = regular_then - set(last.index)
    listed = regular_now - set(first.index)
    assert delisted and listed, "some pairs leave the assortment and some join it"
    assert len(regular_then & regular_now) > 0.6 * len(regular_then), "most pairs stay"


def test_next_week_units_follow_trailing_week_units(default_run: list[tuple[date, str, bytes]]) -> None:
    sales = sales_of(default_run)
    daily = sales.pivot_table(
        index=["store_id", "product_id"], columns="day", values="units", aggfunc="sum", fill_value=0
    )
    days = list(daily.columns)
    for cut in (7, 21, 35, 49):
        trailing = daily[days[cut - 7 : cut]].sum(axis=1)
        upcoming = daily[days[cut : cut + 7]].sum(axis=1)
        assert trailing.corr(upcoming, method="spearman") > 0.7, cut
    assert sales["units"].std() > sales["units"].mean(), "demand differs a lot between pairs"


def test_files_say_nothing_about_customers_or_cancellations() -> None:
    rates = {name: 0.1 for name in BAD_INPUT_CLASSES}
    for _, _, data in generate(DemandSpec(days=3, bad_rates=rates)):
        text = data.lower()
        assert b"customer" not in text and b"cancel" not in text


def test_write_landing_uses_the_landing_layout(tmp_path: Path) -> None:
    spec = DemandSpec(days=2)
    uris = write_landing(spec, str(tmp_path))
    expected = [
        tmp_path / source / day / f"{source}_{day}.csv"
        for day in ("2026-01-01", "2026-01-02")
        for source in ("stores", "products", "sales")
    ]
    assert [Path(uri) for uri in uris] == expected
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(expected)
    for (_, _, data), path in zip(generate(spec), expected, strict=True):
        assert path.read_bytes() == data


def test_main_writes_to_the_landing_from_flag_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--landing", str(tmp_path / "flag"), "--stores", "3", "--products", "5", "--days", "2"]) == 0
    assert len(list((tmp_path / "flag").rglob("*.csv"))) == 6
    assert frame((tmp_path / "flag" / "stores" / "2026-01-02" / "stores_2026-01-02.csv").read_bytes()).shape[0] == 3
    monkeypatch.setenv("NIGHTSHIFT_LANDING_URI", str(tmp_path / "env"))
    assert main(["--days", "1", "--bad-rate", "duplicate_key=0.1", "--broken-day", "2026-01-01"]) == 0
    assert len(list((tmp_path / "env").rglob("*.csv"))) == 3
    monkeypatch.delenv("NIGHTSHIFT_LANDING_URI")
    with pytest.raises(SystemExit):
        main(["--days", "1"])
    with pytest.raises(SystemExit):
        main(["--landing", str(tmp_path), "--bad-rate", "typo=0.1"])


def test_import_does_not_load_pandas() -> None:
    code = "import sys, nightshift.demo.demand_data; sys.exit('pandas' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "plugins")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
