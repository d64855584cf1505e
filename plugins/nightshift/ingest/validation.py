"""Validate one landed batch with its GX suite and split it row by row.

The suite file in ``expectations/<source>.json`` is the single source of truth. Its
expectations fall into two kinds, by their GX class:

* **batch rules** (table-level expectations such as the required column set and the row
  count, plus "each file is readable CSV text", "each file has every required column, no
  duplicate or reserved header name and no row with more or fewer fields than its header",
  "some value of each column is readable as its type" and "at most ``meta.max_quarantined_share``
  of the rows are quarantined", 20 % unless the suite says otherwise). One failure rejects the
  whole batch: :class:`BatchRejected` says which file broke which rule and what to do.
  Nothing is written.
* **row rules** (column map expectations: nulls, ranges, allowed values, uniqueness, the
  event-time window). Each row that breaks one or more goes to quarantine with the names
  of the rules it broke; the others are accepted.

``expect_column_values_to_be_of_type`` declares a column's type. GX cannot see a value
that was never readable as that type, so Nightshift applies those rules itself while it
reads the text (a value that is not readable fails that expectation for its row). Integers
are read exactly (never through a float), and one that does not fit int64 is unreadable;
``datetime64[ns]`` needs a time of day (a bare date is unreadable: declare ``date`` for a
column of calendar dates, loaded as midnight). GX
evaluates everything else, with the COMPLETE result format so that every failing row is
listed; the split then covers every row, and ``accepted + quarantined == landed`` is
checked before anything is returned.

This module never writes anything and never touches the landed files.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Types a suite may declare with ``expect_column_values_to_be_of_type``. ``date`` is a calendar
#: date (``YYYY-MM-DD``), loaded as ``datetime64[ns]`` at midnight.
SUPPORTED_TYPES = ("int64", "float64", "datetime64[ns]", "date", "str")
TYPE_RULE = "expect_column_values_to_be_of_type"
COLUMN_SET_RULE = "expect_table_columns_to_match_set"
ROW_NUMBER = "source_row_number"
SOURCE_FILE = "source_file"
REASONS = "quarantine_reasons"
#: Columns Nightshift adds to every batch; a landed header may not use these names.
RESERVED_COLUMNS = (SOURCE_FILE, ROW_NUMBER)
#: The share of a batch's rows that may be quarantined unless the suite sets ``meta.max_quarantined_share``.
DEFAULT_MAX_QUARANTINED_SHARE = 0.2
#: GX's vectorized checks see integers as float64, which is exact only up to this magnitude.
_FLOAT_EXACT = 2**53
#: Leading bytes of files that are not CSV text: what the file is, and what to do instead.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip) and land the CSV it holds"),
    (b"PAR1", "a Parquet file", "export the data as CSV (UTF-8) instead"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel .xlsx workbook)", "unzip it, or save the sheet as CSV (UTF-8)"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook", "save the sheet as CSV (UTF-8)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it and land the CSV it holds"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it and land the CSV it holds"),
    (b"\xff\xfe\x00\x00", "UTF-32 text", "re-export it as UTF-8"),
    (b"\x00\x00\xfe\xff", "UTF-32 text", "re-export it as UTF-8"),
    (b"\xff\xfe", "UTF-16 text (little-endian, with a byte-order mark)", "re-export it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text (big-endian, with a byte-order mark)", "re-export it as UTF-8"),
)
_MAGIC_PREFIXES = tuple(magic for magic, _, _ in _MAGIC)


#: Rows read and validated at a time by :func:`validate_files`. GX's working memory follows it;
#: measured on a 5M-row batch: 50,000 a chunk, 1.48 GB peak in 42.5 s; 100,000, 1.65 GB in 37.5 s;
#: 250,000, 2.1 GB in 34 s.
CHUNK_ROWS = 50_000
#: Batches up to this size are validated in one chunk: one pass, as fast as a whole batch, and
#: well within memory (a 1M-row activity batch is 60 MB and peaks near 1.1 GB).
WHOLE_BATCH_BYTES = 96 * 2**20
#: Batch rules that read only the batch's shape (row count, columns): checkable without its values.
SHAPE_RULES = frozenset({
    "expect_table_row_count_to_be_between", "expect_table_row_count_to_equal",
    "expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_be_between", "expect_table_column_count_to_equal", "expect_column_to_exist",
})
#: Row rules whose verdict on a row reads that row alone: run chunk by chunk.
ROW_LOCAL_RULES = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
    "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex", "expect_column_values_to_match_regex_list",
    "expect_column_values_to_not_match_regex_list", "expect_column_values_to_match_like_pattern",
    "expect_column_values_to_not_match_like_pattern", "expect_column_values_to_match_strftime_format",
    "expect_column_values_to_be_dateutil_parseable", "expect_column_values_to_be_json_parseable",
    "expect_column_value_lengths_to_be_between", "expect_column_value_lengths_to_equal",
    "expect_column_values_to_be_in_type_list", "expect_column_pair_values_to_be_equal",
    "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_pair_values_to_be_in_set",
    "expect_select_column_values_to_be_unique_within_record", "expect_multicolumn_sum_to_equal",
})
#: Row rules whose verdict on a row depends on other rows: run once over the whole batch's columns.
#: A suite with any other row rule (increasing values, z-scores) is read whole.
CROSS_ROW_RULES = frozenset({
    "expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
    "expect_multicolumn_values_to_be_unique",
})


class BatchRejected(Exception):
    """The batch as a whole breaks a batch rule; nothing of it may be written."""


@dataclass(frozen=True)
class Suite:
    """A GX expectation suite file, split into what Nightshift needs to apply it."""

    name: str
    version: str
    sha256: str
    path: Path
    column_types: dict[str, str]
    allowed_lateness: timedelta
    definition: dict[str, Any] = field(repr=False)
    #: The largest share of a batch's rows that may be quarantined; above it the batch fails.
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE

    @classmethod
    def load(cls, path: Path) -> Suite:
        """Read a suite file; a malformed file fails here, naming the file and the fix."""
        try:
            text = path.read_text()
            definition = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"expectation suite {path} cannot be read: {exc}") from exc
        column_types: dict[str, str] = {}
        for exp in definition.get("expectations", []):
            if exp.get("type") == TYPE_RULE:
                kwargs = exp.get("kwargs", {})
                if kwargs.get("type_") not in SUPPORTED_TYPES:
                    raise ValueError(
                        f"{path}: {TYPE_RULE}(column={kwargs.get('column')!r}) declares type "
                        f"{kwargs.get('type_')!r}; use one of {list(SUPPORTED_TYPES)}"
                    )
                column_types[kwargs["column"]] = kwargs["type_"]
        if not column_types:
            raise ValueError(f"{path}: declare each column's type with {TYPE_RULE}; none found")
        reserved = sorted(set(column_types) & set(RESERVED_COLUMNS))
        if reserved:
            raise ValueError(
                f"{path}: column(s) {reserved} are added by Nightshift to every batch; rename them in the suite"
            )
        meta = definition.get("meta", {})
        share = meta.get("max_quarantined_share", DEFAULT_MAX_QUARANTINED_SHARE)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(
                f"{path}: meta.max_quarantined_share is {share!r}; give a fraction between 0 and 1 "
                f"(default {DEFAULT_MAX_QUARANTINED_SHARE})"
            )
        return cls(
            name=definition["name"],
            version=str(meta.get("version", "0")),
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            path=path,
            column_types=column_types,
            allowed_lateness=timedelta(hours=float(meta.get("allowed_lateness_hours", 0))),
            definition=definition,
            max_quarantined_share=float(share),
        )

    @property
    def required_columns(self) -> list[str]:
        """Columns every file must have: the typed ones and those of a ``expect_table_columns_to_match_set``."""
        required = list(self.column_types)
        for exp in self.definition.get("expectations", []):
            if exp.get("type") == COLUMN_SET_RULE:
                required += [c for c in exp.get("kwargs", {}).get("column_set") or [] if c not in required]
        return required


@dataclass
class ValidationOutcome:
    """Where every landed row of one batch went, and why."""

    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    landed_rows: int
    reason_counts: dict[str, int]
    extra_columns: list[str]

    def check_invariant(self, where: str) -> None:
        """Fail loudly if any row was lost or counted twice."""
        if len(self.accepted) + len(self.quarantined) != self.landed_rows:
            raise AssertionError(
                f"{where}: accepted ({len(self.accepted)}) + quarantined ({len(self.quarantined)}) "
                f"!= landed ({self.landed_rows}); refusing to write a batch that loses rows"
            )


def suite_parameters(suite: Suite, day: date, now: datetime) -> dict[str, Any]:
    """Values for the ``$PARAMETER`` placeholders a suite may use, for batch day ``day``.

    ``earliest_event_time`` / ``latest_event_time`` bound event times to day D widened by
    the suite's allowed lateness, and never later than ``now`` (nothing from the future).
    """
    import pandas as pd

    start = pd.Timestamp(day)
    end = start + pd.Timedelta(days=1)
    now_ts = pd.Timestamp(now).tz_localize(None) if pd.Timestamp(now).tzinfo else pd.Timestamp(now)
    return {
        "batch_day": start,
        "batch_day_end": end,
        "earliest_event_time": start - suite.allowed_lateness,
        "latest_event_time": min(end + suite.allowed_lateness, now_ts),
    }


def read_batch(files: list[tuple[str, bytes]], suite: Suite) -> pd.DataFrame:
    """Parse the batch's CSV files as text (no value is converted yet), checking each file on its own.

    Adds ``source_file`` and ``source_row_number`` (1-based data row in that file). An
    empty file (no bytes, or a header only) is an empty batch; whether that is acceptable
    is the suite's row-count rule's call.

    Raises:
        BatchRejected: a file is not UTF-8 CSV text (gzip, Parquet, UTF-16… are named as such),
            lacks a required column, repeats a header name or uses a reserved one, or has a row
            with more or fewer fields than its header.
    """
    import pandas as pd

    if not files:
        raise BatchRejected("the batch has no files")
    check_files(files, suite)
    frames = [frame for name, data in files for frame in _file_chunks(name, data, suite, None)]
    batch = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return batch.reset_index(drop=True)


def check_files(files: list[tuple[str, bytes]], suite: Suite) -> None:
    """Each file's own checks (encoding, header, ragged rows), before any row is parsed.

    Raises:
        BatchRejected: as :func:`read_batch`.
    """
    for name, data in files:
        _check_text(name, data)
        if _is_blank(data):
            continue
        # The whole text only for the csv module (quoted fields); else the header line's.
        text = data.decode("utf-8-sig") if _needs_csv_module(data) else _first_line(data)
        try:
            header = _header(text)
            _check_field_counts(name, data, text, len(header))
        except csv.Error as exc:
            raise BatchRejected(f"file {name!r} is not a readable CSV: {_one_line(exc)}") from exc
        _check_header(name, header, suite)


def _is_blank(data: bytes) -> bool:
    """Whether the file's text is whitespace only (``text.strip() == ""``), without decoding all of it."""
    body = data[3:] if data.startswith(_BOM) else data
    found = _NOT_ASCII_SPACE.search(body)
    if found is None:
        return True
    if body[found.start()] < 0x80:
        return False
    return not body.decode("utf-8").strip()  # non-ASCII: Unicode decides what is a space


def _first_line(data: bytes) -> str:
    """The text up to the end of the first non-empty line (what the csv module reads the header from)."""
    at = 3 if data.startswith(_BOM) else 0
    while True:
        end = data.find(b"\n", at)
        if end < 0 or data[at:end].strip(b"\r"):
            break
        at = end + 1
    return data[: len(data) if end < 0 else end + 1].decode("utf-8-sig")


def _file_chunks(name: str, data: bytes, suite: Suite, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """A checked file's rows as text frames of at most ``chunk_rows`` rows (all of them with None).

    An empty file is one empty frame with the suite's columns.
    """
    import pandas as pd

    if _is_blank(data):
        frame = pd.DataFrame({c: pd.Series(dtype="string") for c in suite.column_types})
        frame[SOURCE_FILE] = name
        frame[ROW_NUMBER] = range(0)
        yield frame
        return
    try:
        # From the bytes (checked as UTF-8), into Arrow-backed strings: a StringIO would copy the
        # text at four bytes a character, and Python str objects cost about 60 bytes a value.
        reader = pd.read_csv(
            io.BytesIO(data), dtype="string[pyarrow]", keep_default_na=False, na_values=[""],
            on_bad_lines="error", index_col=False, encoding="utf-8-sig", chunksize=chunk_rows,
        )
        frames = [reader] if chunk_rows is None else reader
        first = 1
        for frame in frames:
            frame[SOURCE_FILE] = name
            frame[ROW_NUMBER] = range(first, first + len(frame))
            first += len(frame)
            yield frame
    except (pd.errors.ParserError, ValueError) as exc:
        raise BatchRejected(f"file {name!r} is not a readable CSV: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, without the trailing newline some parsers leave."""
    return " ".join(str(exc).split())


def _check_text(name: str, data: bytes) -> None:
    """:func:`_decode`'s checks, decoding block by block: the text of a large file is never held whole."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        for at in range(0, len(data), _SCAN_BLOCK):
            decoder.decode(data[at : at + _SCAN_BLOCK])
        decoder.decode(b"", final=True)
        if not data.startswith(_MAGIC_PREFIXES) and b"\x00" not in data:
            return
    except UnicodeDecodeError:
        pass
    _decode(name, data)  # the same refusal, worded as for a whole file


def _decode(name: str, data: bytes) -> str:
    """The file as text, or BatchRejected naming what the file is when it is not UTF-8 text."""
    where = f"file {name!r}"
    for magic, what, fix in _MAGIC:
        if data.startswith(magic):
            raise BatchRejected(f"{where} is {what}, not CSV text (it starts with bytes {data[:4]!r}): {fix}")
    if b"\x00" in data:
        head = data[:4096]
        for parity, order in ((1, "little-endian"), (0, "big-endian")):
            if len(head) >= 4 and head[parity::2].count(0) >= 0.9 * len(head[parity::2]):
                raise BatchRejected(
                    f"{where} is UTF-16 text ({order}, without a byte-order mark), not UTF-8 CSV: re-export it as UTF-8"
                )
        raise BatchRejected(f"{where} is not a readable CSV: it contains NUL bytes (binary or corrupt content)")
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte-order mark is not part of the first column's name
    except UnicodeDecodeError as exc:
        raise BatchRejected(
            f"{where} is not readable as UTF-8 text (byte {exc.start}: {exc.reason}); re-export it as UTF-8"
        ) from exc


def _header(text: str) -> list[str]:
    """The names on the first non-blank line, as a CSV reader splits them."""
    return next((row for row in csv.reader(_lines(text)) if row), [])


def _lines(text: str) -> Iterator[str]:
    """``text`` line by line, ends kept, split as a file opened with ``newline=""`` is (LF, CRLF or a bare CR).

    Lazily: ``io.StringIO(text)`` would copy the whole file into a buffer of four bytes per character.
    """
    start, size = 0, len(text)
    while start < size:
        lf = text.find("\n", start)
        cr = text.find("\r", start, size if lf < 0 else lf)
        if cr >= 0:
            end = cr + 2 if text.startswith("\n", cr + 1) else cr + 1
        else:
            end = size if lf < 0 else lf + 1
        yield text[start:end]
        start = end


def _check_header(name: str, header: list[str], suite: Suite) -> None:
    """Refuse a header that repeats a name, uses a reserved one or lacks a required column."""
    where = f"file {name!r}"
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise BatchRejected(
            f"{where} repeats header name(s) {repeated}: which column holds the values is ambiguous. "
            "Re-export the file with one column per name"
        )
    reserved = sorted(set(header) & set(RESERVED_COLUMNS))
    if reserved:
        raise BatchRejected(
            f"{where} has header name(s) {reserved}, which Nightshift adds to every row itself; "
            "rename or drop those columns in the export"
        )
    missing = [c for c in suite.required_columns if c not in header]
    if missing:
        raise BatchRejected(
            f"{COLUMN_SET_RULE} failed for {where}: missing required column(s) {missing} of suite {suite.name!r}; "
            f"its header is {header}. Its rows were not loaded (nor quarantined as nulls): re-export the file "
            "with every column, or remove it from the day folder"
        )


def _check_field_counts(name: str, data: bytes, text: str, expected: int) -> None:
    """Refuse a row with more or fewer fields than the header (pandas would pad or shift it silently)."""
    found = _first_ragged_row(data, text, expected)
    if found:
        line, fields = found
        kind = "fewer" if fields < expected else "more"
        raise BatchRejected(
            f"file {name!r} is not a readable CSV: it is ragged, line {line} has {fields} field(s), {kind} than the "
            f"{expected} of its header (a truncated or mis-delimited export). Re-export the file whole"
        )


def _needs_csv_module(data: bytes) -> bool:
    """Quoted fields may hold delimiters and line breaks, and a file may end lines with a bare CR."""
    return b'"' in data or b"\n" not in data


def _first_ragged_row(data: bytes, text: str, expected: int) -> tuple[int, int] | None:
    """(line number, field count) of the first non-blank row after the header whose count differs.

    ``text`` is read only when :func:`_needs_csv_module`; a NumPy scan of ``data`` does the rest.
    """
    if _needs_csv_module(data):
        # Quoted fields may hold delimiters and line breaks, and a file may end lines with a
        # bare CR: the csv module knows both. Its line_num is the physical line a row ends on.
        reader = csv.reader(_lines(text))
        rows = (row for row in reader if row)
        next(rows, None)
        for row in rows:
            if len(row) != expected:
                return reader.line_num, len(row)
        return None
    import numpy as np

    # Block by block: one comparison over the whole file would cost a byte per byte, and the comma
    # positions eight bytes per field (about 1 GB at 5M rows).
    raw = np.frombuffer(data, dtype=np.uint8, offset=3 if data.startswith(b"\xef\xbb\xbf") else 0)
    blocks = range(0, len(raw), _SCAN_BLOCK)
    breaks = np.concatenate(
        [np.flatnonzero(raw[at : at + _SCAN_BLOCK] == 10) + at for at in blocks] or [np.zeros(0, dtype=np.int64)]
    )
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(raw)]])
    lengths = ends - starts
    ends_with_cr = np.zeros(len(starts), dtype=bool)
    has_chars = lengths > 0
    ends_with_cr[has_chars] = raw[ends[has_chars] - 1] == 13
    blank = (lengths - ends_with_cr) == 0
    fields = np.ones(len(starts), dtype=np.int64)
    for at in blocks:
        commas = np.flatnonzero(raw[at : at + _SCAN_BLOCK] == 44) + at
        fields += np.bincount(np.searchsorted(breaks, commas), minlength=len(starts))
    lines = np.flatnonzero(~blank)
    bad = lines[1:][fields[lines[1:]] != expected]
    return (int(bad[0]) + 1, int(fields[bad[0]])) if len(bad) else None


_SCAN_BLOCK = 1 << 24
_BOM = b"\xef\xbb\xbf"
# str.isspace() in the ASCII range: what str.strip() removes there
_NOT_ASCII_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c\x1c-\x1f]")


def validate_batch(suite: Suite, batch: pd.DataFrame, day: date, now: datetime) -> ValidationOutcome:
    """Apply ``suite`` to a batch read by :func:`read_batch` and split its rows.

    The cap on the quarantined share is a rule on the split, so it is checked on the returned
    outcome by :func:`check_quarantined_share` (the loader applies both before writing).

    Raises:
        BatchRejected: a batch rule failed; the message names the rule and what was seen.
    """
    return _validate_chunks(suite, lambda: iter([batch]), day, now)


def validate_files(
    suite: Suite, files: list[tuple[str, bytes]], day: date, now: datetime, chunk_rows: int | None = None,
    consume: bool = False,
) -> ValidationOutcome:
    """:func:`validate_batch` of :func:`read_batch`, reading and validating ``chunk_rows`` rows at a time.

    Same outcome, same errors, in bounded memory. Every rule still sees the whole batch: the
    batch rules see its shape (row count, columns), a uniqueness rule sees the column of every
    row, the quarantine cap sees every row's outcome. Rows are parsed twice when the batch has
    more than one chunk: first to find every failing row, then to split them. A suite with a
    batch rule that reads values (a mean, say) is read whole.

    Args:
        chunk_rows: rows a chunk; by default the whole batch when its files hold at most
            ``WHOLE_BATCH_BYTES`` (one pass, as fast as before), else ``CHUNK_ROWS``.
        consume: empty ``files`` once every row is read, so that the landed bytes (as large as
            the files) are freed before the accepted rows are put together.

    Raises:
        BatchRejected: as :func:`read_batch` and :func:`validate_batch`.
    """
    if not files:
        raise BatchRejected("the batch has no files")
    batch_rules, row_rules = _split_rules(suite)
    unchunkable = [rule.expectation_type for rule in batch_rules if rule.expectation_type not in SHAPE_RULES]
    unchunkable += [rule.expectation_type for rule in row_rules
                    if rule.expectation_type not in ROW_LOCAL_RULES | CROSS_ROW_RULES]
    if unchunkable:
        log.info("suite %s: %s read(s) more than one row or the batch's values: the batch is read whole",
                 suite.name, sorted(set(unchunkable)))
        return validate_batch(suite, read_batch(files, suite), day, now)
    check_files(files, suite)
    if chunk_rows is None:
        small = sum(len(data) for _, data in files) <= WHOLE_BATCH_BYTES
        chunk_rows = None if small else CHUNK_ROWS

    def chunks() -> Iterator[pd.DataFrame]:
        import pandas as pd

        offset = 0
        for name, data in files:
            for frame in _file_chunks(name, data, suite, chunk_rows):
                frame.index = pd.RangeIndex(offset, offset + len(frame))
                offset += len(frame)
                yield frame

    return _validate_chunks(suite, chunks, day, now, release=files.clear if consume else None)


@dataclass
class _ColumnSeen:
    """What the type rule saw of one column over the whole batch: present values, unreadable ones, the first."""

    present: int = 0
    bad: int = 0
    first: Any = None


def _validate_chunks(
    suite: Suite, chunks: Callable[[], Iterator[pd.DataFrame]], day: date, now: datetime,
    release: Callable[[], None] | None = None,
) -> ValidationOutcome:
    """Validate the batch that ``chunks()`` yields (text frames indexed by row position in the batch).

    First pass: every rule's failing rows, chunk by chunk (uniqueness over the batch's columns
    at the end). Then the batch-level checks, in the order a whole batch meets them. Second
    pass: the split, reading the chunks again (one chunk is kept from the first pass).
    """
    import numpy as np
    import pandas as pd

    batch_rules, row_rules = _split_rules(suite)
    local_rules = [rule for rule in row_rules if rule.expectation_type not in CROSS_ROW_RULES]
    cross_rules = [rule for rule in row_rules if rule.expectation_type in CROSS_ROW_RULES]
    cross_columns = list(dict.fromkeys(c for rule in cross_rules for c in _rule_columns(rule)))
    parameters = suite_parameters(suite, day, now)

    landed, count = 0, 0
    columns: dict[str, None] = {}
    seen = {col: _ColumnSeen() for col in suite.column_types}
    failed: dict[str, list[Any]] = {}
    cross_parts: list[pd.DataFrame] = []
    cross_hashes: dict[int, list[Any]] = {}  # per uniqueness rule, each chunk's row hashes
    kept: tuple[pd.DataFrame, pd.DataFrame] | None = None
    unevaluable: BatchRejected | None = None  # raised after the batch-level checks, as a whole batch meets it
    for chunk in chunks():
        count += 1
        landed += len(chunk)
        columns.update(dict.fromkeys(chunk.columns))
        chunk = _with_declared_columns(suite, chunk)
        typed, type_failures = _coerce(suite, chunk)
        for col in suite.column_types:
            present = chunk[col].notna().to_numpy()
            column_seen = seen[col]
            if column_seen.first is None and present.any():
                column_seen.first = chunk[col][present].iloc[0]
            column_seen.present += int(present.sum())
            column_seen.bad += int(type_failures[f"{TYPE_RULE}({col})"].sum())
        chunk_failed = {name: chunk.index.to_numpy()[mask] for name, mask in type_failures.items() if mask.any()}
        if len(chunk) and local_rules and unevaluable is None:
            try:
                unexpected = _run_row_rules(suite, local_rules, typed, parameters)
            except BatchRejected as exc:
                unevaluable, unexpected = exc, {}
            for name, rows in unexpected.items():
                chunk_failed[name] = np.union1d(chunk_failed.get(name, []), np.asarray(rows, dtype=np.int64))
        # A value that was present but unreadable already failed its type rule; not-null must not
        # count it again as missing.
        for col in suite.column_types:
            key, typ = f"expect_column_values_to_not_be_null({col})", f"{TYPE_RULE}({col})"
            if key in chunk_failed and typ in chunk_failed:
                chunk_failed[key] = np.setdiff1d(chunk_failed[key], chunk_failed[typ])
        for name, rows in chunk_failed.items():
            if len(rows):
                failed.setdefault(name, []).append(np.asarray(rows, dtype=np.int64))
        if cross_rules:
            cross_parts.append(typed[[c for c in cross_columns if c in typed.columns]])
            for number, rule in enumerate(cross_rules):
                present = [c for c in _rule_columns(rule) if c in typed.columns]
                if present:
                    cross_hashes.setdefault(number, []).append(_key_hashes(typed, present))
        kept = (chunk, typed) if count == 1 else None

    extra = [c for c in columns if c not in suite.column_types and c not in (SOURCE_FILE, ROW_NUMBER)]
    if extra:
        log.warning("suite %s: extra column(s) %s are accepted and not loaded", suite.name, extra)
    shape = kept[0] if kept is not None else _shape_frame(list(columns), landed)
    _check_batch_rules(suite, batch_rules, shape, parameters)
    missing = [c for c in suite.column_types if c not in columns]
    if missing:
        raise BatchRejected(
            f"column(s) {missing} declared by {TYPE_RULE} in suite {suite.name!r} are missing from the batch"
        )
    for col, typ in suite.column_types.items():
        _refuse_unreadable_column(col, typ, seen[col])
    if unevaluable is not None:
        raise unevaluable
    if cross_rules and landed:
        narrow = pd.concat(cross_parts) if len(cross_parts) > 1 else cross_parts[0]
        cross_parts.clear()
        # Only rows whose value occurs more than once can break a uniqueness rule: GX judges those
        # (it needs about 200 bytes a row; the whole column of a 5M-row batch cost 1 GB). They are
        # found by 64-bit hashes taken chunk by chunk: a collision only adds a row for GX to clear.
        candidates = _false(len(narrow))
        for parts in cross_hashes.values():
            candidates |= _repeated(np.concatenate(parts))
        cross_hashes.clear()
        for name, rows in _run_row_rules(suite, cross_rules, narrow[candidates], parameters).items():
            failed.setdefault(name, []).append(np.asarray(rows, dtype=np.int64))
        del narrow
    positions = {name: np.unique(np.concatenate(parts)) for name, parts in failed.items()}

    outcomes = []
    for chunk, typed in ([kept] if kept is not None else _typed_chunks(suite, chunks)):
        first, stop = chunk.index[0] if len(chunk) else 0, (chunk.index[-1] + 1) if len(chunk) else 0
        masks = {}
        for name, rows in positions.items():
            inside = rows[(rows >= first) & (rows < stop)] - first
            if len(inside):
                masks[name] = _indices_to_mask(inside.tolist(), len(chunk))
        outcomes.append(split_rows(suite, chunk, typed, masks, extra))
    kept = None
    if release is not None:
        release()
    return _merged(outcomes, landed, extra, suite)


def _typed_chunks(suite: Suite, chunks: Callable[[], Iterator[pd.DataFrame]]) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    for chunk in chunks():
        chunk = _with_declared_columns(suite, chunk)
        yield chunk, _coerce(suite, chunk)[0]


def _merged(outcomes: list[ValidationOutcome], landed: int, extra: list[str], suite: Suite) -> ValidationOutcome:
    """One outcome of the chunks' outcomes, in row order."""
    import pandas as pd

    if len(outcomes) == 1:
        return outcomes[0]
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        counts.update(outcome.reason_counts)
    quarantined = pd.concat([o.quarantined for o in outcomes], ignore_index=True)
    accepted = [o.accepted for o in outcomes]
    outcomes.clear()
    merged = ValidationOutcome(
        accepted=_concat_in_place(accepted),
        quarantined=quarantined,
        landed_rows=landed,
        reason_counts=dict(sorted(counts.items())),
        extra_columns=extra,
    )
    merged.check_invariant(f"suite {suite.name!r}")
    return merged


def _concat_in_place(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames one under the other, emptying ``frames``: about one copy of the rows at a time.

    ``pd.concat`` holds the parts and the result at once (twice the rows). Here each part becomes
    Arrow as it is let go, and Arrow hands each column back to pandas freeing its own copy
    (``self_destruct``); the dtypes are the parts'.
    """
    import pandas as pd
    import pyarrow as pa

    dtypes = frames[0].dtypes
    tables = []
    while frames:
        tables.append(pa.Table.from_pandas(frames.pop(0), preserve_index=False))
    table = pa.concat_tables(tables)
    del tables
    nullable = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype("pyarrow"),
                pa.large_string(): pd.StringDtype("pyarrow")}
    out = table.to_pandas(self_destruct=True, split_blocks=True, types_mapper=nullable.get)
    del table
    differing = {c: t for c, t in dtypes.items() if out[c].dtype != t}
    return out.astype(differing) if differing else out


def _with_declared_columns(suite: Suite, chunk: pd.DataFrame) -> pd.DataFrame:
    """The chunk with every declared column: one its file lacks is null in its rows, as in a whole batch."""
    import pandas as pd

    missing = [c for c in suite.column_types if c not in chunk.columns]
    if not missing:
        return chunk
    return chunk.assign(**{c: pd.Series(pd.NA, index=chunk.index, dtype="string[pyarrow]") for c in missing})


def _shape_frame(columns: list[str], rows: int) -> pd.DataFrame:
    """A frame with the batch's columns and row count, one byte a cell: what the shape rules read."""
    import numpy as np
    import pandas as pd

    codes = np.zeros(rows, dtype=np.int8)
    data = {c: pd.Categorical.from_codes(codes, categories=[""]) for c in columns if c not in (SOURCE_FILE, ROW_NUMBER)}
    return pd.DataFrame(data, index=pd.RangeIndex(rows)).assign(**{SOURCE_FILE: "", ROW_NUMBER: 0})


def _key_hashes(typed: pd.DataFrame, columns: list[str]) -> Any:
    """A 64-bit hash of each row's values in ``columns`` (equal values, equal hashes; a null hashes as a null)."""
    import pandas as pd

    keys = typed[columns]
    floats = [c for c in columns if keys[c].dtype.kind == "f"]
    if floats:  # -0.0 equals 0.0 for a uniqueness rule, but hashes apart
        keys = keys.assign(**{c: keys[c] + 0.0 for c in floats})
    return pd.util.hash_pandas_object(keys, index=False).to_numpy()


def _repeated(hashes: Any) -> Any:
    """Rows whose hash occurs more than once: every row of a duplicated value, and a few collisions."""
    import numpy as np

    order = np.argsort(hashes)
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    del ordered
    repeated = np.zeros(len(hashes), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    mask = np.empty(len(hashes), dtype=bool)
    mask[order] = repeated
    return mask


def _rule_columns(rule: Any) -> list[str]:
    kwargs = rule.configuration.kwargs
    return [kwargs["column"]] if kwargs.get("column") else list(kwargs.get("column_list") or [])


def _refuse_unreadable_column(col: str, typ: str, seen: _ColumnSeen) -> None:
    """A column none of whose present values is readable is a shifted or mis-exported column, not bad rows."""
    if seen.present and seen.bad == seen.present:
        hint = "the column is probably shifted or mis-exported"
        if typ == "datetime64[ns]" and _DATE_ONLY.fullmatch(str(seen.first)):
            hint = "these are dates without a time of day: declare the column 'date' in the suite if it holds dates"
        raise BatchRejected(
            f"{TYPE_RULE}({col}) failed: none of the {seen.present} values of column {col!r} "
            f"is readable as {typ} (first value: {seen.first!r}); {hint}"
        )


def split_rows(
    suite: Suite, batch: pd.DataFrame, typed: pd.DataFrame, failed: dict[str, Any], extra: list[str]
) -> ValidationOutcome:
    """Split a batch by per-rule failure masks: typed accepted rows, landed text for the rest.

    Args:
        batch: the landed text, as :func:`read_batch` returns it.
        typed: the same rows converted to the declared types.
        failed: rule name -> boolean mask of the rows breaking it.
        extra: undeclared columns (reported, not loaded).
    """
    import pandas as pd

    landed = len(batch)
    any_failed = _false(landed)
    for mask in failed.values():
        any_failed |= mask
    reasons = pd.Series("", index=batch.index[any_failed], dtype=object)
    for name, mask in sorted(failed.items()):
        hit = mask[any_failed]
        reasons[hit] = reasons[hit] + name + "; "
    reasons = reasons.str.rstrip("; ")

    declared = list(suite.column_types)
    quarantined = batch.loc[any_failed, declared + [SOURCE_FILE, ROW_NUMBER]].astype({c: "string" for c in declared})
    quarantined[REASONS] = reasons.values
    outcome = ValidationOutcome(
        accepted=typed.loc[~any_failed, declared].reset_index(drop=True),
        quarantined=quarantined.reset_index(drop=True),
        landed_rows=landed,
        reason_counts={name: int(mask.sum()) for name, mask in sorted(failed.items())},
        extra_columns=extra,
    )
    outcome.check_invariant(f"suite {suite.name!r}")
    return outcome


def _false(n: int) -> Any:
    import numpy as np

    return np.zeros(n, dtype=bool)


def _indices_to_mask(indices: list[int], n: int) -> Any:
    import numpy as np

    mask = np.zeros(n, dtype=bool)
    if indices:
        mask[np.asarray(indices, dtype=np.int64)] = True
    return mask


def rule_name(expectation: Any) -> str:
    """A readable, stable name for an expectation: ``type(column)`` unless ``meta.name`` is set."""
    config = expectation.configuration if hasattr(expectation, "configuration") else expectation
    meta = config.meta or {}
    if meta.get("name"):
        return str(meta["name"])
    kwargs = config.kwargs
    target = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or ""
    if not target and "column_A" in kwargs:
        target = f"{kwargs['column_A']},{kwargs['column_B']}"
    return f"{config.type}({target})" if target else config.type


def _split_rules(suite: Suite) -> tuple[list[Any], list[Any]]:
    """GX expectations of the suite as (batch rules, row rules), type rules left out."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    gx_suite = _gx_suite(suite)
    batch_rules, row_rules = [], []
    for exp in gx_suite.expectations:
        if exp.expectation_type == TYPE_RULE:
            continue
        if isinstance(exp, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation):
            row_rules.append(exp)
        else:
            batch_rules.append(exp)
    return batch_rules, row_rules


def _gx_suite(suite: Suite) -> Any:
    _quiet_gx()
    import great_expectations as gx

    definition = {k: v for k, v in suite.definition.items() if k in ("name", "expectations", "meta", "notes")}
    return gx.ExpectationSuite(**definition)


def _quiet_gx() -> None:
    # GX phones home for analytics unless told not to; this machine has no network.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


#: One ephemeral GX context per process (its pandas datasource below), with one whole-dataframe
#: batch definition per suite. Making them costs GX three YAML dumps of its project config per
#: call: a fifth of the time of validating a small batch, paid two or three times per batch.
_GX_BATCH_DEFINITIONS: dict[str, Any] = {}
_GX_LOCK = threading.Lock()


@functools.cache
def _gx_datasource() -> Any:
    """The process's ephemeral GX context's pandas datasource."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("landing")


def _batch_definition(suite_name: str) -> Any:
    """The cached batch definition of ``suite_name``'s dataframe asset (call under ``_GX_LOCK``)."""
    if suite_name not in _GX_BATCH_DEFINITIONS:
        asset = _gx_datasource().add_dataframe_asset(suite_name)
        _GX_BATCH_DEFINITIONS[suite_name] = asset.add_batch_definition_whole_dataframe("batch")
    return _GX_BATCH_DEFINITIONS[suite_name]


def _validate(suite_name: str, expectations: list[Any], frame: pd.DataFrame, parameters: dict[str, Any]) -> Any:
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints the whole frame (twice per call) to build its own batch id; Nightshift
    # has its own batch id, and the hashing is half of GX's time on a 1M-row batch.
    pandas_execution_engine.HASH_THRESHOLD = 0
    gx_suite = gx.ExpectationSuite(name=suite_name, expectations=[e.configuration.to_json_dict() for e in expectations])
    with _GX_LOCK:
        definition = _batch_definition(suite_name)
        try:
            batch = definition.get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(gx_suite, result_format="COMPLETE", expectation_parameters=parameters)
        finally:  # the cached engine would keep the frame alive until the next call: bounded memory
            batches = definition.data_asset.datasource.get_execution_engine().batch_manager
            batches.reset_batch_cache()
            batches.batch_data_cache.clear()


def _raise_on_exception(suite: Suite, result: Any) -> None:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        raise BatchRejected(
            f"suite {suite.name!r}: {rule_name(result.expectation_config)} could not be evaluated: "
            f"{info.get('exception_message')}. Fix the suite file {suite.path} or the batch"
        )


def _check_batch_rules(suite: Suite, rules: list[Any], batch: pd.DataFrame, parameters: dict[str, Any]) -> None:
    if not rules:
        return
    frame = batch.drop(columns=[SOURCE_FILE, ROW_NUMBER])
    result = _validate(suite.name, rules, frame, parameters)
    for res in result.results:
        _raise_on_exception(suite, res)
        if not res.success:
            raise BatchRejected(f"{rule_name(res.expectation_config)} failed: {_describe(res, frame)}")


def _describe(result: Any, frame: pd.DataFrame) -> str:
    config = result.expectation_config
    observed = result.result.get("observed_value")
    if config.type == "expect_table_columns_to_match_set":
        missing = sorted(set(config.kwargs["column_set"]) - set(frame.columns))
        return f"missing required column(s) {missing}; the file has {sorted(frame.columns)}"
    if config.type == "expect_table_row_count_to_be_between":
        lo, hi = config.kwargs.get("min_value"), config.kwargs.get("max_value")
        return f"{observed} rows, expected between {lo} and {hi}"
    return f"observed {observed!r} against {dict(config.kwargs)}"


def _coerce(suite: Suite, batch: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Convert text to the declared types; returns the typed frame and per-rule failure masks."""
    import pandas as pd

    typed = pd.DataFrame(index=batch.index)
    failures: dict[str, Any] = {}
    for col, typ in suite.column_types.items():
        text = batch[col]
        present = text.notna().to_numpy()
        if typ == "str":
            values = text.astype("string[pyarrow]")  # Arrow-backed: a tenth of the memory of Python str
            bad = _false(len(batch))
        elif typ in ("datetime64[ns]", "date"):
            values, bad = _parse_datetimes(text, with_time=typ == "datetime64[ns]")
        elif typ == "int64":
            values, bad = _parse_int64(text)
        else:
            numbers = pd.to_numeric(text, errors="coerce")
            bad = present & numbers.isna().to_numpy()
            values = numbers.astype("float64")
        typed[col] = values
        failures[f"{TYPE_RULE}({col})"] = bad
    return typed, failures


_DATE_ONLY = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*", re.ASCII)
_INTEGER = re.compile(r"\s*([+-]?[0-9]+)(?:\.0*)?\s*")
_INT64_RANGE = range(-(2**63), 2**63)


def _parse_datetimes(text: pd.Series, with_time: bool) -> tuple[pd.Series, Any]:
    """ISO 8601 text as naive UTC ``datetime64[ns]``; the mask marks present values that are unreadable.

    With ``with_time`` a value must carry a time of day (``…T10:15``): a timestamp cut down to
    its date is unreadable rather than silently midnight. Without it a value must be a bare
    ``YYYY-MM-DD`` date.
    """
    import pandas as pd

    present = text.notna().to_numpy()
    if with_time:
        timed = text.str.contains(":", regex=False).fillna(False).to_numpy(dtype=bool)
        parsed = pd.to_datetime(text.where(timed), errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
    else:
        parsed = pd.to_datetime(text, errors="coerce", format="%Y-%m-%d")
    values = parsed.astype("datetime64[ns]")
    return values, present & values.isna().to_numpy()


def _parse_int64(text: pd.Series) -> tuple[pd.Series, Any]:
    """Integer text as exact ``Int64``, never through a float.

    The mask marks present values that are not an integer (``7`` and ``7.0`` are; ``7.5``,
    ``1e3`` and non-ASCII digits are not) or that do not fit int64.
    """
    import numpy as np
    import pandas as pd

    present = text.notna().to_numpy()
    strings = text.where(present, "").to_numpy(dtype=str)
    numbers = np.zeros(len(text), dtype=np.int64)
    readable = np.zeros(len(text), dtype=bool)
    try:
        ascii_text = strings.astype("S")
    except UnicodeEncodeError:  # some value is not ASCII: every value takes the exact path below
        ascii_text = None
    if ascii_text is not None:
        # The common case, vectorized: plain digits short enough that int64 always holds them.
        readable = np.strings.isdigit(ascii_text) & (np.strings.str_len(ascii_text) <= 18)
        numbers[readable] = ascii_text[readable].astype(np.int64)
    for i in np.flatnonzero(present & ~readable):
        match = _INTEGER.fullmatch(strings[i])
        if match and int(match.group(1)) in _INT64_RANGE:
            numbers[i], readable[i] = int(match.group(1)), True
    values = pd.Series(pd.arrays.IntegerArray(numbers, ~readable), index=text.index)
    return values, present & ~readable


def _run_row_rules(
    suite: Suite, rules: list[Any], typed: pd.DataFrame, parameters: dict[str, Any]
) -> dict[str, list[int]]:
    """Failing row positions for each row rule, taken from GX's COMPLETE result."""
    # GX vectorizes range checks only for numpy dtypes; nullable Int64 would go value by value.
    # float64 holds every value exactly up to 2**53 and keeps nulls as nulls; a column holding
    # a larger value stays Int64 (slower, but 2**53 + 1 must not compare equal to 2**53).
    ints = [
        c for c in typed.columns
        if str(typed[c].dtype) == "Int64" and not ((typed[c] > _FLOAT_EXACT) | (typed[c] < -_FLOAT_EXACT)).any()
    ]
    result = _validate(suite.name, rules, typed.astype({c: "float64" for c in ints}), parameters)
    unexpected: dict[str, list[int]] = {}
    for res in result.results:
        _raise_on_exception(suite, res)
        name = rule_name(res.expectation_config)
        rows = list(res.result.get("unexpected_index_list") or [])
        count = res.result.get("unexpected_count") or 0
        if len(rows) != count:
            raise AssertionError(
                f"suite {suite.name!r}: GX listed {len(rows)} of {count} failing rows for {name}; "
                "refusing to split a batch on a truncated list"
            )
        if rows:
            unexpected[name] = rows
    return unexpected


def check_quarantined_share(suite: Suite, outcome: ValidationOutcome) -> None:
    """The batch rule on the split itself: refuse a batch whose quarantined share exceeds the suite's limit.

    A day that is mostly bad is rarely bad data: it is a file landed in the wrong day's folder
    (every event time out of the window) or landed twice (every key a duplicate). Loading the
    few survivors would empty the day's partition while the run looks green.

    Raises:
        BatchRejected: naming the share, the limit and where it is set, and the top reasons.
    """
    landed, quarantined = outcome.landed_rows, len(outcome.quarantined)
    if not landed or quarantined / landed <= suite.max_quarantined_share:
        return
    top = sorted(outcome.reason_counts.items(), key=lambda item: (-item[1], item[0]))[:3]
    reasons = ", ".join(f"{name} ({count} row{'' if count == 1 else 's'})" for name, count in top)
    raise BatchRejected(
        f"{quarantined} of {landed} rows ({quarantined / landed:.1%}) break a row rule, over the limit of "
        f"{suite.max_quarantined_share:.0%} (meta.max_quarantined_share of suite {suite.name!r}, {suite.path}); "
        f"top reasons: {reasons}. A batch this bad is usually a file landed in the wrong day's folder or landed "
        "twice, or a broken export: check the day folder's files; if the rows really are this bad, raise the limit"
    )


def reason_counts_json(counts: dict[str, int]) -> str:
    """Reason counts as compact, sorted JSON for the validation summary."""
    return json.dumps(dict(sorted(Counter(counts).items())), separators=(",", ":"))
