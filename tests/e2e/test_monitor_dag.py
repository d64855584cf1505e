"""The monitor DAG through Airflow, from stable nights to a drift-triggered retrain.

One churn world (1,000 customers, 2026-01-01 .. 2026-07-04, seed 11): the champion is trained
as of 2026-04-30 (the retrain DAG has its own end-to-end test; here it is the library), every
night from 2026-05-01 is scored (the score DAG has its own). From 2026-06-30 (``DRIFT``) the
generator's covariate drift starts: customers keep 30 % of their sessions and new signups come
mostly from ``east``; the rules linking inputs to churn do not change.

* 60 stable nights (2026-05-01 .. 06-29), one ``monitor_churn`` run each: no request, and no
  rule broken on any night (every decision ``not_needed``).
* The first three drifting nights, under the real scheduler (``airflow standalone``): the drift
  night or the next emits ``retrain-request/churn`` (7-day features carry one drifted day of seven
  on the first night), the scheduler starts ``retrain_churn`` from it (trigger ``drift``, trained
  up to the requested night, judged by the gate), the nights after it are suppressed; the
  estimated AUC falls before any label of those nights could land.
* A backfill of two later drifting nights asks for nothing, and says why.

The test use case file is ``config/churn.yaml`` with one change, data: drift thresholds of 0.15
instead of Evidently's 0.1 for the numeric features and the score, for sampling noise: at 1,000 customers the normed Wasserstein
distance between two samples of the same day reaches about 0.09 (0.16 at 300); the default
suits populations of several thousand rows (the demo's 2,000 customers).
The tests run in file order.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from nightshift import scoring
from nightshift.demo.churn_data import DatagenSpec
from nightshift.modeling import registry, retrain
from nightshift.monitoring import DRIFT_DAILY, PERFORMANCE_DAILY, RETRAIN_REQUESTS
from nightshift.settings import PROJECT_ROOT
from nightshift.usecase import use_case_of
from tests.conftest import AirflowHarness, airflow_cli, airflow_standalone, create_backfill, wait_until
from tests.unit.test_features import World, build_world

pytestmark = pytest.mark.e2e
START = date(2026, 1, 1)
CHAMPION_DAY = date(2026, 4, 30)
STABLE = [date(2026, 5, 1) + timedelta(days=i) for i in range(60)]  # .. 2026-06-29
DRIFT = date(2026, 6, 30)
BACKFILLED = [date(2026, 7, 3), date(2026, 7, 4)]
LAST = BACKFILLED[-1]


def _test_config(root: Path) -> Path:
    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    churn = config / "churn.yaml"
    text = churn.read_text()
    for old, new in (("  sample_rows: 20000\n", "  sample_rows: 20000\n  num_threshold: 0.15\n  prediction_threshold: 0.15\n"),):
        assert old in text, old
        text = text.replace(old, new, 1)
    churn.write_text(text)
    return config


@pytest.fixture(scope="module")
def world(airflow_harness: AirflowHarness) -> Iterator[World]:
    root = Path(airflow_harness.env["NIGHTSHIFT_HOME"]).parent
    config = _test_config(root)
    airflow_harness.env["NIGHTSHIFT_CONFIG_DIR"] = str(config)
    spec = DatagenSpec(customers=1000, start=START, days=(LAST - START).days + 1, seed=11,
                       covariate_drift_start=DRIFT, covariate_session_keep=0.3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NIGHTSHIFT_CONFIG_DIR", str(config))
        for built in build_world(root, spec=spec):
            settings = built.settings
            trained = retrain.retrain(settings, "churn", CHAMPION_DAY, "manual")
            assert trained["promoted"], trained["report"]["reasons"]
            for offset in range((LAST - STABLE[0]).days + 1):
                scoring.score_day(settings, "churn", STABLE[0] + timedelta(days=offset))
            yield built


def _table(world: World, table: str) -> pd.DataFrame:
    frame = world.warehouse.read(table)
    return frame.assign(monitor_date=pd.to_datetime(frame["monitor_date"]).dt.date)


def test_sixty_stable_nights_request_nothing_and_break_no_rule(airflow_harness: AirflowHarness, world: World) -> None:
    states = airflow_harness.run("monitor_churn", STABLE[0], len(STABLE), conf={"run_checks": False})
    assert set(states.values()) == {"success"} and len(states) == 60, airflow_harness.outputs[-1][-4000:]
    # the last night again, with the dbt tests of the tables: a rerun replaces exactly that night
    assert airflow_harness.run("monitor_churn", STABLE[-1]) == {STABLE[-1]: "success"}, airflow_harness.outputs[-1][-4000:]

    requests = _table(world, RETRAIN_REQUESTS).set_index("monitor_date").sort_index()
    assert list(requests.index) == STABLE
    assert set(requests["decision"]) == {"not_needed"}, requests[requests["decision"] != "not_needed"][["decision", "reasons"]]
    drift = _table(world, DRIFT_DAILY)
    assert len(drift) == 60 * 17 and "tenure_days" not in set(drift["column_name"])  # 16 features + the score
    assert not drift.duplicated(["monitor_date", "column_name"]).any()
    false_alarms = drift[drift["drifted"]]
    print(f"drifted (feature, night) pairs over 60 stable nights: {len(false_alarms)} of {len(drift)}")
    assert false_alarms.empty, false_alarms[["monitor_date", "column_name", "statistic", "threshold"]]

    performance = _table(world, PERFORMANCE_DAILY)
    estimated = performance[(performance["kind"] == "estimated") & (performance["metric"] == "auc")]
    assert len(estimated) == 60 and (estimated["reference_value"] - estimated["value"]).abs().max() < 0.05
    # realized AUC appears once the first scored night's outcome has landed (30-day horizon + landing)
    realized = performance[(performance["kind"] == "realized") & (performance["metric"] == "auc") & performance["value"].notna()]
    assert min(realized["monitor_date"]) <= STABLE[0] + timedelta(days=36) and realized["labeled_rows"].gt(0).all()
    assert (realized["value"] - realized["reference_value"]).abs().max() < 0.05

    client = registry.connect(world.settings)
    champion = registry.champion_version(client, "churn")
    logged = {a.path for a in client.list_artifacts(champion.run_id, f"monitoring/churn/{STABLE[-1]}")}
    assert logged == {f"monitoring/churn/{STABLE[-1]}/drift_report.html"}
    report = Path(world.settings.artifacts_uri) / "monitoring" / "churn" / str(STABLE[0]) / "drift_report.html"
    assert report.stat().st_size > 10_000


def _runs(db: Path, dag_id: str, nights: list[date] | None = None) -> list[tuple[str, str, str]]:
    """(run id, run type, state) of ``dag_id``'s runs, oldest first; only those for ``nights`` if given."""
    with sqlite3.connect(db, timeout=30) as con:
        rows = con.execute("select run_id, run_type, state, substr(logical_date, 1, 10) from dag_run where dag_id = ? "
                           "order by id", (dag_id,)).fetchall()
    wanted = None if nights is None else {str(n) for n in nights}
    return [(run_id, kind, state) for run_id, kind, state, day in rows if wanted is None or day in wanted]


def test_drift_requests_one_retrain_that_the_scheduler_starts_and_the_gate_judges(
    airflow_harness: AirflowHarness, world: World
) -> None:
    db = airflow_harness.home / "airflow" / "airflow.db"
    nights = [DRIFT + timedelta(days=i) for i in range(3)]
    with airflow_standalone(airflow_harness) as env:
        for dag_id in ("monitor_churn", "retrain_churn"):
            airflow_cli(env, "dags", "unpause", dag_id)
        for night in nights:  # one after the other: monitor_churn runs one night at a time
            airflow_cli(env, "dags", "trigger", "monitor_churn", "--logical-date", f"{night}T00:00:00+00:00",
                        "--conf", json.dumps({"run_checks": False}))

        def finished() -> dict[str, list[str]]:
            return {"monitor_churn": [state for _, _, state in _runs(db, "monitor_churn", nights)],
                    "retrain_churn": [state for _, _, state in _runs(db, "retrain_churn")]}

        states = wait_until("the three monitor runs and the retrain they request to finish", finished,
                            lambda seen: seen["monitor_churn"] == ["success"] * 3
                            and len(seen["retrain_churn"]) == 1 and seen["retrain_churn"][0] in ("success", "failed"),
                            timeout=900, interval=5)
        assert states["retrain_churn"] == ["success"], (airflow_harness.home / "standalone.log").read_text()[-3000:]

    retrains = [run_type for _, run_type, _ in _runs(db, "retrain_churn")]
    assert retrains == ["asset_triggered"], "three drifting nights, one retrain"
    requests = _table(world, RETRAIN_REQUESTS).set_index("monitor_date").loc[nights]
    asked = requests[requests["decision"] == "requested"]
    assert len(asked) == 1, requests[["decision", "suppressed_by", "reasons"]]
    night = asked.index[0]
    assert night <= DRIFT + timedelta(days=1), f"requested on {night}: more than one day after the drift began"
    assert "critical feature sessions_7d drifted" in asked["reasons"].item()
    assert set(requests.loc[[d for d in nights if d < night], "decision"]) <= {"not_needed"}
    after = requests.loc[[d for d in nights if d > night]]
    assert set(after["decision"]) == {"suppressed"}, after[["decision", "suppressed_by"]]
    assert set(after["suppressed_by"]) <= {"retrain_active", "request_pending", "cooldown"}, after["suppressed_by"]

    with sqlite3.connect(db) as con:
        extras = [json.loads(e) for (e,) in con.execute(
            "select asset_event.extra from asset_event join asset on asset.id = asset_event.asset_id "
            "where asset.uri = 'retrain-request/churn'").fetchall()]
    assert [e["monitor_date"] for e in extras] == [str(night)]
    assert extras[0]["reasons"] == asked["reasons"].item().split("; ")
    assert any(t["rule"] == "critical_feature:sessions_7d" and t["value"] > t["threshold"] for t in extras[0]["triggers"])

    client = registry.connect(world.settings)
    experiment = client.get_experiment_by_name(registry.experiment_name(use_case_of(world.settings, "churn")))
    drift_runs = client.search_runs([experiment.experiment_id], "tags.`nightshift.trigger` = 'drift'")
    assert len(drift_runs) == 1
    run = drift_runs[0]
    assert run.data.params["run_date"] == str(night + timedelta(days=1)), "trained on data up to the requested night"
    assert "sessions_7d" in run.data.tags["nightshift.trigger_reasons"]
    assert run.data.tags["gate"] in ("passed", "failed") and run.data.tags["gate_reasons"]
    trail = registry.audit_trail(world.settings, "churn")
    answered = trail[trail["mlflow_run_id"] == run.info.run_id]
    assert len(answered) == 1 and answered["trigger"].item() == "drift"
    assert answered["action"].item() == ("promoted" if run.data.tags["gate"] == "passed" else "rejected")
    assert "sessions_7d" in answered["trigger_reasons"].item()
    print(f"drift retrain of {night}: gate {run.data.tags['gate']} ({run.data.tags['gate_reasons']})")

    # before any label of the drifting nights can land, the estimated AUC falls below every stable night's
    performance = _table(world, PERFORMANCE_DAILY)
    estimated = performance[(performance["kind"] == "estimated") & (performance["metric"] == "auc")].set_index("monitor_date")
    stable_low = estimated.loc[STABLE, "value"].min()
    assert estimated.loc[nights[-1], "value"] < stable_low, (estimated.loc[nights, "value"].tolist(), stable_low)
    realized = performance[(performance["kind"] == "realized") & (performance["monitor_date"] == nights[-1])]
    assert (pd.to_datetime(realized["last_scoring_date"]).dt.date < DRIFT).all(), "no drifting night has a label yet"


def test_a_backfill_over_drifting_nights_requests_nothing_and_says_why(
    airflow_harness: AirflowHarness, world: World
) -> None:
    db = airflow_harness.home / "airflow" / "airflow.db"
    # backfills are created before the scheduler starts: on SQLite, Airflow deletes the runs of a backfill whose
    # creation hit a locked DB, and a scheduler that already picked them up crashes (README, "Backfills on SQLite")
    airflow_cli(airflow_harness.env, "dags", "reserialize")
    create_backfill(airflow_harness.env, "monitor_churn", BACKFILLED[0], BACKFILLED[-1], "--run-on-latest-version")
    with airflow_standalone(airflow_harness):

        def backfill_states() -> list[str]:
            return [state for run_id, _, state in _runs(db, "monitor_churn") if run_id.startswith("backfill__")]

        states = wait_until("the two backfill runs of monitor_churn to finish", backfill_states,
                            lambda seen: len(seen) == 2 and all(s in ("success", "failed") for s in seen), timeout=900,
                            interval=5)
        assert states == ["success", "success"], (airflow_harness.home / "standalone.log").read_text()[-3000:]
    requests = _table(world, RETRAIN_REQUESTS).set_index("monitor_date")
    for night in BACKFILLED:
        row = requests.loc[night]
        assert row["decision"] == "suppressed" and row["suppressed_by"] == "backfill", row.to_dict()
        assert row["reasons"], "what would have triggered a retrain stays on record"
    assert [run_type for _, run_type, _ in _runs(db, "retrain_churn")] == ["asset_triggered"], "still one retrain"
