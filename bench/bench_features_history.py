"""Benchmark: a nightly features run costs the day, not the history (30, 90 and 365 days).

What is measured: the churn use case's dbt run of the features DAG (staging views, the two
feature models, the population and the label model, and their tests), for tonight's day, over
raw histories of 30, 90 and 365 days landed before it. Each history is its own home: one
ingested year of demo data (``--customers``, default 400), with raw partitions older than the
history removed. In each home:

* **full rebuild** (the baseline, and what every night cost before day partitions): ``dbt build``
  of every day, as a data team's first build or a ``full_refresh`` run does;
* **nightly run**: the features DAG's plan for tonight (:func:`nightshift.features.days_to_build`:
  tonight alone), ``dbt build`` of those days, the build recorded.

Each is a fresh interpreter; wall time, CPU time (this process and dbt's) and peak RSS (the
larger of the stage and the dbt process it ran) are reported. Target: the nightly run at 365 days
within ±25 % of the one at 30 days, in time and in peak RSS. A check first asserts that the
nightly run's tables equal the full rebuild's (365-day home).

Run it with ``.venv/bin/python bench/bench_features_history.py``. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from _harness import add_stage_arguments, home_env, load_note, record, run_stage, work_directory

HISTORIES = (30, 90, 365)
START = date(2025, 1, 1)
TONIGHT = START + timedelta(days=max(HISTORIES))
TARGET_SPREAD = 0.25


def _ingest(customers: int) -> None:
    """Land and ingest a year of churn data and tonight's day, as the ingest DAG does each morning."""
    from nightshift.demo.churn_data import DatagenSpec, write_landing
    from nightshift.ingest import configured_source, ingest_batch
    from nightshift.settings import Settings

    settings = Settings.from_env()
    write_landing(DatagenSpec(customers=customers, start=START, days=max(HISTORIES) + 1, seed=8), settings.landing_uri)
    for offset in range(max(HISTORIES) + 1):
        day = START + timedelta(days=offset)
        now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=6)
        for source in ("customers", "activity", "cancellations"):
            ingest_batch(settings, configured_source(settings, source), day, now=now)


def _trim(home: Path, history: int) -> None:
    """Remove the raw partitions (and their validation records) landed before ``history`` days ago."""
    first = TONIGHT - timedelta(days=history)
    tables = home / "warehouse" / "tables"
    for folder in [*tables.glob("raw/*/batch_date=*"), *tables.glob("quarantine/*/batch_date=*"),
                   *tables.glob("meta/validation_runs/**/batch_date=*")]:
        if date.fromisoformat(folder.name.split("=", 1)[1]) < first:
            shutil.rmtree(folder)


def _build(workdir: Path, stage: str) -> None:
    """One measured dbt run in this home: ``full`` (every day) or ``nightly`` (tonight's plan)."""
    from nightshift import features
    from nightshift.settings import Settings
    from nightshift.usecase import use_case_of

    settings = Settings.from_env()
    use_case = use_case_of(settings, "churn")
    started, cpu = time.perf_counter(), time.process_time()
    if stage == "full":
        plan = features.days_to_build(settings, use_case, TONIGHT - timedelta(days=1), full_refresh=True)
    else:
        plan = features.days_to_build(settings, use_case, TONIGHT)
    features.run_dbt(settings, features.features_build("churn"), days=plan.dbt_days)
    features.record_build(settings, plan)
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    (workdir / f"{stage}.json").write_text(json.dumps({
        "wall": wall, "cpu": time.process_time() - cpu + children.ru_utime + children.ru_stime,
        "rss_mb": max(own.ru_maxrss, children.ru_maxrss) / 1024, "days": plan.dbt_days or "all",
    }))


def _tables(workdir: Path) -> None:
    """The built tables of this home, for the parity check."""
    import pandas as pd

    from nightshift.settings import Settings
    from nightshift.warehouse import Warehouse

    warehouse = Warehouse.from_uri(Settings.from_env().warehouse_uri)
    out = {}
    for table, keys in {"features.customer_activity_daily": ["customer_id", "feature_date"],
                        "features.customer_profile_daily": ["customer_id", "feature_date"],
                        "populations.churn_population": ["customer_id", "as_of_date"],
                        "labels.churn_labels": ["customer_id", "as_of_date"]}.items():
        frame = warehouse.read(table).sort_values(keys).reset_index(drop=True)
        out[table] = pd.util.hash_pandas_object(frame[sorted(frame.columns)], index=False).sum().item() % (1 << 61), len(frame)
    (workdir / "tables.json").write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=400, help="customers of the demo data (default 400)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    add_stage_arguments(parser, ("ingest", "full", "nightly", "tables"))
    args = parser.parse_args(argv)
    if args.stage == "ingest":
        _ingest(args.customers)
        return 0
    if args.stage in ("full", "nightly"):
        _build(args.workdir, args.stage)
        return 0
    if args.stage == "tables":
        _tables(args.workdir)
        return 0

    with work_directory("nightshift-bench-history-", args.keep) as workdir:
        year = workdir / "year"
        print(f"landing and ingesting {max(HISTORIES) + 1} days of churn data for {args.customers:,} customers ...",
              flush=True)
        run_stage(__file__, ["--stage", "ingest", "--workdir", str(year), "--customers", str(args.customers)],
                  "ingest", log=workdir / "ingest.log", env=home_env(year / "state", {}))
        results: dict[int, dict[str, dict]] = {}
        for history in HISTORIES:
            home = workdir / f"h{history}"
            shutil.copytree(year / "state", home / "state", ignore=shutil.ignore_patterns("dbt"))
            _trim(home / "state", history)
            env = home_env(home / "state", {})
            results[history] = {}
            for stage in ("full", "nightly"):
                print(f"{history} days of history: {stage} run ...", flush=True)
                run_stage(__file__, ["--stage", stage, "--workdir", str(home)], f"{stage} {history}",
                          log=home / f"{stage}.log", env=env)
                results[history][stage] = json.loads((home / f"{stage}.json").read_text())
            if history == max(HISTORIES):
                run_stage(__file__, ["--stage", "tables", "--workdir", str(home)], "tables", env=env)
                nightly_tables = json.loads((home / "tables.json").read_text())
                run_stage(__file__, ["--stage", "full", "--workdir", str(home)], "full again", log=home / "full2.log", env=env)
                run_stage(__file__, ["--stage", "tables", "--workdir", str(home)], "tables", env=env)
                parity = nightly_tables == json.loads((home / "tables.json").read_text())
        print()
        print(_report(results, parity, args.customers))
        return 0 if parity else 1


def _report(results: dict[int, dict[str, dict]], parity: bool, customers: int) -> str:
    lines = [f"churn features, {customers:,} customers: one dbt run of the features DAG per history",
             "", f"{'history':<10}{'full rebuild':>26}{'nightly run':>26}{'days built':>26}"]
    for history, stages in results.items():
        full, nightly = stages["full"], stages["nightly"]
        lines.append(f"{history:>4} days  {full['wall']:>8.1f} s {full['cpu']:>6.1f} cpu {full['rss_mb']:>4.0f} MB"
                     f"{nightly['wall']:>8.1f} s {nightly['cpu']:>6.1f} cpu {nightly['rss_mb']:>4.0f} MB"
                     f"{nightly['days']:>26}")
    low, high = results[min(HISTORIES)]["nightly"], results[max(HISTORIES)]["nightly"]
    time_ratio, rss_ratio = high["wall"] / low["wall"], high["rss_mb"] / low["rss_mb"]
    full_ratio = results[max(HISTORIES)]["full"]["wall"] / results[min(HISTORIES)]["full"]["wall"]
    met_time, met_rss = abs(time_ratio - 1) <= TARGET_SPREAD, abs(rss_ratio - 1) <= TARGET_SPREAD
    lines += ["", f"nightly run, {max(HISTORIES)} over {min(HISTORIES)} days: time {time_ratio:.2f}x "
                  f"({'met' if met_time else 'MISSED'}), peak RSS {rss_ratio:.2f}x ({'met' if met_rss else 'MISSED'}); "
                  f"target within ±{TARGET_SPREAD:.0%}. The full rebuild grew {full_ratio:.2f}x.",
              f"parity: the nightly run's tables {'equal' if parity else 'DIFFER FROM'} a full rebuild's "
              f"({max(HISTORIES)} days)"]
    record("bench_features_history", f"nightly features run, {max(HISTORIES)} / {min(HISTORIES)} days of history, time",
           f"{time_ratio:.2f}x", f"within ±{TARGET_SPREAD:.0%}", met_time)
    record("bench_features_history", f"nightly features run, {max(HISTORIES)} / {min(HISTORIES)} days of history, peak RSS",
           f"{rss_ratio:.2f}x", f"within ±{TARGET_SPREAD:.0%}", met_rss)
    record("bench_features_history", "nightly run's tables vs a full rebuild", "equal" if parity else "differ",
           "equal", parity)
    lines += load_note(os.getloadavg()[0])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
