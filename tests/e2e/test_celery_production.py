"""The production profile for real: Airflow on the CeleryExecutor runs the daily chain of both use
cases over Postgres, Redis and S3, as `docker compose up` would, with processes instead of containers.

Started here as processes, each stopped by its PID (its process group) at the end: the scheduler,
the DAG processor, the API server, the triggerer, two Celery workers and an MLflow tracking server.

* Postgres (127.0.0.1:5432): Airflow's metadata DB and Celery's result backend, the warehouse (raw,
  quarantine, features, predictions, marts, Feast's SQL registry and offline store) and MLflow's
  backend store, three databases created for this module and dropped after it.
* Redis (127.0.0.1:6379): the Celery broker and Feast's online store, two databases of their own,
  emptied before and after.
* S3 (moto's server mode over HTTP): the landing zone, Nightshift's artifacts and MLflow's artifacts,
  in two buckets made for this module.

The history before day D (churn: 120 days, demand: 50) is landed on S3 and ingested by the library;
then, for D, each stage of the chain is triggered through Airflow's REST API with a JWT, for both use cases: every ingest DAG,
then features, retrain, score and monitor. A stage's DAGs are unpaused only while it runs, so no
Asset event starts the next stage early. The use-case files are the repo's, copied, with
`scoring.shards: 4` (so that the mapped `score_shard` tasks can land on both workers) and demand's
weekly retrain cron off (unpaused, it would start a retrain as of this week's tick, on no data).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from nightshift.airflow.local import LocalAirflow, local_airflow
from nightshift.airflow.runs import airflow_environment, ensure_metadata_db, free_port, poll_until
from nightshift.settings import PROJECT_ROOT
from tests.conftest import mlflow_server, postgres_database
from tests.production.conftest import s3_server  # noqa: F401 - a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.production("postgres", "redis")]

START = date(2026, 1, 1)
#: Days of history per use case, D being the last: churn's purged splits need 120 days (two 30-day
#: gaps, labels 32 days late); demand's, 50 (as in tests/e2e/test_add_a_use_case.py).
HISTORY = {"churn": 120, "demand": 50}
DAYS = {name: START + timedelta(days=days - 1) for name, days in HISTORY.items()}  # D of each use case
#: Redis databases of this module: Feast's online store and the Celery broker.
ONLINE_DB, BROKER_DB = 11, 12
SHARDS = 4
WORKERS = ("worker-1", "worker-2")
STAGES = ("features", "retrain", "score", "monitor")


@dataclass
class Production:
    """What the chain runs on: the environment of every process and the module's directory."""

    env: dict[str, str]
    home: Path


def python(env: dict[str, str], code: str, timeout: float = 1800) -> str:
    """Run ``code`` in a fresh interpreter with ``env``; fail with its output if it fails."""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout


def redis_flush(*databases: int) -> None:
    import redis

    for db in databases:
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def config_copy(target: Path) -> Path:
    """The repo's use-case files with four scoring shards, and no weekly retrain cron."""
    shutil.copytree(PROJECT_ROOT / "config", target)
    for path in target.glob("*.yaml"):
        text = re.sub(r"^(  shards:) 1$", rf"\1 {SHARDS}", path.read_text(), flags=re.MULTILINE)
        text = re.sub(r'^(  retrain:) "[^"]*"$', r"\1 null", text, flags=re.MULTILINE)
        assert f"shards: {SHARDS}" in text and "retrain: null" in text, path
        path.write_text(text)
    return target


def live_members(group: int) -> list[str]:
    """The processes of process group ``group`` still alive (zombies count as gone)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def drop_bucket(s3, bucket: str) -> None:  # noqa: ANN001 - a boto3 client
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, s3_server: dict[str, str]) -> Iterator[Production]:  # noqa: F811
    """Three Postgres databases, two Redis databases, two buckets and an MLflow server of this module's own."""
    import secrets
    import uuid

    import boto3
    from cryptography.fernet import Fernet

    root = tmp_path_factory.mktemp("celery_production")
    s3 = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"], region_name=s3_server["AWS_DEFAULT_REGION"],
                      aws_access_key_id=s3_server["AWS_ACCESS_KEY_ID"], aws_secret_access_key=s3_server["AWS_SECRET_ACCESS_KEY"])
    suffix = uuid.uuid4().hex[:8]
    landing, artifacts = f"landing-{suffix}", f"artifacts-{suffix}"
    with postgres_database("nightshift_e2e_airflow") as airflow_db, \
            postgres_database("nightshift_e2e_warehouse") as warehouse, \
            postgres_database("nightshift_e2e_mlflow") as mlflow_db:
        redis_flush(ONLINE_DB, BROKER_DB)
        for bucket in (landing, artifacts):
            s3.create_bucket(Bucket=bucket)
        mlflow_port = free_port()
        env = airflow_environment(root / "airflow", metadata_db=airflow_db.replace("postgresql://", "postgresql+psycopg2://"))
        for key in [k for k in env if k.startswith("NIGHTSHIFT_")]:
            env.pop(key)
        env.update(s3_server)
        env.update(
            MLFLOW_S3_ENDPOINT_URL=s3_server["AWS_ENDPOINT_URL"],
            NIGHTSHIFT_HOME=str(root / "state"),
            NIGHTSHIFT_LANDING_URI=f"s3://{landing}/landing",
            NIGHTSHIFT_WAREHOUSE_URI=warehouse,
            NIGHTSHIFT_ARTIFACTS_URI=f"s3://{artifacts}/artifacts",
            NIGHTSHIFT_MLFLOW_URI=f"http://127.0.0.1:{mlflow_port}",
            NIGHTSHIFT_REDIS_URL=f"redis://127.0.0.1:6379/{ONLINE_DB}",
            NIGHTSHIFT_CONFIG_DIR=str(config_copy(root / "config")),
            AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{BROKER_DB}",
            AIRFLOW__CELERY__RESULT_BACKEND=f"db+{airflow_db}",
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            # a task whose worker died is failed (and retried) after 60 s without a heartbeat, not 300
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="60",
        )
        with mlflow_server(mlflow_db, f"s3://{artifacts}/mlflow", root / "mlflow.log", env, port=mlflow_port) as (_, server):
            try:
                yield Production(env, root)
            finally:
                redis_flush(ONLINE_DB, BROKER_DB)
                for bucket in (landing, artifacts):
                    drop_bucket(s3, bucket)
        assert not live_members(server.pid), f"the MLflow server's processes outlived it: {live_members(server.pid)}"


@pytest.fixture(scope="module")
def history(production: Production) -> Production:
    """Both use cases landed on S3 up to their D, every day before D ingested by the library (Postgres)."""
    python(production.env, f"""
from datetime import date, datetime, timedelta, timezone
from nightshift.demo import churn_data, demand_data
from nightshift.ingest import configured_source, ingest_batch
from nightshift.settings import Settings
from nightshift.usecase import load_use_cases
settings = Settings.from_env()
start = date.fromisoformat("{START}")
churn = churn_data.DatagenSpec(customers=400, start=start, days={HISTORY["churn"]}, seed=11)
demand = demand_data.DemandSpec(start=start, days={HISTORY["demand"]}, seed=11)
churn_data.write_landing(churn, settings.landing_uri)
demand_data.write_landing(demand, settings.landing_uri)
use_cases = load_use_cases(settings.config_dir)
for name, spec in (("churn", churn), ("demand", demand)):
    now = datetime.combine(spec.start + timedelta(days=spec.days), datetime.min.time(), tzinfo=timezone.utc)
    for offset in range(spec.days - 1):
        for source in sorted(use_cases[name].sources):
            ingest_batch(settings, configured_source(settings, source), spec.start + timedelta(days=offset), now=now)
print("ingested")
""")
    return production


@pytest.fixture(scope="module")
def airflow(production: Production) -> Iterator[LocalAirflow]:
    """Airflow on Postgres with the CeleryExecutor: API server, DAG processor, scheduler, triggerer and
    two Celery workers; each stopped by its PID (process group) afterwards, and checked gone. (Started
    before the history is ingested: a component that cannot start fails the module in a minute.)"""
    env = production.env
    ensure_metadata_db(env)
    groups: list[int] = []
    with local_airflow(env, production.home / "logs", executor="CeleryExecutor") as airflow:
        airflow.start_scheduler()
        airflow.start_triggerer()
        workers = [airflow.start_celery_worker(name) for name in WORKERS]
        airflow.wait_for_celery_workers(workers)
        poll_until("the triggerer to heartbeat", airflow.health,
                   lambda h: ((h or {}).get("triggerer") or {}).get("status") == "healthy", timeout=180)  # type: ignore[union-attr]
        groups = [process.pid for process in airflow.processes.values()]
        assert len(groups) == 6, sorted(airflow.processes)
        yield airflow
    alive = {group: members for group in groups if (members := live_members(group))}
    assert not alive, f"processes outlived their stop: {alive}"


def failure_report(airflow: LocalAirflow, dag_id: str, run_id: str) -> str:
    """The failed tasks of a run, with the end of each one's log file."""
    lines = []
    for ti in airflow.api.task_instances(dag_id, run_id):
        if ti["state"] in ("success", "skipped"):
            continue
        lines.append(f"{dag_id} {ti['task_id']}[{ti['map_index']}] try {ti['try_number']}: {ti['state']} on {ti['hostname']}")
        logs = sorted((Path(airflow.env["AIRFLOW_HOME"]) / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id={ti['task_id']}/**/*.log"))
        if logs:
            lines.append(logs[-1].read_text()[-3000:])
    return "\n".join(lines)


def run_stage(airflow: LocalAirflow, what: str, dag_days: dict[str, date], timeout: float) -> dict[str, str]:
    """Trigger each DAG for its day through the REST API, unpause them while they run, wait; every run must succeed."""
    api = airflow.api
    dag_ids = list(dag_days)
    runs = {dag_id: api.trigger(dag_id, day) for dag_id, day in dag_days.items()}
    api.set_paused(dag_ids, False)
    try:
        states = api.wait_runs(what, runs, timeout)
    finally:
        api.set_paused(dag_ids, True)
    failed = [dag_id for dag_id, state in states.items() if state != "success"]
    assert not failed, f"{what}: {failed} failed\n" + "\n".join(failure_report(airflow, d, runs[d]) for d in failed)
    return runs


@pytest.fixture(scope="module")
def chain(airflow: LocalAirflow, history: Production) -> dict[str, str]:
    """D's daily chain of both use cases, stage by stage through the REST API; ``{dag_id: run_id}``."""
    from nightshift.airflow.runs import ingest_dag_ids
    from nightshift.settings import Settings

    settings = Settings.from_env(history.env)
    ingest = {dag_id: DAYS[name] for name in HISTORY for dag_id in ingest_dag_ids(settings.config_dir, [name])}
    every = [*ingest, *(f"{stage}_{name}" for stage in STAGES for name in HISTORY)]
    poll_until("the DAG processor to register every DAG", airflow.api.dag_ids, lambda seen: set(every) <= set(seen), timeout=300)

    runs = run_stage(airflow, "the ingest runs for D", ingest, timeout=900)
    for stage in STAGES:
        runs.update(run_stage(airflow, f"the {stage} runs for D", {f"{stage}_{name}": DAYS[name] for name in HISTORY},
                              timeout=1500))
    return runs


def test_the_daily_chain_of_both_use_cases_runs_on_two_celery_workers(
        airflow: LocalAirflow, history: Production, chain: dict[str, str]) -> None:
    use_cases, runs = list(HISTORY), chain

    # the mapped shards ran on both workers (the hostname each task instance recorded)
    ran_on: dict[str, set[str]] = {}
    for name in use_cases:
        shards = [ti for ti in airflow.api.task_instances(f"score_{name}", runs[f"score_{name}"]) if ti["task_id"] == "score_shard"]
        assert sorted(ti["map_index"] for ti in shards) == list(range(SHARDS)), shards
        assert all(ti["state"] == "success" for ti in shards)
        for ti in shards:
            ran_on.setdefault(ti["hostname"].split("@")[0], set()).add(f"{name}[{ti['map_index']}]")
    print("score_shard tasks per worker:", ran_on)
    assert set(ran_on) == set(WORKERS), f"the shards ran on {ran_on}, not on both workers {WORKERS}"

    # what the chain left on each backend
    out = python(history.env, f"""
from datetime import date
import boto3, redis
from mlflow import MlflowClient
from nightshift.settings import Settings
from nightshift.warehouse import Warehouse, predictions_table
settings = Settings.from_env()
warehouse = Warehouse.from_uri(settings.warehouse_uri)
for name, day in {{"churn": "{DAYS['churn']}", "demand": "{DAYS['demand']}"}}.items():
    scored = warehouse.read(predictions_table(name), {{"scoring_date": date.fromisoformat(day)}})
    client = MlflowClient(settings.mlflow_uri, settings.mlflow_uri)
    champion = client.get_model_version_by_alias(name, "champion")
    drift = warehouse.read("monitoring.drift_daily")
    print(name, len(scored), scored["score"].notna().all(), champion.version, len(drift[drift["use_case"] == name]) > 0)
bucket = settings.artifacts_uri.split("/")[2]
keys = [o["Key"] for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
print("s3", any(k.startswith("mlflow/") for k in keys))
print("redis", redis.Redis.from_url(settings.redis_url).dbsize() > 0)
""")
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines()[-4:])
    for name in use_cases:
        rows, complete, version, monitored = lines[name].split()
        assert int(rows) > 100 and complete == "True" and version == "1" and monitored == "True", lines[name]
    assert lines["s3"] == "True", "MLflow's artifacts are on S3"
    assert lines["redis"] == "True", "Feast's online store is on Redis"


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (from each process's parent in /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def scores_of(warehouse, use_case: str, day: date):  # noqa: ANN001, ANN201 - a Warehouse; a DataFrame
    """D's published predictions, by key, without the time they were written."""
    from nightshift.warehouse import predictions_table

    frame = warehouse.read(predictions_table(use_case), {"scoring_date": day})
    return frame.drop(columns=["scored_at"]).sort_values("customer_id", ignore_index=True)


def test_a_celery_worker_killed_mid_task_has_its_shard_retried_on_the_other_worker(
        airflow: LocalAirflow, history: Production, chain: dict[str, str]) -> None:
    """worker-1 dies (SIGKILL to it and every process it started) while it runs a shard of churn's
    score run for D, cleared as a user would clear it. The scheduler fails the task after the heartbeat
    timeout, the retry runs on worker-2, the run succeeds, and D's predictions equal the undisturbed run's."""
    import signal

    import pandas as pd

    from nightshift.warehouse import Warehouse, predictions_table

    api, dag_id, run_id, day = airflow.api, "score_churn", chain["score_churn"], DAYS["churn"]
    warehouse = Warehouse.from_uri(history.env["NIGHTSHIFT_WAREHOUSE_URI"])
    undisturbed = scores_of(warehouse, "churn", day)
    victim, survivor = WORKERS

    def running_on_victim() -> dict | None:
        shards = [ti for ti in api.task_instances(dag_id, run_id) if ti["task_id"] == "score_shard"]
        assert not shards or not all(ti["state"] == "success" and ti["try_number"] > 1 for ti in shards), \
            f"every shard finished before one ran on {victim}: {shards}"
        return next((ti for ti in shards if ti["state"] == "running" and ti["try_number"] > 1
                     and (ti["hostname"] or "").startswith(f"{victim}@")), None)

    cleared_at = pd.Timestamp.now(tz="UTC").tz_localize(None)  # scored_at is naive UTC
    api.clear_tasks(dag_id, run_id, ["score_shard", "publish"])
    api.set_paused([dag_id], False)
    try:
        shard = poll_until(f"a score_shard of the cleared run to run on {victim}", running_on_victim,
                           lambda ti: ti is not None, timeout=600, interval=0.2)
        worker = airflow.processes.pop(victim)
        killed = process_tree(worker.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # its group first: nothing forked meanwhile escapes
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL, f"{victim} was not killed"
        print(f"killed {victim} ({len(killed)} processes) while it ran score_shard[{shard['map_index']}], try {shard['try_number']}")
        states = api.wait_runs(f"the cleared {dag_id} run to finish without {victim}", {dag_id: run_id}, timeout=900)
    finally:
        api.set_paused([dag_id], True)
    assert states[dag_id] == "success", failure_report(airflow, dag_id, run_id)

    retried = next(ti for ti in api.task_instances(dag_id, run_id)
                   if ti["task_id"] == "score_shard" and ti["map_index"] == shard["map_index"])
    print("the killed shard:", {k: retried[k] for k in ("map_index", "state", "try_number", "hostname")})
    assert retried["state"] == "success" and retried["try_number"] == shard["try_number"] + 1, retried
    assert retried["hostname"].startswith(f"{survivor}@"), f"retried on {retried['hostname']}, not on {survivor}"
    assert not [pid for pid in killed if alive(pid)], "a killed process lives on"
    published = warehouse.read(predictions_table("churn"), {"scoring_date": day})
    assert (pd.to_datetime(published["scored_at"]) > cleared_at).all(), "the cleared run published D again"
    pd.testing.assert_frame_equal(scores_of(warehouse, "churn", day), undisturbed)
