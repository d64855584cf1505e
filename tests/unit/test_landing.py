"""The local landing zone: layout, atomic writes, listing, deterministic batch ids."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nightshift.landing import Landing, batch_id

DAY = date(2026, 1, 3)


def test_layout_and_listing_in_name_order(tmp_path: Path) -> None:
    landing = Landing(str(tmp_path))
    landing.write_bytes("activity", DAY, "b.csv", b"2")
    landing.write_bytes("activity", DAY, "a.csv", b"1")
    (tmp_path / "activity" / DAY.isoformat() / ".partial-upload").write_bytes(b"x")
    files = landing.list_batch("activity", DAY)
    assert [f.name for f in files] == ["a.csv", "b.csv"], "hidden files are in-flight uploads and not listed"
    assert [landing.read_bytes(f) for f in files] == [b"1", b"2"]
    assert landing.batch_location("activity", DAY) == f"{tmp_path}/activity/2026-01-03/"
    assert landing.list_batch("activity", date(2026, 1, 4)) == []


def test_batch_id_depends_on_content_only() -> None:
    one = batch_id("activity", DAY, [("a.csv", b"x")])
    assert one == batch_id("activity", DAY, [("a.csv", b"x")])
    assert one != batch_id("activity", DAY, [("a.csv", b"y")])
    assert one.startswith("activity-2026-01-03-")


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="use a local path or s3://"):
        Landing("ftp://host/landing")
