"""Purged time splits, by known answer: no training or validation label is decided by an event of a
later split, and the label model's contract is enforced before training. A read of the label or
population model that fails is an error (the task retries), never "no data"."""

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


class FlakyWarehouse:
    """The embedded warehouse, except that reads touching ``bad_day`` lose their connection (as a
    Postgres read does when the server drops it): the warehouse's own ``WarehouseError``."""

    def __init__(self, real, bad_day: date, table: str) -> None:  # noqa: ANN001 - a DuckDBWarehouse
        self.real, self.bad_day, self.table = real, bad_day, table

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the real warehouse
        return getattr(self.real, name)

    def _lost(self) -> None:
        from nightshift.warehouse import WarehouseError

        raise WarehouseError(f"cannot read {self.table}: server closed the connection unexpectedly")

    def read(self, table: str, partition=None):  # noqa: ANN001, ANN201
        if table == self.table:
            self._lost()
        return self.real.read(table, partition)

    def read_range(self, table: str, column: str, first, last):  # noqa: ANN001, ANN201
        if table == self.table and first <= self.bad_day <= last:
            self._lost()
        return self.real.read_range(table, column, first, last)


def _population_world(settings, days_: int) -> None:  # noqa: ANN001 - Settings
    """Labels (known 40 days later) and population rows of two customers on each of ``days_`` days."""
    from nightshift.warehouse import PartitionWrite, Warehouse

    _labels_world(settings, [_row(c, d, d + 40, label=c % 2) for d in range(days_) for c in (1, 2)])
    Warehouse.from_uri(settings.warehouse_uri).replace_partitions([
        PartitionWrite("populations.churn_population", {"as_of_date": DAY0 + timedelta(days=d)},
                       pd.DataFrame({"customer_id": [1, 2]}))
        for d in range(days_)
    ])


def _flaky(monkeypatch: pytest.MonkeyPatch, bad_day: date, table: str) -> None:
    from nightshift.warehouse import Warehouse

    real = Warehouse.from_uri
    monkeypatch.setattr(Warehouse, "from_uri", staticmethod(lambda uri: FlakyWarehouse(real(uri), bad_day, table)))


def test_a_population_read_that_fails_for_one_day_fails_the_retrain(settings, monkeypatch) -> None:  # noqa: ANN001
    from nightshift.usecase import use_case_of
    from nightshift.warehouse import WarehouseError

    use_case = use_case_of(settings, "churn")
    _population_world(settings, 10)
    run_date = DAY0 + timedelta(days=60)
    spine, _ = training.labelled_population(settings, use_case, run_date)
    assert spine["as_of_date"].nunique() == 10

    _flaky(monkeypatch, DAY0 + timedelta(days=4), use_case.population_table)
    with pytest.raises(WarehouseError, match=r"cannot read populations.churn_population.*not taken as missing data.*connection") as caught:
        training.labelled_population(settings, use_case, run_date)
    # train_challenger turns only TrainingDataError into "nothing to train on"; this must fail the task
    assert not isinstance(caught.value, training.TrainingDataError)


def test_a_label_read_that_fails_fails_the_retrain(settings, monkeypatch) -> None:  # noqa: ANN001
    from nightshift.usecase import use_case_of
    from nightshift.warehouse import WarehouseError

    use_case = use_case_of(settings, "churn")
    _population_world(settings, 3)
    _flaky(monkeypatch, DAY0, use_case.label_table)
    with pytest.raises(WarehouseError, match=r"cannot read labels.churn_labels.*not taken as missing data") as caught:
        training.build_training_set(settings, use_case, DAY0 + timedelta(days=60))
    assert not isinstance(caught.value, training.TrainingDataError)


def test_a_label_model_not_built_yet_is_missing_data_not_an_error(settings) -> None:  # noqa: ANN001
    from nightshift.usecase import use_case_of

    with pytest.raises(training.TrainingDataError, match=r"labels.churn_labels does not exist yet.*features_churn"):
        training.known_labels(settings, use_case_of(settings, "churn"), DAY0 + timedelta(days=60))
