"""Validate one landed batch with its GX suite and split it row by row.

The suite file in ``expectations/<source>.json`` is the single source of truth. Its
expectations fall into two kinds, by their GX class:

* **batch rules** (table-level expectations such as the required column set and the row
  count, plus "the file is readable" and "some value of each column is readable as its
  type"). One failure rejects the whole batch: :class:`BatchRejected` says which file broke
  which rule and what to do. Nothing is written.
* **row rules** (column map expectations: nulls, ranges, allowed values, uniqueness, the
  event-time window). Each row that breaks one or more goes to quarantine with the names
  of the rules it broke; the others are accepted.

``expect_column_values_to_be_of_type`` declares a column's type. GX cannot see a value
that was never readable as that type, so Nightshift applies those rules itself while it
reads the text (a value that is not readable fails that expectation for its row). GX
evaluates everything else, with the COMPLETE result format so that every failing row is
listed; the split then covers every row, and ``accepted + quarantined == landed`` is
checked before anything is returned.

This module never writes anything and never touches the landed files.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Types a suite may declare with ``expect_column_values_to_be_of_type``.
SUPPORTED_TYPES = ("int64", "float64", "datetime64[ns]", "str")
TYPE_RULE = "expect_column_values_to_be_of_type"
ROW_NUMBER = "source_row_number"
SOURCE_FILE = "source_file"
REASONS = "quarantine_reasons"


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
        meta = definition.get("meta", {})
        return cls(
            name=definition["name"],
            version=str(meta.get("version", "0")),
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            path=path,
            column_types=column_types,
            allowed_lateness=timedelta(hours=float(meta.get("allowed_lateness_hours", 0))),
            definition=definition,
        )


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
    """Parse the batch's CSV files as text (no value is converted yet).

    Adds ``source_file`` and ``source_row_number`` (1-based data row in that file). An
    empty file (no bytes, or a header only) is an empty batch; whether that is acceptable
    is the suite's row-count rule's call.
    """
    import pandas as pd

    frames = []
    for name, data in files:
        where = f"file {name!r}"
        if b"\x00" in data:
            raise BatchRejected(f"{where} is not a readable CSV: it contains NUL bytes (binary or corrupt content)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BatchRejected(f"{where} is not readable as UTF-8 text (byte {exc.start}: {exc.reason})") from exc
        if not text.strip():
            frame = pd.DataFrame({c: pd.Series(dtype="string") for c in suite.column_types})
        else:
            try:
                frame = pd.read_csv(
                    io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""], on_bad_lines="error"
                )
            except (pd.errors.ParserError, ValueError) as exc:
                raise BatchRejected(f"{where} is not a readable CSV: {exc}") from exc
        frame[SOURCE_FILE] = name
        frame[ROW_NUMBER] = range(1, len(frame) + 1)
        frames.append(frame)
    if not frames:
        raise BatchRejected("the batch has no files")
    batch = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return batch.reset_index(drop=True)


def validate_batch(suite: Suite, batch: pd.DataFrame, day: date, now: datetime) -> ValidationOutcome:
    """Apply ``suite`` to a batch read by :func:`read_batch` and split its rows.

    Raises:
        BatchRejected: a batch rule failed; the message names the rule and what was seen.
    """

    landed = len(batch)
    extra = [c for c in batch.columns if c not in suite.column_types and c not in (SOURCE_FILE, ROW_NUMBER)]
    if extra:
        log.warning("suite %s: extra column(s) %s are accepted and not loaded", suite.name, extra)

    batch_rules, row_rules = _split_rules(suite)
    parameters = suite_parameters(suite, day, now)
    _check_batch_rules(suite, batch_rules, batch, parameters)

    missing = [c for c in suite.column_types if c not in batch.columns]
    if missing:
        raise BatchRejected(
            f"column(s) {missing} declared by {TYPE_RULE} in suite {suite.name!r} are missing from the batch"
        )
    typed, type_failures = _coerce(suite, batch)

    failed = {name: mask for name, mask in type_failures.items() if mask.any()}
    if landed and row_rules:
        for name, unexpected in _run_row_rules(suite, row_rules, typed, parameters).items():
            mask = failed.get(name, _false(landed)) | _indices_to_mask(unexpected, landed)
            failed[name] = mask
        # A value that was present but unreadable already failed its type rule; not-null
        # must not count it again as missing.
        for col, typ_mask in ((c, type_failures[f"{TYPE_RULE}({c})"]) for c in suite.column_types):
            key = f"expect_column_values_to_not_be_null({col})"
            if key in failed:
                failed[key] = failed[key] & ~typ_mask
                if not failed[key].any():
                    del failed[key]

    return split_rows(suite, batch, typed, failed, extra)


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


def _validate(suite_name: str, expectations: list[Any], frame: pd.DataFrame, parameters: dict[str, Any]) -> Any:
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints the whole frame (twice per call) to build its own batch id; Nightshift
    # has its own batch id, and the hashing is half of GX's time on a 1M-row batch.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("landing")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("batch")
    )
    gx_suite = gx.ExpectationSuite(name=suite_name, expectations=[e.configuration.to_json_dict() for e in expectations])
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(gx_suite, result_format="COMPLETE", expectation_parameters=parameters)


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
            values = text.astype("string")
            bad = _false(len(batch))
        elif typ == "datetime64[ns]":
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
            values = parsed.dt.tz_localize(None).astype("datetime64[ns]")
            bad = present & values.isna().to_numpy()
        else:
            numbers = pd.to_numeric(text, errors="coerce")
            bad = present & numbers.isna().to_numpy()
            if typ == "int64":
                fractional = numbers.notna().to_numpy() & (numbers.fillna(0) % 1 != 0).to_numpy()
                bad |= fractional
                numbers = numbers.where(~fractional)
                values = numbers.astype("Float64").astype("Int64")
            else:
                values = numbers.astype("float64")
        if present.any() and bad[present].all():
            sample = text[present].iloc[0]
            raise BatchRejected(
                f"{TYPE_RULE}({col}) failed: none of the {int(present.sum())} values of column {col!r} "
                f"is readable as {typ} (first value: {sample!r}); the column is probably shifted or mis-exported"
            )
        typed[col] = values
        failures[f"{TYPE_RULE}({col})"] = bad
    return typed, failures


def _run_row_rules(
    suite: Suite, rules: list[Any], typed: pd.DataFrame, parameters: dict[str, Any]
) -> dict[str, list[int]]:
    """Failing row positions for each row rule, taken from GX's COMPLETE result."""
    # GX vectorizes range checks only for numpy dtypes; nullable Int64 would go value by value.
    # float64 holds every value exactly below 2**53 and keeps nulls as nulls.
    ints = [c for c in typed.columns if str(typed[c].dtype) == "Int64"]
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


def reason_counts_json(counts: dict[str, int]) -> str:
    """Reason counts as compact, sorted JSON for the validation summary."""
    return json.dumps(dict(sorted(Counter(counts).items())), separators=(",", ":"))
