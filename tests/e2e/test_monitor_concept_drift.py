"""Concept drift through the monitor DAG: the rules change, the inputs do not, and realized
performance catches it once labels that carry the change land: within a label horizon.

One churn world (1,000 customers, 2026-01-01 .. 2026-07-19, seed 11), the champion trained as of
2026-04-30 (the library; the retrain DAG has its own end-to-end test), every night from
2026-05-01 scored by the library. From 2026-06-12 (``CONCEPT``) the generator's concept drift
changes who churns (support tickets stop mattering, usage half as much, price much more) while
the overall churn rate, and so the inputs, stay about the same.

The expected delay is up to a label horizon. The label of night D says whether the customer
cancels within 30 days after D, and is known about 32 days after D. At night N the realized window
holds the 28 scored nights ending on N - 32, whose outcome windows reach N - 2: no label can carry
the change before ``CONCEPT + 2``; from then on the labels of the nights before the change carry
it in part (their outcome windows run into it), and by ``CONCEPT + 32`` the first night scored
under the new rules is labeled. Measured on this world: the realized AUC falls by
``max_auc_drop`` (0.05) and requests a retrain 21 days after the change. ``monitor_churn`` runs
through Airflow for every night from ``CONCEPT - 2`` to ``CONCEPT + 36``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from nightshift import scoring
from nightshift.demo.churn_data import DatagenSpec
from nightshift.modeling import retrain
from nightshift.monitoring import DRIFT_DAILY, PERFORMANCE_DAILY, RETRAIN_REQUESTS
from tests.conftest import AirflowHarness
from tests.e2e.test_monitor_dag import _table, _test_config
from tests.unit.test_features import World, build_world

pytestmark = pytest.mark.e2e
START = date(2026, 1, 1)
CHAMPION_DAY = date(2026, 4, 30)
CONCEPT = date(2026, 6, 12)
HORIZON = 30
MONITORED = [CONCEPT + timedelta(days=i) for i in range(-2, 37)]  # 2026-06-10 .. 07-18
LAST = MONITORED[-1] + timedelta(days=1)


@pytest.fixture(scope="module")
def world(airflow_harness: AirflowHarness) -> Iterator[World]:
    root = Path(airflow_harness.env["NIGHTSHIFT_HOME"]).parent
    config = _test_config(root)
    airflow_harness.env["NIGHTSHIFT_CONFIG_DIR"] = str(config)
    spec = DatagenSpec(customers=1000, start=START, days=(LAST - START).days + 1, seed=11, concept_drift_start=CONCEPT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NIGHTSHIFT_CONFIG_DIR", str(config))
        for built in build_world(root, spec=spec):
            trained = retrain.retrain(built.settings, "churn", CHAMPION_DAY, "manual")
            assert trained["promoted"], trained["report"]["reasons"]
            for offset in range((LAST - CHAMPION_DAY).days):
                scoring.score_day(built.settings, "churn", CHAMPION_DAY + timedelta(days=offset + 1))
            yield built


def test_concept_drift_is_caught_by_realized_auc_within_a_label_horizon(
    airflow_harness: AirflowHarness, world: World
) -> None:
    states = airflow_harness.run("monitor_churn", MONITORED[0], len(MONITORED), conf={"run_checks": False})
    assert set(states.values()) == {"success"} and len(states) == len(MONITORED), airflow_harness.outputs[-1][-4000:]

    requests = _table(world, RETRAIN_REQUESTS).set_index("monitor_date").sort_index()
    asked = requests[requests["decision"] == "requested"]
    assert len(asked), requests[["decision", "reasons"]]
    first = asked.index[0]
    delay = (first - CONCEPT).days
    print(f"concept drift from {CONCEPT}: first request on {first}, {delay} days later (label horizon {HORIZON})")
    assert set(requests.loc[[d for d in MONITORED if d < first], "decision"]) == {"not_needed"}
    assert 2 <= delay <= HORIZON + 6, f"{delay} days: no label could carry the change before 2 days, all do by 32"
    rules = [t["rule"] for t in json.loads(asked.loc[first, "triggers"])]
    assert rules == ["realized_auc_drop"], f"caught by the labels, not by the inputs: {rules}"

    performance = _table(world, PERFORMANCE_DAILY)
    auc = performance[performance["metric"] == "auc"].pivot_table(index="monitor_date", columns="kind", values="value")
    # the estimate sees no change (its calibration assumes the rules hold); the realized AUC does
    assert (auc["estimated"] - auc["estimated"].iloc[0]).abs().max() < 0.03, auc
    assert auc.loc[first, "realized"] < auc["realized"].iloc[0] - 0.05, auc
    drift = _table(world, DRIFT_DAILY)
    drifted = drift[drift["drifted"]]
    print(f"drifted (feature, night) pairs over {len(MONITORED)} nights: {len(drifted)} "
          f"{sorted(set(drifted['column_name']))}")
    assert (drifted.groupby("monitor_date").size() < 0.3 * 16).all(), "never the drift share"
