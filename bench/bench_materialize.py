"""Benchmark: materialize a daily feature table into the SQLite online store, Nightshift against stock Feast.

What is measured: ``FeatureStore.materialize(start, end)`` of one daily feature view (``--customers``
customers x ``--days`` days, one row per customer per day at end of day, a ``created_at`` column,
18 Float64 and 2 String features, ttl 3 days; default 11,111 x 90 = 999,990 customer-days), by two
configurations built in code over the same Parquet file:

* **stock**: Feast's ``duckdb`` offline store and no ``batch_engine`` key (Feast's local engine
  materializing the whole window at once), over the full window;
* **nightshift**: ``nightshift.features.offline.AsofDuckDBOfflineStore`` and
  ``nightshift.features.engine.LatestPerKeyEngine``, over the last 7, 30 and ``--days`` days of the
  table (customers fixed, so the short windows have fewer rows).

Stock runs Feast's local compute plan; its phases are timed by wrapping Feast's functions: pull
from the offline store (``LocalSourceReadNode``), latest row per key (``LocalDedupNode``), Arrow ->
proto conversion (``_convert_arrow_to_proto``), SQLite upserts (``SqliteOnlineStore.online_write_batch``)
and registry commits (``Registry.apply_materialization``). Nightshift's phases: the read of the latest
row per key (one query, under "pull"), the encoding of entity keys and values (``to proto``), the bulk
SQLite write of each key partition and the registry commits. Both write the latest row per entity,
so throughput is compared on input customer-days per second, and the entities handed to the online
store are reported per run.

Each run is its own child process, so its peak RSS (``ru_maxrss``) is its own; the data is generated
once, in a first child, before anything is timed. The parent orchestrates, checks that the stock run
and the full-window Nightshift run leave the same online store (every entity key, feature, value and
timestamp; exit 1 otherwise) and prints the report. When the throughput target is missed it runs the
full-window Nightshift path once more under cProfile and prints where the time goes.

Targets: Nightshift >= 5x stock in customer-days per second over the same window, and Nightshift's
peak RSS within +-20 % of its 7-day run's on the longer windows.

Run it with ``.venv/bin/python bench/bench_materialize.py`` (or ``--customers 2000`` for a quick one).
This is a measurement, not a test: it asserts nothing about the time it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _harness import record
from _harness import (
    TimeTable, add_stage_arguments, clock, load_note, max_rss_mb, profile_call, run_stage, timed, work_directory,
)

# The table's first day; windows end at the day after its last.
DATA_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
TTL = timedelta(days=3)
WINDOW_DAYS = (7, 30)  # the full window (--days) is added to these
TARGET_SPEEDUP = 5.0
RSS_BAND = 0.20
# DuckDB's default COPY row group, what dbt-duckdb writes: lets a time filter skip row groups.
ROW_GROUP_ROWS = 122_880
FLOAT_FEATURES = tuple(
    f"{measure}_{span}"
    for measure in ("sessions", "minutes", "spend", "support_tickets", "active_days", "page_views",
                    "plan_changes", "errors", "logins")
    for span in ("7d", "28d")
)
STRING_FEATURES = ("plan", "region")
PLANS = ("free", "pro", "team", "enterprise")
REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "apac")
FEATURE_VIEW = "customer_activity"
STOCK_OFFLINE_STORE = {"type": "duckdb"}
NIGHTSHIFT_OFFLINE_STORE = {"type": "nightshift.features.offline.AsofDuckDBOfflineStore"}
NIGHTSHIFT_ENGINE = {"type": "nightshift.features.engine.LatestPerKeyEngine"}
PHASES = ("pull", "latest row", "to proto", "sqlite write", "registry")
# Nightshift's read is one query (pull and latest row in one): its time is under "pull".
CHILD_ENV = {"DO_NOT_TRACK": "1", "FEAST_USAGE": "False"}


# --- parent: orchestrate, compare, report ----------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=11_111, help="customers in the table (default 11,111)")
    parser.add_argument("--days", type=int, default=90, help="days in the table = the full window (default 90)")
    parser.add_argument(
        "--stock-days", type=int, help="cap the stock run's window at this many days (default: the full window)"
    )
    parser.add_argument("--seed", type=int, default=7, help="data generator seed (default 7)")
    parser.add_argument(
        "--profile", choices=("auto", "always", "never"), default="auto",
        help="profile the full-window Nightshift run: when the target is missed (auto), always, never",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (Parquet, repos, logs)")
    add_stage_arguments(parser, ("generate", "run", "profile"))
    parser.add_argument("--path", choices=("stock", "nightshift"), help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage == "generate":
        _generate(args.workdir, args.customers, args.days, args.seed)
        return 0
    if args.stage == "run":
        _run(args.workdir, args.path, args.window, args.days, profile=False)
        return 0
    if args.stage == "profile":
        _run(args.workdir, "nightshift", args.window, args.days, profile=True)
        return 0

    stock_days = min(args.stock_days or args.days, args.days)
    windows = sorted({w for w in WINDOW_DAYS if w < args.days} | {args.days})
    with work_directory("nightshift-bench-materialize-", args.keep) as workdir:
        print(
            f"generating {args.customers:,} customers x {args.days} days (seed {args.seed}) in {workdir} ...",
            flush=True,
        )
        _child(workdir, ["--stage", "generate"], args)
        meta = json.loads((workdir / "meta.json").read_text())
        results: dict[str, dict[str, Any]] = {}
        load = [os.getloadavg()[0]]
        # One at a time: on two cores a concurrent run would time the other one too.
        runs = [("stock", stock_days)] + [("nightshift", w) for w in windows]
        for path, window in runs:
            name = _run_name(path, window)
            print(f"running {name} ...", flush=True)
            _child(workdir, ["--stage", "run", "--path", path, "--window", str(window)], args)
            results[name] = json.loads((workdir / f"{name}.json").read_text())
            load.append(os.getloadavg()[0])
        stock_name, full_name = _run_name("stock", stock_days), _run_name("nightshift", stock_days)
        agreement = _compare_online(results[stock_name], results[full_name])
        stock, full = results[stock_name], results[full_name]
        speedup = _throughput(full) / _throughput(stock)
        profile = None
        if args.profile == "always" or (args.profile == "auto" and speedup < TARGET_SPEEDUP):
            print(f"profiling {_run_name('nightshift', args.days)} under cProfile ...", flush=True)
            _child(workdir, ["--stage", "profile", "--window", str(args.days)], args)
            profile = (workdir / "profile.txt").read_text()
        print()
        print(_report(args, meta, results, stock_days, windows, agreement, max(load)))
        if profile:
            print()
            print(profile)
    return 0 if agreement["agree"] else 1


def _run_name(path: str, window: int) -> str:
    return f"{path}-{window}d"


def _child(workdir: Path, stage_args: list[str], args: argparse.Namespace) -> None:
    """Run one stage in a fresh interpreter; its output goes to a log, shown when it fails."""
    arguments = [
        *stage_args, "--workdir", str(workdir),
        "--customers", str(args.customers), "--days", str(args.days), "--seed", str(args.seed),
    ]
    log = workdir / f"stage-{'-'.join(stage_args[1::2])}.log"
    run_stage(__file__, arguments, stage_args, log=log, env=os.environ | CHILD_ENV)


def _window_label(result: dict[str, Any]) -> str:
    """The run's window as ``MM-DD..MM-DD``."""
    return f"{result['window_start'][5:10]}..{result['window_end'][5:10]}"


def _throughput(result: dict[str, Any]) -> float:
    """Input customer-days per wall second of ``materialize``."""
    return result["customer_days"] / result["total"][0]


def _compare_online(stock: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Rows (entity key, feature, value, event and created timestamps) only in one of the two online stores."""
    columns = "entity_key, feature_name, value, event_ts, created_ts"
    con = sqlite3.connect(stock["online_db"])
    try:
        con.execute("ATTACH DATABASE ? AS ours", (ours["online_db"],))
        a, b = f"main.{stock['online_table']}", f"ours.{ours['online_table']}"
        only_stock = con.execute(f"SELECT count(*) FROM (SELECT {columns} FROM {a} EXCEPT SELECT {columns} FROM {b})")
        only_stock = only_stock.fetchone()[0]
        only_ours = con.execute(f"SELECT count(*) FROM (SELECT {columns} FROM {b} EXCEPT SELECT {columns} FROM {a})")
        only_ours = only_ours.fetchone()[0]
        total = con.execute(f"SELECT count(*) FROM {a}").fetchone()[0]
    finally:
        con.close()
    agree = only_stock == 0 and only_ours == 0
    return {"agree": agree, "rows": total, "only_stock": only_stock, "only_ours": only_ours}


def _report(
    args: argparse.Namespace,
    meta: dict[str, Any],
    results: dict[str, dict[str, Any]],
    stock_days: int,
    windows: list[int],
    agreement: dict[str, Any],
    load: float,
) -> str:
    """The comparison tables. Every time is ``[wall, cpu]`` seconds; ratios are on wall time."""
    stock_name, full_name = _run_name("stock", stock_days), _run_name("nightshift", stock_days)
    names = [stock_name] + [_run_name("nightshift", w) for w in windows]
    table = TimeTable(label_width=22, cell_width=18)
    cell_width = table.cell_width

    def count_row(label: str, key: str) -> str:
        return table.line(label, *(f"{results[n][key]:>{cell_width},}" for n in names))

    lines = [
        f"Nightshift materialize benchmark: {FEATURE_VIEW}, {args.customers:,} customers x {args.days} days = "
        f"{meta['rows']:,} customer-days, {len(FLOAT_FEATURES)} Float64 + {len(STRING_FEATURES)} String features, "
        f"ttl {TTL.days} d (seed {args.seed})",
        f"stock: duckdb offline store, local engine, one pass;  nightshift: AsofDuckDBOfflineStore + "
        "LatestPerKeyEngine (latest row per key, one bulk write per key partition);  online store: SQLite",
        "",
        table.line("", *(f"{name:>{cell_width}}" for name in names)),
        table.line("window", *(f"{_window_label(results[n]):>{cell_width}}" for n in names)),
        count_row("input customer-days", "customer_days"),
        count_row("plan runs (slices)", "plan_runs"),
        count_row("rows to online store", "rows_written"),
        count_row("online rows at end", "online_entities"),
        table.line("phase: wall (cpu)"),
    ]
    for phase in (*PHASES, "other"):
        lines.append(table.line(f"  {phase}", *(table.cell(results[n]["phases"][phase]) for n in names)))
    lines += [
        table.line("materialize total", *(table.cell(results[n]["total"]) for n in names)),
        table.line("customer-days / s", *(f"{_throughput(results[n]):>{cell_width},.0f}" for n in names)),
        table.line("peak RSS", *(table.megabytes(results[n]["peak_rss_mb"]) for n in names)),
        table.line("  before materialize", *(table.megabytes(results[n]["start_rss_mb"]) for n in names)),
    ]

    stock, full = results[stock_name], results[full_name]
    speedup = _throughput(full) / _throughput(stock)
    cpu_speedup = (full["customer_days"] / full["total"][1]) / (stock["customer_days"] / stock["total"][1])
    verdict = "met" if speedup >= TARGET_SPEEDUP else "MISSED"
    base_rss = results[_run_name("nightshift", windows[0])]["peak_rss_mb"]
    spread = [results[_run_name("nightshift", w)]["peak_rss_mb"] / base_rss - 1 for w in windows]
    rss_verdict = "met" if all(abs(s) <= RSS_BAND for s in spread) else "MISSED"
    lines += [
        "",
        f"nightshift / stock over {stock_days} days: {speedup:.2f}x customer-days/s on wall time "
        f"({cpu_speedup:.2f}x on cpu), {full['peak_rss_mb'] / stock['peak_rss_mb']:.2f}x peak RSS; "
        f"rows to the online store: {full['rows_written']:,} vs {stock['rows_written']:,}",
        f"target: nightshift >= {TARGET_SPEEDUP:g}x stock throughput: {verdict}",
        "nightshift peak RSS vs its 7-day run: "
        + ", ".join(f"{w} d {s:+.0%}" for w, s in zip(windows, spread))
        + f"; target within +-{RSS_BAND:.0%}: {rss_verdict}",
    ]
    record("bench_materialize", f"materialize throughput / stock Feast, {stock_days} d x {args.customers:,} entities",
           f"{speedup:.2f}x", f">= {TARGET_SPEEDUP:g}x", speedup >= TARGET_SPEEDUP)
    record("bench_materialize", f"materialize peak RSS, {windows[0]} -> {windows[-1]} days",
           f"{max(spread, key=abs):+.0%}", f"within +-{RSS_BAND:.0%}", rss_verdict == "met")
    if stock_days < args.days:
        lines.append(f"note: the stock run was capped at the last {stock_days} days (--stock-days)")
    lines += load_note(load)
    if agreement["agree"]:
        lines.append(f"online stores after {stock_name} and {full_name}: AGREE ({agreement['rows']:,} feature rows)")
    else:
        lines.append(
            f"online stores after {stock_name} and {full_name}: DISAGREE: {agreement['only_stock']:,} row(s) only "
            f"in stock, {agreement['only_ours']:,} only in nightshift. Find the difference (keep the work directory "
            "with --keep) before trusting these numbers"
        )
    return "\n".join(lines)


# --- children: generate, then run one configuration ------------------------------------


def _parquet_path(workdir: Path) -> Path:
    return workdir / "customer_activity_daily.parquet"


def _window(days_in_table: int, window_days: int) -> tuple[datetime, datetime]:
    """The last ``window_days`` days of the table, as ``[start, end)`` at midnight UTC."""
    end = DATA_START + timedelta(days=days_in_table)
    return end - timedelta(days=window_days), end


def _generate(workdir: Path, customers: int, days: int, seed: int) -> None:
    """The daily feature table as Parquet, day after day (as a daily incremental model appends it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n = customers * days
    day = np.repeat(np.arange(days), customers)
    feature_ts = (
        np.datetime64(DATA_START.replace(tzinfo=None), "us")
        + day.astype("timedelta64[D]")
        + np.timedelta64(86_399, "s")  # end of day
    )
    columns: dict[str, pa.Array] = {
        "customer_id": pa.array(np.tile(np.arange(1, customers + 1, dtype=np.int64), days)),
        "feature_timestamp": pa.array(feature_ts, type=pa.timestamp("us", tz="UTC")),
        # dbt runs a little after midnight; the minutes vary by run.
        "created_at": pa.array(
            feature_ts + (rng.integers(60, 3_600, n) * 1_000_000).astype("timedelta64[us]"),
            type=pa.timestamp("us", tz="UTC"),
        ),
    }
    for index, name in enumerate(FLOAT_FEATURES):
        values = rng.gamma(2.0, 5.0 * (index + 1), n).round(2)
        columns[name] = pa.array(values, mask=rng.random(n) < 0.02)
    for name, choices in zip(STRING_FEATURES, (PLANS, REGIONS)):
        values = np.array(choices, dtype=object)[rng.integers(0, len(choices), n)]
        columns[name] = pa.array(values, type=pa.string(), mask=rng.random(n) < 0.01)
    pq.write_table(pa.table(columns), _parquet_path(workdir), row_group_size=ROW_GROUP_ROWS)

    windows = sorted({w for w in WINDOW_DAYS if w < days} | {days})
    ts = feature_ts.astype("datetime64[us]")
    rows_per_window = {}
    for w in range(1, days + 1):
        start, end = _window(days, w)
        lo, hi = np.datetime64(start.replace(tzinfo=None), "us"), np.datetime64(end.replace(tzinfo=None), "us")
        rows_per_window[w] = int(((ts >= lo) & (ts < hi)).sum())
    (workdir / "meta.json").write_text(json.dumps({"rows": n, "windows": windows, "rows_per_window": rows_per_window}))


def _make_store(repo_path: Path, parquet: Path, path: str) -> tuple[Any, Any]:
    """A fresh repo for ``path`` (stock or nightshift) with the one feature view applied."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64, String
    from feast.value_type import ValueType

    repo_path.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "project": f"bench_{path}",
        "provider": "local",
        "registry": str(repo_path / "registry.db"),
        "offline_store": dict(STOCK_OFFLINE_STORE if path == "stock" else NIGHTSHIFT_OFFLINE_STORE),
        "online_store": {"type": "sqlite", "path": str(repo_path / "online_store.db")},
        "entity_key_serialization_version": 3,
        "repo_path": repo_path,
    }
    if path == "nightshift":
        settings["batch_engine"] = dict(NIGHTSHIFT_ENGINE)
    store = FeatureStore(config=RepoConfig(**settings))
    # The customer, the only entity here.
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    # The daily table as dbt writes it: end-of-day feature timestamp, created_at of the run.
    source = FileSource(
        name="customer_activity_daily_source",
        path=str(parquet),
        timestamp_field="feature_timestamp",
        created_timestamp_column="created_at",
    )
    # A day's row is valid for three days, as in feature_repo/definitions.py.
    feature_view = FeatureView(
        name=FEATURE_VIEW,
        entities=[customer],
        ttl=TTL,
        schema=[Field(name=name, dtype=Float64) for name in FLOAT_FEATURES]
        + [Field(name=name, dtype=String) for name in STRING_FEATURES],
        source=source,
        online=True,
    )
    store.apply([customer, feature_view])
    return store, feature_view


def _run(workdir: Path, path: str, window_days: int, days_in_table: int, profile: bool) -> None:
    """Materialize ``window_days`` with configuration ``path``; write timings (or a profile) to ``workdir``."""
    # Everything both configurations import is loaded before the clock starts.
    import feast.infra.compute_engines.local.nodes as nodes
    import nightshift.features.engine as engine
    import nightshift.features.offline  # noqa: F401
    from nightshift.features import online_write
    from feast.infra.compute_engines.local.compute import LocalComputeEngine
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.infra.registry.registry import Registry

    name = _run_name(path, window_days) + ("-profiled" if profile else "")
    store, feature_view = _make_store(workdir / name, _parquet_path(workdir), path)
    start, end = _window(days_in_table, window_days)
    meta = json.loads((workdir / "meta.json").read_text())

    phases: dict[str, list[float]] = {phase: [0.0, 0.0] for phase in PHASES}
    counts = {"rows_written": 0, "plan_runs": 0}
    nodes.LocalSourceReadNode.execute = timed(nodes.LocalSourceReadNode.execute, phases["pull"])
    nodes.LocalDedupNode.execute = timed(nodes.LocalDedupNode.execute, phases["latest row"])
    nodes._convert_arrow_to_proto = timed(nodes._convert_arrow_to_proto, phases["to proto"])
    write = timed(SqliteOnlineStore.online_write_batch, phases["sqlite write"])

    def counted_write(self: Any, config: Any, table: Any, data: list[Any], progress: Any) -> None:
        counts["rows_written"] += len(data)
        write(self, config, table, data, progress)

    SqliteOnlineStore.online_write_batch = counted_write
    # Nightshift's path: one read, entity keys and values encoded per column, one bulk write per key partition
    # (its encoding runs inside the write call and is moved from "sqlite write" to "to proto" below).
    engine.LatestPerKeyEngine._latest_rows = timed(engine.LatestPerKeyEngine._latest_rows, phases["pull"])
    online_write.entity_key_bytes = timed(online_write.entity_key_bytes, phases["to proto"])
    encoding: list[float] = [0.0, 0.0]
    online_write.encoded_column = timed(online_write.encoded_column, encoding)
    bulk_write = timed(online_write.write_sqlite, phases["sqlite write"])

    def counted_bulk_write(store: Any, config: Any, view: Any, table: Any, keys: list[bytes]) -> int:
        counts["rows_written"] += table.num_rows
        return bulk_write(store, config, view, table, keys)

    online_write.write_sqlite = counted_bulk_write
    Registry.apply_materialization = timed(Registry.apply_materialization, phases["registry"])
    run_plan = LocalComputeEngine._materialize_one

    def counted_plan(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["plan_runs"] += 1
        return run_plan(self, *args, **kwargs)

    LocalComputeEngine._materialize_one = counted_plan
    run_latest = engine.LatestPerKeyEngine._materialize_latest

    def counted_latest(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["plan_runs"] += 1
        return run_latest(self, *args, **kwargs)

    engine.LatestPerKeyEngine._materialize_latest = counted_latest

    start_rss_mb = max_rss_mb()
    if profile:
        _profile(lambda: store.materialize(start, end), workdir / "profile.txt", name, phases)
        return
    total = [0.0, 0.0]
    with clock(total):
        store.materialize(start, end)
    peak_rss_mb = max_rss_mb()
    for i in (0, 1):
        phases["sqlite write"][i] -= encoding[i]
        phases["to proto"][i] += encoding[i]

    phases["other"] = [total[i] - sum(times[i] for times in phases.values()) for i in (0, 1)]
    online_db = workdir / name / "online_store.db"
    online_table = f"bench_{path}_{feature_view.name}"
    with sqlite3.connect(online_db) as con:
        online_entities = con.execute(f"SELECT count(DISTINCT entity_key) FROM {online_table}").fetchone()[0]
    (workdir / f"{name}.json").write_text(
        json.dumps(
            {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "customer_days": meta["rows_per_window"][str(window_days)],
                "total": total,
                "phases": phases,
                **counts,
                "online_entities": online_entities,
                "online_db": str(online_db),
                "online_table": online_table,
                "start_rss_mb": start_rss_mb,
                "peak_rss_mb": peak_rss_mb,
            }
        )
    )


def _profile(run: Callable[[], Any], out: Path, name: str, phases: dict[str, list[float]]) -> None:
    """Run ``run`` under cProfile; write the phase split and the costliest functions to ``out``."""
    total, listing = profile_call(run, sorts=[("tottime", 18), ("cumulative", 30)])
    split = ", ".join(f"{phase} {times[0]:.2f} s" for phase, times in phases.items())
    rest = total - sum(times[0] for times in phases.values())
    out.write_text(
        f"cProfile of {name} (times inflated by the profiler): total {total:.2f} s = {split}, other {rest:.2f} s\n"
        + "\n".join(line for line in listing.splitlines() if line.strip())
    )


if __name__ == "__main__":
    sys.exit(main())
