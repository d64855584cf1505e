"""Concept drift through the monitor DAG: the inputs do not move, the rules do, and only realized
performance can tell, once the labels of the drifting nights land.

One churn world (1,000 customers, 2026-01-01 .. 2026-06-29, seed 11), the champion trained as of
2026-04-30 (the library; the retrain DAG has its own end-to-end test), every night from
2026-05-01 scored by the library. From 2026-05-10 (``CONCEPT``) the generator's concept drift
changes who churns (support tickets stop mattering, usage half as much, price much more) while
the inputs keep their distributions.

The expected delay is the label horizon: churn's label of night D is known 30 days after D plus
the landing of the cancellations, so no rule can see the drift before ``CONCEPT + 30``; the
realized window (28 scoring days ending on the latest labeled one) then needs some drifting
nights in it before its AUC falls by ``max_auc_drop`` (0.05). ``monitor_churn`` runs through
Airflow for the nights ``CONCEPT + 28`` .. ``CONCEPT + 50``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
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
CONCEPT = date(2026, 5, 10)
HORIZON = 30
MONITORED = [CONCEPT + timedelta(days=28 + i) for i in range(23)]  # 2026-06-07 .. 06-29
LAST = MONITORED[-1]


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


def test_concept_drift_is_caught_by_realized_auc_once_the_labels_land(airflow_harness: AirflowHarness, world: World) -> None:
    states = airflow_harness.run("monitor_churn", MONITORED[0], len(MONITORED), conf={"run_checks": False})
    assert set(states.values()) == {"success"} and len(states) == len(MONITORED), airflow_harness.outputs[-1][-4000:]

    drift = _table(world, DRIFT_DAILY)
    assert not drift[drift["kind"] == "feature"]["drifted"].any(), "the inputs did not move"
    requests = _table(world, RETRAIN_REQUESTS).set_index("monitor_date").sort_index()
    asked = requests[requests["decision"] != "not_needed"]
    assert len(asked), requests[["decision", "reasons"]]
    first = asked.index[0]
    delay = (first - CONCEPT).days
    print(f"concept drift from {CONCEPT}: first request on {first}, {delay} days later (label horizon {HORIZON})")
    assert first >= CONCEPT + timedelta(days=HORIZON), "no label of a drifting night could have landed before"
    assert delay <= HORIZON + 2 + 14, "at most two weeks of drifting nights in the realized window"
    row = asked.iloc[0]
    assert row["decision"] == "requested" and "realized auc of version 1" in row["reasons"], row.to_dict()
    assert "realized_auc_drop" in row["triggers"]

    performance = _table(world, PERFORMANCE_DAILY)
    auc = performance[performance["metric"] == "auc"].pivot_table(index="monitor_date", columns="kind", values="value")
    # the estimate sees no change (its calibration assumes the rules hold); the realized AUC does
    assert (auc["estimated"] - auc["estimated"].iloc[0]).abs().max() < 0.03, auc
    assert auc.loc[first, "realized"] < auc["realized"].iloc[0] - 0.03, auc
    realized = performance[(performance["kind"] == "realized") & (performance["monitor_date"] == first)]
    assert (pd.to_datetime(realized["last_scoring_date"]).dt.date >= CONCEPT).all()
