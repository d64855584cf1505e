"""Benchmark: ingest one day of activity end to end, Nightshift (GX) against plain pandas.

What is measured: one landed ``activity`` batch of ``--rows`` rows (default 1,000,000) plus
bad rows of every class (0.1 % each), taken from read to write, by two paths:

* **nightshift**: what ``nightshift.ingest.ingest_batch`` does after listing the landing
  zone: ``validate_files`` (read and validated ``CHUNK_ROWS`` rows at a time, the suite run by
  GX) -> replace the raw, quarantine and validation-run partitions of a fresh DuckDB/Parquet
  warehouse. Its read is inside its validate phase. The time
  spent inside GX is taken by wrapping ``validation._validate`` (both GX calls: batch rules
  and row rules). Importing GX is its own phase: an Airflow task is a fresh process and
  pays it on every run.
* **baseline**: the same read and the same write, with the rules of
  ``expectations/activity.json`` applied as vectorized pandas masks by a small interpreter
  of the suite's expectation types (it refuses a suite that uses a type it does not know).

Each path runs in its own child process, so its peak RSS (``ru_maxrss``) is its own; the
data is generated once, in a third child, before anything is timed. The parent only
orchestrates, compares the two quarantine sets row by row (row numbers and reasons) and
prints the report. It exits 1 when they disagree, so the baseline cannot drift into
measuring something easier than the real rules. Target: Nightshift within 3x the baseline.

Run it with ``make bench``, or ``.venv/bin/python bench/bench_ingest.py --rows 100000``.
This is a measurement, not a test: it asserts nothing about the time it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _harness import record
from _harness import (
    TimeTable, add_stage_arguments, load_note, max_rss_mb, phase, run_stage, timed_calls, work_directory,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from nightshift.ingest.validation import Suite, ValidationOutcome

SOURCE = "activity"
# A fixed past day and a clock three days later: the event-time window is then bounded by
# the suite's allowed lateness, not by "now", and every run validates the same thing.
BATCH_DAY = date(2024, 3, 1)
NOW = datetime(2024, 3, 4, 12, tzinfo=timezone.utc)
BAD_RATE = 0.001
TARGET_RATIO = 3.0
#: Peak RSS of one ingest of the largest batch the suites admit (their row-count cap).
TARGET_RSS_MB, TARGET_RSS_ROWS = 1536.0, 5_000_000
#: ``--rows`` of the memory case: clean rows, plus the generated duplicates, just under the cap.
MEMORY_CASE_ROWS = 4_995_000


def _at_cap(landed: int) -> bool:
    """A batch within 1 % of the suites' row cap: the memory target's case."""
    return landed >= 0.99 * TARGET_RSS_ROWS
SUITE_PATH = Path(__file__).resolve().parents[1] / "expectations" / f"{SOURCE}.json"
PATHS = ("nightshift", "baseline")


# --- parent: orchestrate, compare, report ----------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="clean rows in the batch (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=7, help="data generator seed (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (CSV, warehouses, results)")
    add_stage_arguments(parser, ("generate", *PATHS))
    args = parser.parse_args(argv)

    if args.stage == "generate":
        _generate(args.workdir, args.rows, args.seed)
        return 0
    if args.stage in PATHS:
        _run_path(args.stage, args.workdir)
        return 0

    with work_directory("nightshift-bench-", args.keep) as workdir:
        print(f"generating {args.rows:,} activity rows for {BATCH_DAY} (seed {args.seed}) in {workdir} ...", flush=True)
        _child("generate", workdir, args)
        results = {}
        load = [os.getloadavg()[0]]
        # One at a time: on two cores a concurrent run would time the other one too.
        for path in ("baseline", "nightshift"):
            print(f"running the {path} path ...", flush=True)
            _child(path, workdir, args)
            results[path] = json.loads((workdir / f"{path}.json").read_text())
            load.append(os.getloadavg()[0])
        agreement = _compare(workdir)
        print()
        print(_report(args, results, agreement, max(load)))
    return 0 if agreement["rows_agree"] and agreement["reasons_agree"] else 1


def _child(stage: str, workdir: Path, args: argparse.Namespace) -> None:
    """Run one stage in a fresh interpreter; its output goes to the terminal."""
    arguments = ["--stage", stage, "--workdir", str(workdir), "--rows", str(args.rows), "--seed", str(args.seed)]
    run_stage(__file__, arguments, stage)


def _compare(workdir: Path) -> dict[str, Any]:
    """Row numbers and reasons quarantined by each path, compared."""
    quarantined = {
        path: {int(row): reasons for row, reasons in json.loads((workdir / f"{path}.quarantine.json").read_text())}
        for path in PATHS
    }
    gx, pandas_ = quarantined["nightshift"], quarantined["baseline"]
    only_gx, only_pandas = sorted(set(gx) - set(pandas_)), sorted(set(pandas_) - set(gx))
    differing = sorted(row for row in set(gx) & set(pandas_) if gx[row] != pandas_[row])
    return {
        "rows_agree": not only_gx and not only_pandas,
        "reasons_agree": not differing,
        "count": len(gx),
        "only_nightshift": only_gx,
        "only_baseline": only_pandas,
        "differing": [(row, gx[row], pandas_[row]) for row in differing],
    }


def _report(
    args: argparse.Namespace, results: dict[str, dict[str, Any]], agreement: dict[str, Any], load: float
) -> str:
    """The comparison table. Every time is ``[wall, cpu]`` seconds; ratios are on wall time."""
    ns, base = results["nightshift"], results["baseline"]
    gx_calls = ns["gx_calls"]
    in_gx = [sum(call[i] for call in gx_calls) for i in (0, 1)]
    ns_rest = [ns["phases"]["validate"][i] - in_gx[i] for i in (0, 1)]
    ns_total, base_total = _total(ns["phases"]), _total(base["phases"])
    # nightshift reads inside its validate phase (chunk by chunk): compare the two from read to split
    base_read_validate = [base["phases"]["read"][i] + base["phases"]["validate"][i] for i in (0, 1)]
    ns_import = ns["phases"]["import GX"]

    rows: list[tuple[str, list[float] | None, list[float] | None]] = [
        ("read       read_batch", None, base["phases"]["read"]),
        ("import GX", ns_import, None),
        ("validate   + split", None, base["phases"]["validate"]),
        ("read + validate + split", ns["phases"]["validate"], base_read_validate),
        ("  of which GX calls", in_gx, None),
        ("  of which the rest", ns_rest, base_read_validate),
        ("write      3 partitions", ns["phases"]["write"], base["phases"]["write"]),
        ("total", ns_total, base_total),
    ]
    table = TimeTable(label_width=26, cell_width=18, cpu_width=5, ratio_digits=1, thousands=False)
    lines = [
        f"Nightshift ingest benchmark: {SOURCE} {BATCH_DAY}, {ns['landed']:,} rows landed "
        f"({args.rows:,} clean + duplicates, {BAD_RATE:.1%} bad rows per class, seed {args.seed})",
        f"split: {ns['accepted']:,} accepted, {ns['quarantined']:,} quarantined",
        "",
        *table.header("nightshift", "baseline"),
    ]
    lines += [table.row(label, a, b) for label, a, b in rows]
    lines += table.rss_rows(ns, base)

    overall = ns_total[0] / base_total[0]
    overall_cpu = ns_total[1] / base_total[1]
    without_import = (ns_total[0] - ns_import[0]) / base_total[0]
    verdict = "met" if overall <= TARGET_RATIO else "MISSED"
    gx_share = (ns_import[0] + in_gx[0]) / ns_total[0]
    lines += [
        "",
        f"GX share of Nightshift time: {gx_share:.0%} (import {ns_import[0]:.2f} s + {len(gx_calls)} validate "
        f"calls: " + " + ".join(f"{call[0]:.2f} s" for call in gx_calls)
        + "; row rules chunk by chunk, then the batch rules, then uniqueness over the batch)",
        f"nightshift / baseline: {overall:.2f}x wall time ({overall_cpu:.2f}x cpu), "
        f"{ns['peak_rss_mb'] / base['peak_rss_mb']:.2f}x peak RSS; "
        f"{without_import:.2f}x wall time without the one-off GX import",
        f"target: nightshift <= {TARGET_RATIO:g}x the baseline's overall time: {verdict}",
        f"target: peak RSS <= {TARGET_RSS_MB:,.0f} MB for a {TARGET_RSS_ROWS:,}-row batch (the suites' cap): "
        + (("met" if ns["peak_rss_mb"] <= TARGET_RSS_MB else "MISSED") if _at_cap(ns["landed"])
           else f"not measured here (run with --rows {MEMORY_CASE_ROWS})"),
    ]
    rows_text = f"{ns['landed'] / 1e6:.2f}M rows landed"
    record("bench_ingest", f"ingest / baseline, wall, {rows_text}", f"{overall:.2f}x", f"<= {TARGET_RATIO:g}x",
           overall <= TARGET_RATIO)
    record("bench_ingest", f"ingest peak RSS, {rows_text}", f"{ns['peak_rss_mb']:,.0f} MB",
           f"<= {TARGET_RSS_MB:,.0f} MB at {TARGET_RSS_ROWS / 1e6:g}M rows",
           ns["peak_rss_mb"] <= TARGET_RSS_MB if _at_cap(ns["landed"]) else None)
    lines += load_note(load)
    if agreement["rows_agree"] and agreement["reasons_agree"]:
        lines.append(f"quarantine sets: AGREE ({agreement['count']:,} rows, the same reasons on every row)")
    else:
        lines.append(
            f"quarantine sets: DISAGREE: {len(agreement['only_nightshift'])} row(s) only in nightshift "
            f"{agreement['only_nightshift'][:5]}, {len(agreement['only_baseline'])} only in baseline "
            f"{agreement['only_baseline'][:5]}, {len(agreement['differing'])} with different reasons "
            f"{agreement['differing'][:3]}. Fix the baseline interpreter in bench/bench_ingest.py "
            "(or the bug in validation.py it found) before trusting these times"
        )
    return "\n".join(lines)


def _total(phases: dict[str, list[float]]) -> list[float]:
    return [sum(times[i] for times in phases.values()) for i in (0, 1)]


# --- children: generate, then run one path ---------------------------------------------


def _batch_file(workdir: Path) -> Path:
    return workdir / f"{SOURCE}_{BATCH_DAY.isoformat()}.csv"


def _generate(workdir: Path, rows: int, seed: int) -> None:
    from nightshift.demo.churn_data import BAD_INPUT_CLASSES, single_day_batch

    data = single_day_batch(SOURCE, rows, BATCH_DAY, seed, {name: BAD_RATE for name in BAD_INPUT_CLASSES})
    _batch_file(workdir).write_bytes(data)


def _run_path(path: str, workdir: Path) -> None:
    """Time one path over the generated batch; write its timings and quarantine to ``workdir``."""
    # Libraries both paths need are imported before the clock starts; only GX is extra.
    import duckdb  # noqa: F401
    import pandas as pd  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import nightshift.ingest  # noqa: F401
    from nightshift.ingest import validation
    from nightshift.landing import batch_id
    from nightshift.ingest.validation import Suite, read_batch

    batch_file = _batch_file(workdir)
    contents = [(batch_file.name, batch_file.read_bytes())]
    suite = Suite.load(SUITE_PATH)
    start_rss_mb = max_rss_mb()

    phases: dict[str, list[float]] = {}
    gx_calls: list[list[float]] = []
    if path == "nightshift":
        with phase(phases, "import GX"):
            import great_expectations  # noqa: F401
        validation._validate = timed_calls(validation._validate, gx_calls)

    this_batch = batch_id(SOURCE, BATCH_DAY, contents)
    if path == "nightshift":
        # What the loader does: read and validate chunk by chunk (validate_files), in bounded memory.
        with phase(phases, "validate"):
            outcome = validation.validate_files(suite, contents, BATCH_DAY, NOW, consume=True)
    else:
        with phase(phases, "read"):
            batch = read_batch(contents, suite)
        with phase(phases, "validate"):
            outcome = baseline_validate(suite, batch, BATCH_DAY, NOW)
        del batch
    del contents  # as the loader does before writing
    with phase(phases, "write"):
        _write(workdir / path / "warehouse.duckdb", batch_file, suite, this_batch, outcome)

    peak_rss_mb = max_rss_mb()
    quarantined = outcome.quarantined
    (workdir / f"{path}.quarantine.json").write_text(
        json.dumps(list(zip(quarantined[validation.ROW_NUMBER].tolist(), quarantined[validation.REASONS].tolist())))
    )
    (workdir / f"{path}.json").write_text(
        json.dumps(
            {
                "phases": phases,
                "gx_calls": gx_calls,
                "landed": outcome.landed_rows,
                "accepted": len(outcome.accepted),
                "quarantined": len(quarantined),
                "reason_counts": outcome.reason_counts,
                "start_rss_mb": start_rss_mb,
                "peak_rss_mb": peak_rss_mb,
            }
        )
    )


def _write(database: Path, batch_file: Path, suite: Suite, this_batch: str, outcome: ValidationOutcome) -> None:
    """The partition writes of ``ingest_batch``: raw, quarantine and the validation-run row."""
    from nightshift.ingest import write_batch
    from nightshift.landing import LandedFile
    from nightshift.warehouse import Warehouse

    landed = [LandedFile(uri=str(batch_file), name=batch_file.name, size=batch_file.stat().st_size, fingerprint="bench")]
    write_batch(Warehouse.from_uri(f"duckdb:///{database}"), SOURCE, BATCH_DAY, this_batch, suite, landed, outcome, NOW)


# --- baseline: the suite's rules as pandas masks ---------------------------------------


def baseline_validate(suite: Suite, batch: pd.DataFrame, day: date, now: datetime) -> ValidationOutcome:
    """``validate_batch``'s contract, with every rule of ``suite`` applied as a pandas mask.

    Same outcome as Nightshift's: the same typed accepted frame, the same quarantine frame
    with the same reasons, so that the write that follows costs the same.
    """

    from nightshift.ingest.validation import ROW_NUMBER, SOURCE_FILE, TYPE_RULE, BatchRejected, split_rows, suite_parameters

    parameters = suite_parameters(suite, day, now)
    declared = list(suite.column_types)
    extra = [c for c in batch.columns if c not in suite.column_types and c not in (SOURCE_FILE, ROW_NUMBER)]

    row_rules = []
    for expectation in suite.definition["expectations"]:
        kind, kwargs = expectation["type"], _resolve(expectation.get("kwargs", {}), parameters)
        if kind == TYPE_RULE:
            continue
        if kind in _BATCH_RULES:
            problem = _BATCH_RULES[kind](batch.drop(columns=[SOURCE_FILE, ROW_NUMBER]), **kwargs)
            if problem:
                raise BatchRejected(f"{_rule_name(expectation)} failed: {problem}")
        elif kind in _ROW_RULES:
            row_rules.append((_rule_name(expectation), _ROW_RULES[kind], kwargs))
        else:
            raise SystemExit(
                f"suite {suite.path}: the baseline has no pandas version of {kind!r}; "
                "add one to _BATCH_RULES or _ROW_RULES in bench/bench_ingest.py"
            )
    missing = [c for c in declared if c not in batch.columns]
    if missing:
        raise BatchRejected(f"column(s) {missing} declared by {TYPE_RULE} are missing from the batch")

    typed, unreadable = _baseline_coerce(suite, batch)
    failed = {f"{TYPE_RULE}({col})": mask for col, mask in unreadable.items()}
    for name, rule, kwargs in row_rules:
        column = kwargs["column"]
        mask = rule(typed[column], **{k: v for k, v in kwargs.items() if k != "column"})
        if rule is _not_null:
            # An unreadable value already failed its type rule; it is not also missing.
            mask &= ~unreadable[column]
        failed[name] = failed[name] | mask if name in failed else mask
    failed = {name: mask for name, mask in failed.items() if mask.any()}

    return split_rows(suite, batch, typed, failed, extra)


def _rule_name(expectation: dict[str, Any]) -> str:
    """The name ``validation.rule_name`` gives: ``meta.name``, else ``type(column)``."""
    meta = expectation.get("meta") or {}
    if meta.get("name"):
        return str(meta["name"])
    column = expectation.get("kwargs", {}).get("column")
    return f"{expectation['type']}({column})" if column else expectation["type"]


def _resolve(kwargs: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{"$PARAMETER": name}`` values with the batch's suite parameters."""
    resolved = {}
    for key, value in kwargs.items():
        if isinstance(value, dict) and "$PARAMETER" in value:
            if value["$PARAMETER"] not in parameters:
                raise SystemExit(f"$PARAMETER {value['$PARAMETER']!r} is not one of {sorted(parameters)}")
            value = parameters[value["$PARAMETER"]]
        resolved[key] = value
    return resolved


def _baseline_coerce(suite: Suite, batch: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Text to the declared types; per column, the rows whose present value is unreadable.

    Written out here rather than calling ``validation._coerce`` so that the agreement check
    also covers the type rules; the dtypes match, so both paths write the same Parquet.
    """
    import numpy as np
    import pandas as pd

    from nightshift.ingest.validation import TYPE_RULE, BatchRejected

    typed = pd.DataFrame(index=batch.index)
    unreadable: dict[str, np.ndarray] = {}
    for column, type_ in suite.column_types.items():
        text = batch[column]
        present = text.notna().to_numpy()
        if type_ == "str":
            values, bad = text.astype("string"), np.zeros(len(text), dtype=bool)
        elif type_ == "datetime64[ns]":
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
            values = parsed.dt.tz_localize(None).astype("datetime64[ns]")
            bad = present & values.isna().to_numpy()
        else:
            numbers = pd.to_numeric(text, errors="coerce")
            if type_ == "int64":
                whole = numbers.isna() | (numbers % 1 == 0)
                numbers = numbers.where(whole)
                values = numbers.astype("Float64").astype("Int64")
            else:
                values = numbers.astype("float64")
            bad = present & numbers.isna().to_numpy()
        if present.any() and bad[present].all():
            raise BatchRejected(f"{TYPE_RULE}({column}) failed: no value of column {column!r} is readable as {type_}")
        typed[column] = values
        unreadable[column] = bad
    return typed, unreadable


def _table_columns(frame: pd.DataFrame, column_set: list[str], exact_match: bool = True, **_: Any) -> str:
    missing = sorted(set(column_set) - set(frame.columns))
    unexpected = sorted(set(frame.columns) - set(column_set)) if exact_match else []
    return f"missing {missing}, unexpected {unexpected}" if missing or unexpected else ""


def _row_count(frame: pd.DataFrame, min_value: int | None = None, max_value: int | None = None, **_: Any) -> str:
    count = len(frame)
    if (min_value is not None and count < min_value) or (max_value is not None and count > max_value):
        return f"{count} rows, expected between {min_value} and {max_value}"
    return ""


# GX map expectations never flag a missing value (that is not_null's job): every row rule
# below fails only present values, except not_null itself.
def _not_null(values: pd.Series, **_: Any) -> np.ndarray:
    return values.isna().to_numpy()


def _between(
    values: pd.Series,
    min_value: Any = None,
    max_value: Any = None,
    strict_min: bool = False,
    strict_max: bool = False,
    **_: Any,
) -> np.ndarray:
    import numpy as np

    inside = np.ones(len(values), dtype=bool)
    if min_value is not None:
        inside &= (values > min_value if strict_min else values >= min_value).to_numpy(dtype=bool, na_value=True)
    if max_value is not None:
        inside &= (values < max_value if strict_max else values <= max_value).to_numpy(dtype=bool, na_value=True)
    return values.notna().to_numpy() & ~inside


def _in_set(values: pd.Series, value_set: list[Any], **_: Any) -> np.ndarray:
    return values.notna().to_numpy() & ~values.isin(value_set).to_numpy(dtype=bool, na_value=True)


def _unique(values: pd.Series, **_: Any) -> np.ndarray:
    # Missing values count as duplicates of each other in pandas but not in GX.
    return values.notna().to_numpy() & values.duplicated(keep=False).to_numpy()


_BATCH_RULES: dict[str, Callable[..., str]] = {
    "expect_table_columns_to_match_set": _table_columns,
    "expect_table_row_count_to_be_between": _row_count,
}
_ROW_RULES: dict[str, Callable[..., np.ndarray]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_unique": _unique,
}


if __name__ == "__main__":
    sys.exit(main())
