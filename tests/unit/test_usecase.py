"""Use-case files: the shipped one loads, a second one needs no Python, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightshift.settings import PROJECT_ROOT
from nightshift.usecase import ConfigError, all_sources, load_use_case, load_use_cases

CHURN = (PROJECT_ROOT / "config" / "churn.yaml").read_text()


def test_shipped_churn_use_case_loads() -> None:
    use_cases = load_use_cases(PROJECT_ROOT / "config")
    churn = use_cases["churn"]
    assert churn.entity_key == "customer_id"
    assert churn.feature_service == "churn_v1"
    assert set(churn.sources) == {"customers", "activity", "cancellations"}
    for source in churn.sources.values():
        assert (PROJECT_ROOT / "expectations" / f"{source.suite}.json").exists()


def test_adding_a_use_case_is_adding_a_file(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(CHURN)
    upsell = CHURN.replace("name: churn", "name: upsell").replace("churn_v1", "upsell_v1")
    upsell = upsell.replace("  cancellations:\n    suite: cancellations\n    wait_hours: 6\n", "")
    (tmp_path / "upsell.yaml").write_text(upsell)
    use_cases = load_use_cases(tmp_path)
    assert set(use_cases) == {"churn", "upsell"}
    assert use_cases["upsell"].feature_service == "upsell_v1"
    assert set(all_sources(use_cases)) == {"customers", "activity", "cancellations"}


def test_sources_shared_by_two_use_cases_must_agree(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(CHURN)
    (tmp_path / "other.yaml").write_text(CHURN.replace("name: churn", "name: other").replace("wait_hours: 6", "wait_hours: 1"))
    with pytest.raises(ConfigError, match="configured differently"):
        all_sources(load_use_cases(tmp_path))


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda s: s.replace("feature_service: churn_v1\n", ""), r"missing required key\(s\) \['feature_service'\]"),
        (lambda s: s.replace("name: churn", "name: other"), "must match the file name"),
        (lambda s: s.replace("    wait_hours: 6\n", "    wait_hour: 6\n", 1), "unknown key"),
        (lambda s: "- just\n- a list\n", "a use case is a YAML mapping"),
    ],
)
def test_malformed_use_case_names_the_file_and_the_problem(tmp_path: Path, mutation, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "churn.yaml"
    path.write_text(mutation(CHURN))
    with pytest.raises(ConfigError, match=message) as info:
        load_use_case(path)
    assert str(path) in str(info.value)
