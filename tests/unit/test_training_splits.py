"""Purged time splits, by known answer: no training or validation label is decided by an event of a
later split, and the label model's contract is enforced before training."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from nightshift.modeling import training

DAY0 = date(2026, 1, 1)


def days(n: int) -> list[date]:
    return [DAY0 + timedelta(days=i) for i in range(n)]


def test_splits_leave_a_gap_of_the_horizon_between_train_valid_and_holdout() -> None:
    # 20 days, holdout 3, valid 2, horizon 4: holdout 18..20, purge 14..17, valid 12..13, purge 8..11, train 1..7
    split = training.split_days(days(20), holdout_days=3, valid_days=2, gap_days=4)
    by = {name: [d.day for d, s in sorted(split.items()) if s == name] for name in ("train", "valid", "holdout", "purged")}
    assert by == {"train": [1, 2, 3, 4, 5, 6, 7], "valid": [12, 13], "holdout": [18, 19, 20],
                  "purged": [8, 9, 10, 11, 14, 15, 16, 17]}
    # the label of day D is decided by events in (D, D + horizon]: every such event precedes the next split
    horizon = timedelta(days=4)
    assert max(d for d, s in split.items() if s == "train") + horizon < min(d for d, s in split.items() if s == "valid")
    assert max(d for d, s in split.items() if s == "valid") + horizon < min(d for d, s in split.items() if s == "holdout")


def test_too_few_days_for_the_purged_splits_is_a_clear_error() -> None:
    with pytest.raises(training.TrainingDataError, match=r"10 days .* two purge gaps of 4 days .* needs 14\+ days"):
        training.split_days(days(10), holdout_days=3, valid_days=2, gap_days=4)


def test_without_purge_a_training_label_would_be_decided_inside_the_holdout() -> None:
    """What the gap prevents: with gap 0 the last training day's horizon reaches into the holdout."""
    unpurged = training.split_days(days(20), holdout_days=3, valid_days=2, gap_days=0)
    last_train = max(d for d, s in unpurged.items() if s == "train")
    first_holdout = min(d for d, s in unpurged.items() if s == "holdout")
    assert last_train + timedelta(days=4) >= first_holdout


def test_knowledge_cutoff_is_the_start_of_the_run_date() -> None:
    assert training.knowledge_cutoff(date(2026, 3, 1)).isoformat() == "2026-03-01T00:00:00+00:00"


def _labels_world(settings, rows: list[dict]) -> None:  # noqa: ANN001 - Settings
    from nightshift.warehouse import PartitionWrite, Warehouse

    Warehouse.from_uri(settings.warehouse_uri).replace_partitions(
        [PartitionWrite("labels.churn_labels", {"part": 0}, pd.DataFrame(rows))])


def _row(customer: int, day: int, known_day: int, label: int = 0) -> dict:
    return {"customer_id": customer, "as_of_date": DAY0 + timedelta(days=day), "label": label,
            "label_known_at": pd.Timestamp(DAY0 + timedelta(days=known_day))}


def test_a_label_known_before_its_day_ends_fails_the_retrain_naming_the_rows(settings) -> None:  # noqa: ANN001
    from nightshift.usecase import use_case_of

    _labels_world(settings, [_row(1, 0, 40), _row(7, 3, 3)])  # customer 7: known at the start of its own day
    with pytest.raises(training.LabelModelBroken, match=r"1 row\(s\) have label_known_at before the end.*'customer_id': 7"):
        training.known_labels(settings, use_case_of(settings, "churn"), DAY0 + timedelta(days=60))


def test_duplicate_keys_on_a_day_fail_the_retrain_naming_the_rows(settings) -> None:  # noqa: ANN001
    from nightshift.usecase import use_case_of

    _labels_world(settings, [_row(1, 0, 40), _row(1, 0, 40, label=1), _row(2, 0, 40)])
    with pytest.raises(training.LabelModelBroken, match=r"2 row\(s\) repeat keys \['customer_id'\].*'customer_id': 1"):
        training.known_labels(settings, use_case_of(settings, "churn"), DAY0 + timedelta(days=60))


def test_only_labels_known_by_the_start_of_the_run_date_are_used(settings) -> None:  # noqa: ANN001
    from nightshift.usecase import use_case_of

    _labels_world(settings, [_row(1, 0, 33), _row(2, 0, 34), _row(3, 1, 35)])
    known = training.known_labels(settings, use_case_of(settings, "churn"), DAY0 + timedelta(days=34))
    assert sorted(known["customer_id"]) == [1, 2], "known at the start of the run date counts; later does not"
