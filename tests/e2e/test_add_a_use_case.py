"""A use case is data: adding one changes no Python, and use cases are isolated.

On a copy of the repo, the demand use case's files (YAML, dbt models, Feast file, suites, its
entry in the released-services lock) are removed, then added back exactly as a data team would
add them, following the README's "Add a use case" walk-through. Then, through Airflow, with the
copy's own code: demand's sources are ingested, `features_demand`, `retrain_demand`,
`score_demand` and `monitor_demand` run, predictions land with the use case's own string keys,
and monitoring writes drift rows and regression metrics (RMSE, MAE) for them. `git diff` shows
that nothing under `plugins/nightshift/` or `dags/` changed.

Isolation, in the same copy: churn has no landed data at all and a broken population model, so
`features_churn` fails; demand's runs stay green, because each use case ingests per source,
builds only its own dbt models and applies only its own Feast file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from nightshift.airflow.runs import airflow_environment
from nightshift.settings import PROJECT_ROOT
from tests.conftest import copy_metadata_db

pytestmark = pytest.mark.e2e
START, DAYS = date(2026, 1, 1), 50
LAST = START + timedelta(days=DAYS - 1)
#: Every file of the demand use case, as listed in the README's walk-through.
DEMAND_FILES = [
    "config/demand.yaml",
    "feature_repo/demand.py",
    "expectations/stores.json",
    "expectations/products.json",
    "expectations/sales.json",
    "dbt/models/staging/demand",
    "dbt/models/features/demand",
    "dbt/models/populations/demand_population.sql",
    "dbt/models/populations/_demand_population.yml",
    "dbt/models/labels/demand_labels.sql",
    "dbt/models/labels/_demand_labels.yml",
    "dbt/models/marts/demand",
]
LOCK = "feature_repo/released_services.json"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=e2e@nightshift", "-c", "user.name=e2e", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


def copy_repo(target: Path) -> Path:
    """The repo's tracked files as they are in the working tree, committed in a fresh git repo."""
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True).stdout
    for name in files.splitlines():
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-qm", "the repo")
    return target


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the repo from which demand was removed and to which it was added back."""
    root = tmp_path_factory.mktemp("add_a_use_case")
    copy = copy_repo(root / "repo")
    fixture = root / "fixture"  # what the data team brings: the use case's files, kept aside
    for name in DEMAND_FILES:
        source = copy / name
        (fixture / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, fixture / name)
        shutil.rmtree(source) if source.is_dir() else source.unlink()
    lock = json.loads((copy / LOCK).read_text())
    released = lock.pop("demand_v1")
    (copy / LOCK).write_text(json.dumps(lock, indent=2) + "\n")
    git(copy, "add", "-A")
    git(copy, "commit", "-qm", "without the demand use case")
    assert not (copy / "config" / "demand.yaml").exists()

    # the walk-through: add every file, and release the feature service
    for name in DEMAND_FILES:
        source = fixture / name
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / name)
    (copy / LOCK).write_text(json.dumps({**lock, "demand_v1": released}, indent=2) + "\n")
    # churn is broken in this copy: its population model no longer compiles, and none of its data lands
    population = copy / "dbt" / "models" / "populations" / "churn_population.sql"
    population.write_text(population.read_text().replace("select distinct", "select distinct nonsense,"))
    yield copy


@pytest.fixture(scope="module")
def env(repo: Path, migrated_metadata_db: Path) -> dict[str, str]:
    """An Airflow + Nightshift environment that runs the copy's own code, DAGs and files."""
    home = repo.parent / "home"
    env = airflow_environment(home / "airflow")
    env.update({
        "PYTHONPATH": str(repo / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
        "NIGHTSHIFT_HOME": str(home / "state"),
    })
    for key in ("NIGHTSHIFT_LANDING_URI", "NIGHTSHIFT_WAREHOUSE_URI", "NIGHTSHIFT_ARTIFACTS_URI", "NIGHTSHIFT_MLFLOW_URI",
                "NIGHTSHIFT_CONFIG_DIR", "NIGHTSHIFT_EXPECTATIONS_DIR", "NIGHTSHIFT_DBT_MANIFEST"):
        env.pop(key, None)
    dbt = str(Path(sys.executable).parent / "dbt")
    subprocess.run([dbt, "parse", "--profiles-dir", ".", "--quiet"], cwd=repo / "dbt", check=True,
                   env={**env, "NIGHTSHIFT_WAREHOUSE_DIR": str(home / "state" / "warehouse")})
    copy_metadata_db(migrated_metadata_db, env)
    return env


def python(env: dict[str, str], code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def run(env: dict[str, str], dag_ids: list[str], day: date, days: int = 1) -> tuple[dict[tuple[str, str], str], str]:
    cmd = [sys.executable, "-m", "nightshift.airflow.runs", *dag_ids, "--start", day.isoformat(), "--days", str(days),
           "--rerun"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    states = {(line.split()[1], line.split()[2]): line.split()[3] for line in proc.stdout.splitlines() if line.startswith("RUN ")}
    assert states, proc.stdout[-3000:] + proc.stderr[-3000:]
    return states, proc.stdout + proc.stderr


def test_the_code_comes_from_the_copy(env: dict[str, str], repo: Path) -> None:
    out = python(env, "import nightshift.settings as s; print(s.PROJECT_ROOT)")
    assert out.strip() == str(repo)


def test_a_use_case_added_as_files_runs_through_airflow_and_changes_no_python(env: dict[str, str], repo: Path) -> None:
    # the history, ingested by the library with the copy's code; the last two days through the ingest DAGs
    python(env, f"""
from datetime import date, datetime, timedelta, timezone
from nightshift.demo.demand_data import DemandSpec, write_landing
from nightshift.ingest import configured_source, ingest_batch
from nightshift.settings import Settings
settings = Settings.from_env()
spec = DemandSpec(start=date.fromisoformat("{START}"), days={DAYS}, seed=11)
write_landing(spec, settings.landing_uri)
now = datetime.combine(spec.end + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=6)
for offset in range({DAYS - 2}):
    for source in ("stores", "products", "sales"):
        ingest_batch(settings, configured_source(settings, source), spec.start + timedelta(days=offset), now=now)
""")
    ingest = ["ingest_products", "ingest_sales", "ingest_stores"]
    states, log = run(env, ingest, LAST - timedelta(days=1), days=2)
    assert set(states.values()) == {"success"}, log[-4000:]

    # churn's runs fail (no data, a broken model); demand's stay green
    states, log = run(env, ["features_churn"], LAST)
    assert states == {("features_churn", LAST.isoformat()): "failed"}
    for dag_id in ("features_demand", "retrain_demand", "score_demand", "monitor_demand"):
        states, log = run(env, [dag_id], LAST)
        assert states == {(dag_id, LAST.isoformat()): "success"}, log[-6000:]

    out = python(env, f"""
from datetime import date
import pyarrow.parquet as pq
from nightshift.settings import Settings
from nightshift.warehouse import Warehouse, predictions_table
settings = Settings.from_env()
frame = Warehouse.from_uri(settings.warehouse_uri).read(predictions_table("demand"), {{"scoring_date": date.fromisoformat("{LAST}")}})
stored = pq.read_schema(settings.warehouse_dir / "tables" / "predictions" / "demand_daily" / "scoring_date={LAST}" / "part.parquet")
print(len(frame), stored.field("store_id").type, stored.field("product_id").type, frame["band"].isna().all(), sorted(set(frame["decile"])))
print(frame["store_id"].str.match(r"^S[0-9]+$").all(), frame["product_id"].str.match(r"^P[0-9]+$").all(), frame["score"].min() >= -1)
""")
    first, second = out.strip().splitlines()[-2:]
    rows, store_type, product_type, no_bands, deciles = first.split(" ", 4)
    assert int(rows) > 100 and store_type == product_type == "string" and no_bands == "True", "keys stored as text"
    assert deciles == str(list(range(1, 11)))
    assert second == "True True True"

    # monitoring of the regression use case: its drift rows and its regression metrics (no labels yet: estimated)
    out = python(env, f"""
from nightshift.settings import Settings
from nightshift.warehouse import Warehouse
warehouse = Warehouse.from_uri(Settings.from_env().warehouse_uri)
drift = warehouse.read("monitoring.drift_daily")
performance = warehouse.read("monitoring.performance_daily")
decision = warehouse.read("monitoring.retrain_requests")
print(sorted(set(drift["use_case"])), sorted(set(drift["kind"])), len(drift), str(drift["monitor_date"].iloc[0])[:10])
estimated = performance[performance["kind"] == "estimated"].set_index("metric")
print(sorted(estimated.index), bool((estimated["value"] > 0).all()), bool((estimated["reference_value"] > 0).all()))
print(decision["use_case"].item(), decision["decision"].item())
""")
    drift_line, performance_line, decision_line = out.strip().splitlines()[-3:]
    assert drift_line.startswith(f"['demand'] ['feature', 'prediction'] ") and drift_line.endswith(str(LAST)), drift_line
    assert performance_line == "['mae', 'rmse'] True True", performance_line
    assert decision_line.split()[0] == "demand" and decision_line.split()[1] in ("not_needed", "suppressed", "requested")

    changed = git(repo, "diff", "--stat", "HEAD")
    assert changed.strip(), "the use case's files were added"
    touched = [line.split("|")[0].strip() for line in changed.splitlines() if "|" in line]
    assert not [p for p in touched if p.startswith(("plugins/nightshift/", "dags/"))], touched
    untracked = git(repo, "ls-files", "--others", "--exclude-standard").split()
    assert not [p for p in untracked if p.startswith(("plugins/nightshift/", "dags/"))], untracked
    assert "config/demand.yaml" in untracked and "feature_repo/demand.py" in untracked
