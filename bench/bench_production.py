"""Benchmark: the production profile against the embedded one, and sharded scoring on 1 and 2 Celery workers.

Two parts; each prints its report and adds its lines to the summary table (``record``).

**Part A: the nightly chain of day D, production profile vs embedded profile, on the same data.**
The same churn data (``nightshift.demo.churn_data``: ``--customers`` customers, default 3,000, over
``--history`` days, default 120, D being the last: churn's purged splits need about 120 days, two
30-day gaps and labels 32 days late) is landed and run through both profiles:

* embedded: local landing, DuckDB + Parquet warehouse, file Feast registry, SQLite online store,
  MLflow on SQLite, local artifacts;
* production: landing and artifacts on S3 (moto's server over HTTP, ``AWS_ENDPOINT_URL``), the
  warehouse, Feast's SQL registry and offline store on a Postgres database of the benchmark's own,
  Feast's online store on Redis db 9 (emptied before and after), MLflow's backend store on another
  Postgres database (its artifacts on S3).

Untimed setup, per profile, in a child (the two profiles' setups run at the same time): land every day, ingest every day before D (every source),
``dbt build`` of the features (full, recorded as a build through D-1 so that D's night builds D
alone), publish, Feast apply, materialize through D-1, and a first champion: the library's
``retrain`` as of D-7 (train, gate, register), so that the night's retrain is judged against a real
champion with a holdout and monitoring has its reference. Then one fresh child per profile times D's
chain, stage after stage, calling what the DAG tasks call:

* **ingest**: ``ingest.ingest_day(source, D)`` for every source (``ingest_<source>`` DAGs);
* **features**: ``resolve_day`` + ``prepare_dbt_tables`` (check_raw_data), ``days_to_build``
  (choose_days), ``run_dbt(features_build("churn"), days=…)`` (D alone; the DAG runs the same models
  through Cosmos, one dbt process per model: here one ``dbt build``), ``record_build`` +
  ``publish_dbt_tables`` + ``apply_definitions`` (feast_apply), ``materialize(D)`` and ``check_skew``;
* **retrain**: ``retrain.train_challenger(…, D, "manual")``, ``evaluate_challenger``,
  ``register_challenger`` (the three tasks of ``retrain_churn``); inside train, the library's steps
  (training set, LightGBM, MLflow logging) are timed by wrapping them during the call;
* **score**: ``scoring.score_day(…, D)`` (plan, score_shard, publish); the marts (dbt) are timed apart
  as ``score marts (dbt)``; the shadow task is not run (no ``challenger`` alias);
* **monitor**: ``monitoring.run.monitor_day(…, D)``; the DAG's ``checks`` task (dbt tests of the
  monitoring tables) is not run.

Importing the libraries is its own row (an Airflow task pays it in every task: here once per chain).
Airflow itself is not involved in part A. The report gives each stage's wall (cpu) seconds per profile
and the ratio production / embedded, and checks, as ``tests/production/test_profile_parity.py`` does,
that D's predictions agree between profiles (same customers, float columns within rtol 1e-9, the others
equal); the benchmark exits 1 when they do not.

**Part B: sharded scoring of ``--entities`` (default 1,000,000) on the production profile through Airflow's
CeleryExecutor, with 1 and then 2 Celery workers.** A child generates the data directly (as
``bench_score`` does, no datagen/ingest/dbt) into Postgres through ``Warehouse.replace_partitions``:
``--days`` days (default 2) of the two churn feature tables and D's population, the Feast definitions
applied (SQL registry and offline store on Postgres, online store Redis db 10), and a small champion
(200 trees x 15 leaves, trained on a sample) registered in MLflow on a Postgres backend (local artifacts).
The use-case files are a copy of ``config/`` with ``scoring.shards: --shards`` (default 4). Airflow 3 runs
as processes (``nightshift.airflow.local``): API server, DAG processor, scheduler and Celery workers
(concurrency 1 each), metadata DB on a Postgres database of the benchmark's own, broker Redis db 8.
``score_churn`` is triggered for D through the REST API (``build_marts: false``: the generated data has
no label model for the marts) with one worker, waited for (the run the scheduler makes by itself for
the latest daily interval when the DAG is unpaused is marked failed and deleted before ours starts: its
sensor would wait for hours on a worker); then a second worker is started, the run's
``score_shard`` and ``publish`` tasks are cleared and it is waited for again. Only ``score_churn`` is
unpaused while it runs. From the task instances' start and end dates: the span from the first
score_shard start to the last score_shard end, and to publish's end; throughput = entities / span.
A sampler in the parent reads ``/proc`` every half second: the cores the machine kept busy over each
span, and how that CPU split between Postgres (this benchmark's databases, the rest of the server), the
Celery workers (their task processes included, found by process tree), the scheduler, the other Airflow
processes, and processes that are not the benchmark's (anything else running on the machine). Both runs must publish one prediction per
entity and identical scores (exit 1 otherwise).

Every Postgres database, Redis database, S3 bucket and process the benchmark makes is dropped,
emptied or stopped at the end (processes by PID / process group).

Run it with ``.venv/bin/python bench/bench_production.py`` (``--customers 500 --entities 20000`` for a
quick one; ``--part a`` or ``--part b`` for one part). Needs Postgres on 127.0.0.1:5432 (user postgres,
or ``NIGHTSHIFT_TEST_POSTGRES_URL``) and Redis on 127.0.0.1:6379.
This is a measurement, not a test: it asserts nothing about the times it reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from _harness import _busy_cpu_seconds, record
from _harness import (
    TimeTable, add_stage_arguments, add_times, home_env, load_note, max_rss_mb, phase, run_stage, timed,
    work_directory,
)
from bench_score import LEAVES, TREES

BENCH = "bench_production"
USE_CASE = "churn"
# Part A: the first landed day; D is the last of --history days.
START = date(2026, 1, 1)
# The first champion of part A is trained as of D - this many days (the night's retrain is judged against it).
CHAMPION_LAG_DAYS = 7
# Part B: a fixed scoring day after the use case's start_date (2026-01-01): a run before it fails by design.
DAY_B = date(2026, 3, 31)
TRAIN_ROWS_B = 20_000
# Part B's feature tables, in the order bench_score.feature_rows returns a day's rows.
TABLES_B = {"activity": "features.customer_activity_daily", "profile": "features.customer_profile_daily"}
# Redis databases: part A's online store, part B's online store, part B's Celery broker.
REDIS_A, REDIS_B, BROKER_B = 9, 10, 8
PG_ADMIN = os.environ.get("NIGHTSHIFT_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
CHILD_ENV = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "FEAST_USAGE": "False",
             "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "False"}
STAGES = ("setup", "chain", "generate")
CHAIN = ("ingest", "features", "retrain", "score", "monitor")
PROFILES = ("embedded", "production")
# Columns that say when or in which run a prediction was written, not what it holds.
WRITTEN = {"scored_at", "airflow_run_id"}


# --- parent --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("a", "b", "both"), default="both", help="which part to run (default both)")
    parser.add_argument("--customers", type=int, default=3_000, help="part A: customers of the generated churn data (default 3,000)")
    parser.add_argument("--history", type=int, default=120, help="part A: landed days, D the last (default 120)")
    parser.add_argument("--entities", type=int, default=1_000_000, help="part B: entities scored (default 1,000,000)")
    parser.add_argument("--days", type=int, default=2, help="part B: days of feature rows up to D (default 2)")
    parser.add_argument("--shards", type=int, default=4, help="part B: scoring.shards (default 4)")
    parser.add_argument("--seed", type=int, default=7, help="data generator seed (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, homes)")
    add_stage_arguments(parser, STAGES)
    parser.add_argument("--profile-name", choices=PROFILES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage == "setup":
        _setup(args)
        return 0
    if args.stage == "chain":
        _chain(args)
        return 0
    if args.stage == "generate":
        _generate_b(args)
        return 0

    _require_services()
    started = time.perf_counter()
    ok = True
    with work_directory("nightshift-bench-production-", args.keep) as workdir:
        print(f"work directory {workdir}", flush=True)
        if args.part in ("a", "both"):
            ok &= _part_a(args, workdir)
        if args.part in ("b", "both"):
            ok &= _part_b(args, workdir)
    print(f"\nbench_production wall time: {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


def _require_services() -> None:
    """Exit with what to start when Postgres or Redis does not answer."""
    import psycopg2
    import redis

    try:
        psycopg2.connect(PG_ADMIN, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        raise SystemExit(f"bench_production needs Postgres at {urlparse(PG_ADMIN).hostname}:{urlparse(PG_ADMIN).port}"
                         f" ({' '.join(str(exc).split())}): start it (`.ci/run` shows how) or set "
                         "NIGHTSHIFT_TEST_POSTGRES_URL") from exc
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"bench_production needs Redis at 127.0.0.1:6379 ({exc}): start it, e.g. "
                         "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379`") from exc


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A fresh Postgres database ``<prefix>_<random>``, dropped (connections and all) on the way out."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield urlparse(PG_ADMIN)._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


def redis_flush(*databases: int) -> None:
    """Empty each Redis database of ``databases`` on 127.0.0.1:6379."""
    import redis

    for db in databases:
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 (a thread of this process); yields the AWS_* variables that reach it."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        server.stop()


def _stage_args(args: argparse.Namespace, stage: str, workdir: Path, profile: str | None = None) -> list[str]:
    out = ["--stage", stage, "--workdir", str(workdir), "--customers", str(args.customers), "--history",
           str(args.history), "--entities", str(args.entities), "--days", str(args.days), "--shards", str(args.shards),
           "--seed", str(args.seed)]
    return out + (["--profile-name", profile] if profile else [])


# --- part A: parent ------------------------------------------------------------------------


def _part_a(args: argparse.Namespace, workdir: Path) -> bool:
    day = START + timedelta(days=args.history - 1)
    print(f"\n== part A: the nightly chain of {day}, production vs embedded, {args.customers:,} customers, "
          f"{args.history} days ==", flush=True)
    import boto3

    results: dict[str, Any] = {}
    others: dict[str, list[float]] = {}
    setup_times: dict[str, list[float]] = {}
    with s3_server() as aws, postgres_database("nightshift_bench_warehouse") as warehouse, \
            postgres_database("nightshift_bench_mlflow") as mlflow_db:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name=aws["AWS_DEFAULT_REGION"],
                          aws_access_key_id=aws["AWS_ACCESS_KEY_ID"], aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket=bucket)
        redis_flush(REDIS_A)
        try:
            envs = {
                "embedded": home_env(workdir / "a-embedded", CHILD_ENV),
                "production": home_env(workdir / "a-production", {
                    **CHILD_ENV, **aws,
                    "NIGHTSHIFT_LANDING_URI": f"s3://{bucket}/landing",
                    "NIGHTSHIFT_ARTIFACTS_URI": f"s3://{bucket}/artifacts",
                    "NIGHTSHIFT_WAREHOUSE_URI": warehouse,
                    "NIGHTSHIFT_MLFLOW_URI": mlflow_db,
                    "NIGHTSHIFT_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_A}",
                }),
            }
            for env in envs.values():
                for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
                    env.pop(key, None)
            # Untimed, so both profiles' setups run at once (two cores; each is mostly one process).
            print(f"setup of both profiles at once: land {args.history} days, ingest {args.history - 1}, dbt build, "
                  "feast apply, materialize, first champion ...", flush=True)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(PROFILES)) as pool:
                futures = {profile: pool.submit(run_stage, __file__, _stage_args(args, "setup", workdir, profile),
                                                f"setup {profile}", log=workdir / f"a-setup-{profile}.log",
                                                env=envs[profile]) for profile in PROFILES}
                for profile, future in futures.items():
                    setup_times[profile] = future.result()
                    print(f"  {profile}: {setup_times[profile][0]:.0f} s", flush=True)
            for profile in PROFILES:
                print(f"the chain of {day} ({profile}) ...", flush=True)
                others[profile] = run_stage(__file__, _stage_args(args, "chain", workdir, profile), f"chain {profile}",
                                            log=workdir / f"a-chain-{profile}.log", env=envs[profile])
                results[profile] = json.loads((workdir / f"a-chain-{profile}.json").read_text())
        finally:
            redis_flush(REDIS_A)
            with contextlib.suppress(Exception):
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for item in page.get("Contents", []):
                        s3.delete_object(Bucket=bucket, Key=item["Key"])
                s3.delete_bucket(Bucket=bucket)
    agreement = _compare_profiles(workdir)
    print()
    print(_report_a(args, day, results, agreement, others, setup_times))
    return agreement["agree"]


def _compare_profiles(workdir: Path) -> dict[str, Any]:
    """D's predictions of both profiles, key by key, as the parity test compares them."""
    import numpy as np
    import pandas as pd

    left = pd.read_parquet(workdir / "a-pred-embedded.parquet")
    right = pd.read_parquet(workdir / "a-pred-production.parquet")
    out: dict[str, Any] = {"rows": [len(left), len(right)], "problems": []}
    if left["customer_id"].astype("int64").tolist() != right["customer_id"].astype("int64").tolist():
        out["problems"].append("different customers")
    elif set(left.columns) != set(right.columns):
        out["problems"].append(f"different columns {sorted(set(left.columns) ^ set(right.columns))}")
    else:
        numeric = [c for c in left.columns if pd.api.types.is_float_dtype(left[c])]
        diffs = {}
        for column in numeric:
            a, b = left[column].astype(float).to_numpy(), right[column].astype(float).to_numpy()
            if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                out["problems"].append(f"{column} differs")
            both = ~(np.isnan(a) | np.isnan(b))
            diffs[column] = float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0
        others = [c for c in left.columns if c not in numeric and c != "customer_id"]
        for column in others:
            if left[column].astype("string").fillna("<NA>").tolist() != right[column].astype("string").fillna("<NA>").tolist():
                out["problems"].append(f"{column} differs")
        out["max_abs_diff"] = diffs
    out["agree"] = not out["problems"]
    return out


def _report_a(args: argparse.Namespace, day: date, results: dict[str, Any], agreement: dict[str, Any],
              others: dict[str, list[float]], setup_times: dict[str, list[float]]) -> str:
    emb, prod = results["embedded"], results["production"]
    table = TimeTable(label_width=40, cell_width=19, ratio_width=10)
    lines = [
        f"Part A: the nightly chain of {day} (use case {USE_CASE}), {args.customers:,} customers, {args.history} days "
        f"landed (seed {args.seed}); one child per profile, stages in the order the DAGs run them",
        "embedded: local landing, DuckDB/Parquet, file registry, SQLite online store and MLflow; production: S3 (moto), "
        f"Postgres warehouse/registry/offline store, Redis db {REDIS_A}, MLflow on Postgres + S3 artifacts",
        "",
        *table.header("embedded", "production", ratio=("prod/emb", "wall")),
    ]

    def row(label: str, path: str) -> str:
        a, b = emb["times"].get(path), prod["times"].get(path)
        return table.line(label, table.cell(a), table.cell(b), table.ratio(b[0], a[0]) if a and b and a[0] else "")

    lines.append(row("import the libraries", "imports"))
    for stage in CHAIN:
        lines.append(row(stage, stage))
        for path in emb["times"]:
            if path.startswith(stage + "/"):
                lines.append(row("  " * path.count("/") + path.rsplit("/", 1)[1], path))
    total = {p: add_times(*(r["times"][s] for s in CHAIN)) for p, r in results.items()}
    lines.append(table.line("chain total (without imports)", table.cell(total["embedded"]), table.cell(total["production"]),
                            table.ratio(total["production"][0], total["embedded"][0])))
    lines.append(table.line("peak RSS of the child", table.megabytes(emb["peak_rss_mb"]), table.megabytes(prod["peak_rss_mb"])))
    lines.append(table.line("untimed setup (both at once; wall only)", f"{setup_times['embedded'][0]:>{table.cell_width - 2}.0f} s",
                            f"{setup_times['production'][0]:>{table.cell_width - 2}.0f} s"))
    lines.append("")
    for p, r in results.items():
        lines.append(f"{p}: ingest {r['ingested']}; dbt built {r['dbt_days'] or 'every day'} ({r['dbt_reason']}); "
                     f"materialized {r['materialized']}; skew {r['skew']}; retrain: {r['retrain']}; "
                     f"scored {r['scored']}; monitor: {r['monitor']}")
    ratio = total["production"][0] / total["embedded"][0]
    record(BENCH, f"nightly chain (ingest..monitor) production / embedded, wall, {args.customers:,} customers",
           f"{ratio:.2f}x", "-", None)
    for stage in CHAIN:
        a, b = emb["times"][stage][0], prod["times"][stage][0]
        record(BENCH, f"chain stage {stage}: production / embedded, wall", f"{b / a:.2f}x ({b:.1f} s vs {a:.1f} s)", "-", None)
    lines.append(f"chain production / embedded: {ratio:.2f}x wall ({total['production'][1] / total['embedded'][1]:.2f}x "
                 "cpu of the child; Postgres', Redis' and moto's CPU is not in the child's cpu, it is in the other-processes "
                 "figure below)")
    busy = {p: (cpu / wall if wall else float("nan")) for p, (wall, cpu) in others.items()}
    lines.append("cores kept busy by other processes during each chain child: "
                 + ", ".join(f"{p} {share:.2f}" for p, share in busy.items())
                 + " (production: Postgres, Redis, and moto's S3 server, a thread of the parent)")
    if agreement["agree"]:
        lines.append(f"predictions of {day}: AGREE between profiles ({agreement['rows'][0]:,} rows; max |difference| "
                     + ", ".join(f"{c} {v:.1e}" for c, v in agreement.get("max_abs_diff", {}).items()) + ")")
    else:
        lines.append(f"predictions of {day}: DISAGREE between profiles ({agreement['rows']} rows): "
                     + "; ".join(agreement["problems"]))
    record(BENCH, f"predictions of D agree between profiles (rtol 1e-9), {args.customers:,} customers",
           "yes" if agreement["agree"] else "NO", "yes", agreement["agree"])
    return "\n".join(lines)


# --- part A: children ------------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> None:
    """Land the history, ingest every day before D, build, apply, materialize to D-1, a first champion."""
    from nightshift import features
    from nightshift.demo.churn_data import DatagenSpec, write_landing
    from nightshift.ingest import configured_source, ingest_batch
    from nightshift.modeling import registry, retrain
    from nightshift.settings import Settings
    from nightshift.usecase import use_case_of

    settings = Settings.from_env()
    use_case = use_case_of(settings, USE_CASE)
    day = START + timedelta(days=args.history - 1)
    spec = DatagenSpec(customers=args.customers, start=START, days=args.history, seed=args.seed)
    t = time.perf_counter()
    write_landing(spec, settings.landing_uri)
    print(f"landed in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    for offset in range(args.history - 1):
        for source in sorted(use_case.sources):
            ingest_batch(settings, configured_source(settings, source), START + timedelta(days=offset))
    print(f"ingested in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    before = day - timedelta(days=1)
    features.prepare_dbt_tables(settings)
    plan = features.days_to_build(settings, use_case, before)
    features.run_dbt(settings, features.features_build(USE_CASE), days=plan.dbt_days)
    features.record_build(settings, plan, "bench-setup")
    features.publish_dbt_tables(settings)
    features.apply_definitions(settings, USE_CASE)
    features.materialize(settings, before)
    print(f"built, applied, materialized in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    first = retrain.retrain(settings, USE_CASE, day - timedelta(days=CHAMPION_LAG_DAYS), airflow_run_id="bench-setup")
    note = ""
    if not first["promoted"]:
        # The first challenger failed the gate: make its version champion anyway, so the night has one.
        client = registry.connect(settings)
        client.set_registered_model_alias(use_case.model_name, "champion", str(first["version"]))
        note = f" (gate {first['gate']}: {first.get('reasons')}; made champion by the benchmark)"
    print(f"first champion: version {first['version']}{note} in {time.perf_counter() - t:.1f} s", flush=True)
    Path(args.workdir, f"a-setup-{args.profile_name}.json").write_text(json.dumps({"champion": first["version"], "note": note}))


def _chain(args: argparse.Namespace) -> None:
    """D's chain, stage by stage as the DAG tasks call the library; each stage timed."""
    times: dict[str, list[float]] = {}
    with phase(times, "imports"):
        import lightgbm  # noqa: F401
        import mlflow  # noqa: F401
        import mlflow.lightgbm
        import pandas  # noqa: F401
        from feast import FeatureStore  # noqa: F401

        from nightshift import features, ingest, scoring
        from nightshift.modeling import retrain
        from nightshift.monitoring import run as monitoring
        from nightshift.settings import Settings
        from nightshift.usecase import use_case_of
        from nightshift.warehouse import Warehouse, predictions_table
        import evidently  # noqa: F401

    settings = Settings.from_env()
    use_case = use_case_of(settings, USE_CASE)
    day = START + timedelta(days=args.history - 1)
    start_rss_mb = max_rss_mb()
    facts: dict[str, Any] = {}

    with phase(times, "ingest"):
        summaries = [ingest.ingest_day(source, day) for source in sorted(use_case.sources)]
    facts["ingested"] = ", ".join(f"{s['source']} {s['accepted']}+{s['quarantined']}q" for s in summaries) \
        if all("source" in s for s in summaries) else f"{len(summaries)} sources"

    with phase(times, "features"):
        with phase(times, "features/check_raw_data + choose_days"):
            resolved = features.resolve_day(settings, use_case, [day])
            features.prepare_dbt_tables(settings)
            plan = features.days_to_build(settings, use_case, resolved)
        with phase(times, "features/dbt build (one process)"):
            features.run_dbt(settings, features.features_build(USE_CASE), days=plan.dbt_days)
        with phase(times, "features/record, publish, feast apply"):
            features.record_build(settings, plan, "bench")
            features.publish_dbt_tables(settings)
            views = features.apply_definitions(settings, USE_CASE)
        with phase(times, "features/materialize D"):
            materialized = features.materialize(settings, resolved, views)
        with phase(times, "features/skew_check"):
            skew = features.check_skew(settings, USE_CASE, resolved)
    facts.update(dbt_days=plan.dbt_days, dbt_reason=plan.reason, materialized=_short(materialized),
                 skew=_short(skew))

    # where the train task's time goes: the library's own steps, timed by wrapping them during the call
    from nightshift.modeling import training

    parts = {"retrain/train/build_training_set (labels + Feast historical)": (training, "build_training_set"),
             "retrain/train/train_model (LightGBM)": (training, "train_model"),
             "retrain/train/log params, importance (MLflow)": (retrain, "_log_training"),
             "retrain/train/log plots (MLflow)": (retrain, "_log_evaluation_plots"),
             "retrain/train/log holdout + reference frames (MLflow)": (retrain, "_log_frame"),
             "retrain/train/log_model (MLflow)": (mlflow.lightgbm, "log_model")}
    times.update({key: [0.0, 0.0] for key in ["retrain", "retrain/train", *parts]})  # the report's order
    originals = {key: getattr(owner, name) for key, (owner, name) in parts.items()}
    for key, (owner, name) in parts.items():
        setattr(owner, name, timed(originals[key], times[key]))
    with phase(times, "retrain"):
        with phase(times, "retrain/train"):
            try:
                trained = retrain.train_challenger(settings, USE_CASE, day, "manual")
            finally:
                for key, (owner, name) in parts.items():
                    setattr(owner, name, originals[key])
        with phase(times, "retrain/evaluate"):
            report = retrain.evaluate_challenger(settings, USE_CASE, trained["run_id"])
        with phase(times, "retrain/register"):
            registered = retrain.register_challenger(settings, USE_CASE, trained["run_id"], "manual", "bench")
    facts["retrain"] = (f"rows {trained.get('rows')}, gate {report['verdict']}, version {registered['version']}, "
                        f"promoted {registered['promoted']}")

    with phase(times, "score"):
        with phase(times, "score/score_day (plan, shards, publish)"):
            scored = scoring.score_day(settings, USE_CASE, day, airflow_run_id="bench")
        with phase(times, "score/marts (dbt)"):
            marts = features.days_to_build(settings, use_case, day, scope="marts", first_day=day)
            features.run_dbt(settings, features.marts_build(USE_CASE), days=marts.dbt_days)
            features.record_build(settings, marts, "bench")
            features.publish_dbt_tables(settings)
    facts["scored"] = _short(scored)

    with phase(times, "monitor"):
        decision = monitoring.monitor_day(settings, USE_CASE, day)
    facts["monitor"] = monitoring.summary(decision)
    peak_rss_mb = max_rss_mb()

    predictions = Warehouse.from_uri(settings.warehouse_uri).read(predictions_table(USE_CASE), {"scoring_date": day})
    predictions = predictions.drop(columns=[c for c in predictions.columns if c in WRITTEN])
    predictions = predictions[sorted(predictions.columns)].sort_values("customer_id", ignore_index=True)
    for column in predictions.columns:
        if predictions[column].dtype == object:
            predictions[column] = predictions[column].astype("string")
    predictions.to_parquet(Path(args.workdir, f"a-pred-{args.profile_name}.parquet"), index=False)
    Path(args.workdir, f"a-chain-{args.profile_name}.json").write_text(json.dumps(
        {"times": times, "start_rss_mb": start_rss_mb, "peak_rss_mb": peak_rss_mb, **facts}, default=str))


def _short(value: Any) -> str:
    """A result as one short line."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value):
        value = asdict(value)
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if not isinstance(v, (list, dict)) or len(str(v)) < 80}
    return json.dumps(value, default=str)[:300]


# --- part B: parent ------------------------------------------------------------------------


class CpuSampler(threading.Thread):
    """Every ``interval`` seconds: the machine's busy CPU seconds (``/proc/stat``) and the CPU seconds each
    group of processes has used (the increments of every live process's utime + stime since it was last seen;
    a short-lived process's last fraction of a second before it exits is missed)."""

    def __init__(self, groups: dict[int, str], databases: list[str], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.databases = databases  # this benchmark's Postgres databases (a backend's title names its database)
        self.groups = groups  # process group id -> name (each Airflow component is its own group)
        self.interval = interval
        self.samples: list[tuple[float, float, dict[str, float]]] = []
        self._seen: dict[int, float] = {}
        self._totals: dict[str, float] = {}
        self._halt = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _category(self, pid: int, comm: str, parents: dict[int, int]) -> str:
        if comm.startswith("postgres") or comm.startswith("postmaster"):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                title = ""
            if any(name in title for name in self.databases):
                return "postgres (this benchmark's databases)"
            return "postgres (other databases, server processes)"
        if comm.startswith("redis"):
            return "redis"
        # an Airflow component of ours, or a process it started (a Celery task's supervisor and task
        # processes may leave the worker's process group, never its process tree)
        ancestor, hops = pid, 0
        while ancestor > 1 and hops < 32:
            name = self.groups.get(ancestor)
            if name is not None:
                return "celery workers (and their task processes)" if name.startswith("worker") else name
            if ancestor == os.getpid():
                return "bench parent"
            ancestor, hops = parents.get(ancestor, 0), hops + 1
        return "other processes (not this benchmark's)"

    def sample(self) -> None:
        totals = self._totals
        found: dict[int, tuple[str, int, float]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            found[int(stat.parent.name)] = (text[text.index("(") + 1:text.rindex(")")], int(fields[1]),
                                             (int(fields[11]) + int(fields[12])) / self._tick)
        parents = {pid: ppid for pid, (_, ppid, _) in found.items()}
        for pid, (comm, _, cpu) in found.items():
            category = self._category(pid, comm, parents)
            previous = self._seen.get(pid)
            self._seen[pid] = cpu
            if previous is not None and cpu >= previous:
                totals[category] = totals.get(category, 0.0) + cpu - previous
        self.samples.append((time.time(), _busy_cpu_seconds(), dict(totals)))

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def between(self, first: float, last: float) -> tuple[float, dict[str, float]]:
        """Busy cores of the machine, and per group, between two epoch times (the nearest samples)."""
        before = min(self.samples, key=lambda s: abs(s[0] - first))
        after = min(self.samples, key=lambda s: abs(s[0] - last))
        wall = after[0] - before[0]
        if wall <= 0:
            return float("nan"), {}
        groups = {k: (after[2].get(k, 0.0) - before[2].get(k, 0.0)) / wall for k in after[2]}
        return (after[1] - before[1]) / wall, {k: v for k, v in sorted(groups.items(), key=lambda i: -i[1]) if v > 0.005}


def _part_b(args: argparse.Namespace, workdir: Path) -> bool:
    print(f"\n== part B: sharded scoring of {args.entities:,} entities on {DAY_B}, {args.shards} shards, "
          "CeleryExecutor with 1 then 2 workers ==", flush=True)
    home = workdir / "b"
    home.mkdir()
    config_dir = _sharded_config(home / "config", args.shards)
    outcome: dict[str, Any] = {}
    with postgres_database("nightshift_bench_warehouse") as warehouse, \
            postgres_database("nightshift_bench_mlflow") as mlflow_db, \
            postgres_database("nightshift_bench_airflow") as airflow_db:
        redis_flush(REDIS_B, BROKER_B)
        try:
            env = home_env(home / "home", {
                **CHILD_ENV,
                "NIGHTSHIFT_WAREHOUSE_URI": warehouse,
                "NIGHTSHIFT_MLFLOW_URI": mlflow_db,
                "NIGHTSHIFT_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_B}",
                "NIGHTSHIFT_ARTIFACTS_URI": str(home / "artifacts"),
                "NIGHTSHIFT_CONFIG_DIR": str(config_dir),
            })
            for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
                env.pop(key, None)
            print(f"generating {args.entities:,} entities x {args.days} days of features into Postgres, the Feast "
                  "definitions and a champion ...", flush=True)
            generated = run_stage(__file__, _stage_args(args, "generate", workdir), "generate",
                                  log=workdir / "b-generate.log", env=env)
            print(f"  {generated[0]:.0f} s", flush=True)
            meta = json.loads((workdir / "b-meta.json").read_text())
            outcome = _airflow_runs(args, home, env, airflow_db, warehouse, mlflow_db)
        finally:
            redis_flush(REDIS_B, BROKER_B)
    print()
    ok, text = _report_b(args, meta, outcome)
    print(text)
    return ok


def _sharded_config(target: Path, shards: int) -> Path:
    """A copy of config/ with churn's scoring.shards set (its start_date, 2026-01-01, precedes DAY_B)."""
    from nightshift.settings import PROJECT_ROOT

    shutil.copytree(PROJECT_ROOT / "config", target)
    path = target / f"{USE_CASE}.yaml"
    text = re.sub(r"^(  shards:) 1$", rf"\1 {shards}", path.read_text(), flags=re.MULTILINE)
    assert f"shards: {shards}" in text, path
    path.write_text(text)
    return target


def _airflow_runs(args: argparse.Namespace, home: Path, base: dict[str, str], airflow_db: str,
                  warehouse_uri: str, mlflow_uri: str) -> dict[str, Any]:
    """Airflow with the CeleryExecutor: score_churn for DAY_B on one worker, then cleared and run on two."""
    from cryptography.fernet import Fernet

    from nightshift.airflow.local import local_airflow
    from nightshift.airflow.runs import airflow_environment, ensure_metadata_db, poll_until

    env = airflow_environment(home / "airflow", base=base,
                              metadata_db=airflow_db.replace("postgresql://", "postgresql+psycopg2://"))
    env.update(
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{BROKER_B}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+{airflow_db}",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="120",
    )
    print("migrating Airflow's metadata DB (Postgres) ...", flush=True)
    ensure_metadata_db(env)
    dag_id = f"score_{USE_CASE}"
    runs: dict[str, Any] = {}
    sampler: CpuSampler | None = None
    with local_airflow(env, home / "airflow-logs", executor="CeleryExecutor") as airflow:
        airflow.start_scheduler()
        workers = [airflow.start_celery_worker("worker-1", concurrency=1)]
        airflow.wait_for_celery_workers(workers)
        poll_until("the DAG processor to register score_churn", airflow.api.dag_ids, lambda seen: dag_id in seen,
                   timeout=300)
        sampler = CpuSampler({p.pid: name for name, p in airflow.processes.items()},
                             [urlparse(u).path.lstrip("/") for u in (airflow_db, warehouse_uri, mlflow_uri)])
        sampler.start()
        api = airflow.api
        # Unpaused, the scheduler makes at once the run of the latest daily interval (catchup is off): not
        # ours, and its sensor would hold a worker for hours. It is deleted before ours is triggered.
        api.set_paused([dag_id], False)
        try:
            scheduled = poll_until("the scheduler's own run of score_churn", lambda: [
                r.run_id for r in api.runs(dag_id) if r.run_type == "scheduled"], bool, timeout=120)
        finally:
            api.set_paused([dag_id], True)
        for scheduled_run in scheduled:  # type: ignore[union-attr]
            _end_run(api, dag_id, scheduled_run)
        try:
            for workers_count in (1, 2):
                if workers_count == 2:
                    workers.append(airflow.start_celery_worker("worker-2", concurrency=1))
                    airflow.wait_for_celery_workers(workers)
                    sampler.groups.update({p.pid: name for name, p in airflow.processes.items()})
                    api.clear_tasks(dag_id, run_id, ["score_shard", "publish"])
                else:
                    run_id = api.trigger(dag_id, DAY_B, conf={"build_marts": False})
                print(f"score_churn {DAY_B} on {workers_count} worker(s) ...", flush=True)
                api.set_paused([dag_id], False)
                try:
                    for extra in [r.run_id for r in api.runs(dag_id) if r.run_id != run_id and r.state in ("queued", "running")]:
                        _end_run(api, dag_id, extra)
                    state = api.wait_runs(f"{dag_id} on {workers_count} worker(s)", {dag_id: run_id}, timeout=3600)[dag_id]
                finally:
                    api.set_paused([dag_id], True)
                tis = api.task_instances(dag_id, run_id)
                if state != "success":
                    raise SystemExit(f"{dag_id} {run_id} on {workers_count} worker(s): {state}; task instances: "
                                     + json.dumps([{k: t.get(k) for k in ('task_id', 'map_index', 'state', 'hostname')}
                                                   for t in tis]) + f"; logs under {home / 'airflow'}")
                runs[workers_count] = _spans(tis, sampler)
                runs[workers_count]["scores"] = _published(warehouse_uri, home / f"scores-{workers_count}.parquet")
                print(f"  shards span {runs[workers_count]['shard_span']:.1f} s, to publish's end "
                      f"{runs[workers_count]['publish_span']:.1f} s", flush=True)
        finally:
            sampler.stop()
    return runs


def _end_run(api: Any, dag_id: str, run_id: str) -> None:
    """Mark a run that is not ours failed (its unfinished tasks stop) and delete it."""
    api.call("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    api.call("DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", ok=(200, 204, 404, 409))
    print(f"ended run {run_id}: not this benchmark's (not measured)", flush=True)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _spans(tis: list[dict[str, Any]], sampler: CpuSampler) -> dict[str, Any]:
    """Spans from the task instances' dates; the CPU the machine and each group of processes used over them."""
    shards = [t for t in tis if t["task_id"] == "score_shard"]
    publish = [t for t in tis if t["task_id"] == "publish"]
    first = min(_epoch(t["start_date"]) for t in shards)
    last_shard = max(_epoch(t["end_date"]) for t in shards)
    published = max(_epoch(t["end_date"]) for t in publish)
    sampler.sample()
    busy, groups = sampler.between(first, last_shard)
    return {
        "shard_span": last_shard - first,
        "publish_span": published - first,
        "shards": [{"map_index": t["map_index"], "hostname": (t.get("hostname") or "").split("@")[0],
                    "seconds": _epoch(t["end_date"]) - _epoch(t["start_date"]), "try": t.get("try_number")}
                   for t in sorted(shards, key=lambda t: t["map_index"])],
        "publish_seconds": sum(_epoch(t["end_date"]) - _epoch(t["start_date"]) for t in publish),
        "busy_cores": busy,
        "groups": groups,
    }


def _published(warehouse_uri: str, path: Path) -> dict[str, Any]:
    """D's published predictions (customer_id, score), saved for the comparison; their row count."""
    from nightshift.warehouse import Warehouse, predictions_table

    frame = Warehouse.from_uri(warehouse_uri).read(predictions_table(USE_CASE), {"scoring_date": DAY_B})
    frame = frame[["customer_id", "score"]].sort_values("customer_id", ignore_index=True)
    frame.to_parquet(path, index=False)
    return {"rows": len(frame), "path": str(path)}


def _bounds(one: dict[str, Any], two: dict[str, Any], cores: int) -> str:
    """What bounds the 2-worker speed-up, in the numbers the sampler took."""
    workers, postgres = "celery workers (and their task processes)", "postgres (this benchmark's databases)"
    w1, p1 = one["groups"].get(workers, 0.0), one["groups"].get(postgres, 0.0)
    w2, p2 = two["groups"].get(workers, 0.0), two["groups"].get(postgres, 0.0)
    sum1, sum2 = (sum(s["seconds"] for s in run["shards"]) for run in (one, two))
    return (
        f"what bounds it: with 1 worker, over the shard span, the task processes kept {w1:.2f} cores busy on average and "
        f"Postgres {p1:.2f} ({w1 + p1:.2f} cores of work for one shard at a time; the machine was {one['busy_cores']:.2f} of "
        f"{cores} cores busy). Two shards "
        f"at a time would need about {2 * (w1 + p1):.2f} cores plus the scheduler's share; the machine has {cores}: with 2 "
        f"workers it ran {two['busy_cores']:.2f} of {cores} cores busy (task processes {w2:.2f}, Postgres {p2:.2f}), and "
        f"each shard took {sum2 / sum1:.2f}x as long on average (shard durations summed: {sum2:.1f} s vs {sum1:.1f} s). "
        "The workers, their Postgres backends (Feast's offline store joins, the staging writes), the scheduler, the API "
        "server and the DAG processor share the same cores; per-task fixed costs (task start, DAG file parse, imports, "
        f"model load) and the scheduler's gaps between tasks do not shrink with workers, and publish "
        f"({two['publish_seconds']:.1f} s) runs alone after the last shard. Groups are sampled from /proc every 0.5 s (a "
        "process's last fraction of a second before it exits is missed)."
    )


def _report_b(args: argparse.Namespace, meta: dict[str, Any], runs: dict[int, Any]) -> tuple[bool, str]:
    import numpy as np
    import pandas as pd

    one, two = runs[1], runs[2]
    a = pd.read_parquet(one["scores"]["path"])
    b = pd.read_parquet(two["scores"]["path"])
    same_keys = a["customer_id"].tolist() == b["customer_id"].tolist()
    identical = same_keys and np.array_equal(a["score"].to_numpy(), b["score"].to_numpy(), equal_nan=True)
    expected = meta["population"] - meta["errors_expected"]
    rows_ok = one["scores"]["rows"] == two["scores"]["rows"] == expected
    cores = os.cpu_count() or 1
    lines = [
        f"Part B: score_{USE_CASE} for {DAY_B} through Airflow (CeleryExecutor, Postgres metadata DB, Redis broker db "
        f"{BROKER_B}) on the production profile (Postgres warehouse/registry/offline store, Redis online db {REDIS_B}, "
        f"MLflow on Postgres); {meta['population']:,} entities in the population, {args.days} days of "
        f"{meta['activity_rows']:,} activity + {meta['profile_rows']:,} profile rows, {args.shards} shards, champion "
        f"{TREES} trees x {LEAVES} leaves; {cores} cores",
        "",
        f"{'':<62}{'1 worker':>12}{'2 workers':>12}{'2 / 1':>10}",
    ]

    def line(label: str, x: float, y: float, fmt: str, ratio: bool = True) -> str:
        return f"{label:<62}{format(x, fmt):>12}{format(y, fmt):>12}" + (f"{f'{y / x:.2f}x' if x else '':>10}" if ratio else "")

    entities = meta["population"]
    lines += [
        line("first shard start -> last shard end (s)", one["shard_span"], two["shard_span"], ".1f"),
        line("first shard start -> publish end (s)", one["publish_span"], two["publish_span"], ".1f"),
        line("throughput, shards (entities / s)", entities / one["shard_span"], entities / two["shard_span"], ",.0f"),
        line("throughput, to publish (entities / s)", entities / one["publish_span"], entities / two["publish_span"], ",.0f"),
        line("sum of shard task durations (s)", sum(s["seconds"] for s in one["shards"]),
             sum(s["seconds"] for s in two["shards"]), ".1f"),
        line("publish task (s)", one["publish_seconds"], two["publish_seconds"], ".1f"),
        line(f"machine busy cores over the shard span (of {cores})", one["busy_cores"], two["busy_cores"], ".2f"),
    ]
    for label in sorted(set(one["groups"]) | set(two["groups"]), key=lambda k: -(two["groups"].get(k, 0))):
        lines.append(line(f"  {label} (cores)", one["groups"].get(label, 0.0), two["groups"].get(label, 0.0), ".2f",
                          ratio=False))
    for n, run in ((1, one), (2, two)):
        lines.append(f"shards on {n} worker(s): " + ", ".join(
            f"[{s['map_index']}] {s['hostname']} {s['seconds']:.1f} s" for s in run["shards"]))
    speedup = one["shard_span"] / two["shard_span"]
    speedup_publish = one["publish_span"] / two["publish_span"]
    lines += [
        "",
        f"2 workers / 1 worker throughput: {speedup:.2f}x over the shards, {speedup_publish:.2f}x to publish's end "
        f"(ideal on {args.shards} shards and 2 workers: 2x)",
        _bounds(one, two, cores),
        f"published rows: {one['scores']['rows']:,} and {two['scores']['rows']:,} "
        f"(population {entities:,}, {meta['errors_expected']:,} of them with no feature row go to predictions errors; "
        f"expected {expected:,}): {'ok' if rows_ok else 'MISMATCH'}; scores identical between runs: "
        f"{'yes' if identical else 'NO'}",
    ]
    record(BENCH, f"sharded scoring, 2 / 1 Celery workers, throughput over the shards, {entities / 1e6:g}M entities, "
                  f"{args.shards} shards, {cores} cores", f"{speedup:.2f}x", "-", None)
    record(BENCH, "sharded scoring throughput, 1 and 2 workers (entities/s, first shard start to publish end)",
           f"{entities / one['publish_span']:,.0f} / {entities / two['publish_span']:,.0f}", "-", None)
    record(BENCH, "sharded runs publish the population and identical scores", "yes" if rows_ok and identical else "NO",
           "yes", rows_ok and identical)
    return rows_ok and identical, "\n".join(lines + load_note(os.getloadavg()[0]))


# --- part B: child -------------------------------------------------------------------------


def _generate_b(args: argparse.Namespace) -> None:
    """Feature tables, population, Feast definitions and a champion, written into the Postgres warehouse."""
    import numpy as np
    import pandas as pd

    from bench_score import customers_of, feature_rows, register_champion
    from nightshift import features
    from nightshift.settings import Settings
    from nightshift.usecase import use_case_of
    from nightshift.warehouse import PartitionWrite, Warehouse

    settings = Settings.from_env()
    use_case = use_case_of(settings, USE_CASE)
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    rng = np.random.default_rng(args.seed)
    first_day = DAY_B - timedelta(days=args.days - 1)
    people = customers_of(rng, args.entities, first_day)
    rows = {"activity": 0, "profile": 0}
    t = time.perf_counter()
    for offset in range(args.days):
        day = first_day + timedelta(days=offset)
        for (name, table), columns in zip(TABLES_B.items(), feature_rows(rng, people, day)):
            frame = pd.DataFrame({k: pd.array(v, dtype="string") if v.dtype == object else v for k, v in columns.items()})
            warehouse.replace_partitions([PartitionWrite(table, {"feature_date": day}, frame)])
            rows[name] += len(frame)
        print(f"features of {day} written ({time.perf_counter() - t:.0f} s)", flush=True)
    warehouse.replace_partitions([PartitionWrite(use_case.population_table, {"as_of_date": DAY_B},
                                                 pd.DataFrame({"customer_id": people.ids}))])
    features.apply_definitions(settings, USE_CASE)
    print(f"population written, definitions applied ({time.perf_counter() - t:.0f} s)", flush=True)

    train_day = DAY_B - timedelta(days=1) if args.days > 1 else DAY_B
    version, _ = register_champion(settings, use_case, people, rng, train_day, TRAIN_ROWS_B, args.seed)
    print(f"champion version {version.version} registered ({time.perf_counter() - t:.0f} s)", flush=True)
    Path(args.workdir, "b-meta.json").write_text(json.dumps({
        "population": args.entities, "errors_expected": int(people.unknown.sum()),
        "no_activity": int(people.no_activity.sum()), "activity_rows": rows["activity"],
        "profile_rows": rows["profile"], "model_version": str(version.version),
    }))

if __name__ == "__main__":
    sys.exit(main())
