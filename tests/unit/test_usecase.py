"""Use-case files: the shipped ones load, another needs no Python, mistakes are named at parse time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT
from nightshift.usecase import ConfigError, RunBeforeStart, all_sources, check_run_date, load_use_case, load_use_cases

CHURN = (PROJECT_ROOT / "config" / "churn.yaml").read_text()


def test_shipped_churn_use_case_loads() -> None:
    churn = load_use_cases(PROJECT_ROOT / "config")["churn"]
    assert churn.task == "binary" and churn.keys == {"customer_id": "int"}
    assert churn.key_dtypes == {"customer_id": "int64"}
    assert churn.population_table == "populations.churn_population" and churn.label_table == "labels.churn_labels"
    assert churn.horizon_days == 30 and churn.start_date == date(2026, 1, 1) and churn.catchup is False
    assert set(churn.sources) == {"customers", "activity", "cancellations"}


def test_adding_a_use_case_is_adding_a_file(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(CHURN)
    upsell = CHURN.replace("name: churn", "name: upsell")
    upsell = upsell.replace('  cancellations:\n    suite: cancellations\n    wait_hours: 6\n    pattern: "*.csv"\n', "")
    assert "cancellations:" not in upsell
    (tmp_path / "upsell.yaml").write_text(upsell)
    use_cases = load_use_cases(tmp_path)
    assert set(use_cases) == {"churn", "upsell"}
    assert set(all_sources(use_cases)) == {"customers", "activity", "cancellations"}


def test_two_use_cases_configuring_a_source_differently_fail_naming_both_files(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(CHURN)
    (tmp_path / "other.yaml").write_text(CHURN.replace("name: churn", "name: other").replace("wait_hours: 6", "wait_hours: 1"))
    with pytest.raises(ConfigError, match="configured differently") as info:
        load_use_cases(tmp_path)
    assert str(tmp_path / "churn.yaml") in str(info.value) and str(tmp_path / "other.yaml") in str(info.value)


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda s: s.replace("feature_service: churn_v1\n", ""), r"missing required key\(s\) \['feature_service'\]"),
        (lambda s: s.replace("name: churn", "name: other"), "must match the file name"),
        (lambda s: s.replace("    wait_hours: 6\n", "    wait_hour: 6\n", 1), "unknown key"),
        (lambda s: "- just\n- a list\n", "a use case is a YAML mapping"),
        (lambda s: s.replace("task: binary", "task: ranking"), r"task: 'ranking' is not one of \['binary', 'regression'\]"),
        (lambda s: s.replace("customer_id: int", "customer_id: uuid"), "keys: give one or more join keys"),
        (lambda s: s.replace("start_date: 2026-01-01", "start_date: soon"), "start_date: 'soon' is not a date"),
        # the names of dbt models, feature services and suites are checked, naming what exists
        (lambda s: s.replace("population: churn_population", "population: churn_pop"),
         r"population: 'churn_pop' is not a dbt model; dbt/models/populations/ has \[.*'churn_population'"),
        (lambda s: s.replace("model: churn_labels", "model: churn_lbl"),
         r"label.model: 'churn_lbl' is not a dbt model; dbt/models/labels/ has \[.*'churn_labels'"),
        (lambda s: s.replace("feature_service: churn_v1", "feature_service: churn_v9"),
         r"feature_service: 'churn_v9' is not defined in feature_repo/ \(defined: \[.*'churn_v1'"),
        (lambda s: s.replace("suite: activity", "suite: activities"), r"no expectations/activities.json \(have \["),
    ],
)
def test_malformed_use_case_names_the_file_the_key_and_what_exists(tmp_path: Path, mutation, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "churn.yaml"
    path.write_text(mutation(CHURN))
    with pytest.raises(ConfigError, match=message) as info:
        load_use_case(path)
    assert str(path) in str(info.value)


def test_a_run_before_the_start_date_fails_naming_the_date_and_the_setting() -> None:
    churn = load_use_cases(PROJECT_ROOT / "config")["churn"]
    check_run_date("score_churn", date(2026, 1, 1), [churn])  # the start date itself is fine
    with pytest.raises(RunBeforeStart) as info:
        check_run_date("score_churn", date(2025, 12, 31), [churn])
    message = str(info.value)
    assert "2025-12-31" in message and "start_date 2026-01-01" in message and "churn.yaml" in message
