"""Training a challenger: the point-in-time training set, the purged time splits, LightGBM.

The training set is built only from what was known at the run date: the use case's population
rows joined to its label model's rows whose ``label_known_at`` had passed by the start of the run
date, and features through :func:`nightshift.features.training_frame` (the same Feast path scoring
uses). Splits are by day and purged: ``horizon_days`` lie between train and validation and between
validation and holdout, so no training label is decided by an event of a later split. This module
never talks to MLflow (see :mod:`nightshift.modeling.registry`) and never decides a promotion (see
:mod:`nightshift.modeling.evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nightshift.days import end_of_day
from nightshift.features.store import EVENT_TIMESTAMP
from nightshift.modeling.inputs import model_input
from nightshift.settings import Settings
from nightshift.usecase import UseCase

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

#: Columns of a training set besides the keys and the features.
LABEL = "label"
AS_OF_DATE = "as_of_date"
LABEL_KNOWN_AT = "label_known_at"
SPLITS = ("train", "valid", "holdout")


class TrainingDataError(ValueError):
    """The training set cannot be built or split; the message says what is missing."""


class LabelModelBroken(TrainingDataError):
    """The label model breaks its contract (a label known before its day ends, a key twice a day)."""


@dataclass(frozen=True)
class TrainingWindow:
    """The population days a training set covers, and the moment whose knowledge it uses."""

    run_date: date
    first_day: date
    last_day: date

    @property
    def cutoff(self) -> datetime:
        """Labels known by this moment (the start of the run date) may be used."""
        return knowledge_cutoff(self.run_date)

    def as_dict(self) -> dict[str, str]:
        return {"run_date": self.run_date.isoformat(), "first_day": self.first_day.isoformat(),
                "last_day": self.last_day.isoformat(), "labels_known_by": self.cutoff.isoformat()}


def knowledge_cutoff(run_date: date) -> datetime:
    """A retrain for run date R knows what was known at the start of R (the end of R - 1)."""
    return end_of_day(run_date - timedelta(days=1))


def known_labels(settings: Settings, use_case: UseCase, run_date: date) -> pd.DataFrame:
    """The label model's rows whose label was known by the start of ``run_date``, keys typed.

    Raises:
        LabelModelBroken: a label known before the end of its own day, or a key twice on a day;
            the message names the rows.
        TrainingDataError: the label model has not been built.
        WarehouseError: the label model exists but cannot be read (the task fails and retries;
            a failed read is never taken as "no labels").
    """
    import pandas as pd

    from nightshift.modeling.reads import read_if_exists
    from nightshift.warehouse import Warehouse

    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    labels = read_if_exists(warehouse, use_case.label_table, lambda: warehouse.read(use_case.label_table))
    if labels is None:
        raise TrainingDataError(
            f"label model {use_case.label_table} does not exist yet: run the `features_{use_case.name}` DAG "
            "(it builds the use case's dbt models) before retraining"
        )
    missing = [c for c in [*use_case.key_columns, AS_OF_DATE, LABEL, LABEL_KNOWN_AT] if c not in labels.columns]
    if missing:
        raise LabelModelBroken(f"label model {use_case.label_table} lacks column(s) {missing}: it must give the keys "
                               f"{use_case.key_columns}, {AS_OF_DATE}, {LABEL} and {LABEL_KNOWN_AT}")
    labels = _typed(labels, use_case)
    known_at = pd.to_datetime(labels[LABEL_KNOWN_AT], utc=True)
    day_end = pd.to_datetime(labels[AS_OF_DATE]).dt.tz_localize("UTC") + pd.Timedelta(days=1)
    early = labels[known_at < day_end]
    if len(early):
        raise LabelModelBroken(
            f"label model {use_case.label_table}: {len(early)} row(s) have {LABEL_KNOWN_AT} before the end of their "
            f"{AS_OF_DATE} (a label cannot be known before its day's features), e.g. "
            f"{early.head(5).to_dict('records')}. Fix dbt/models/labels/{use_case.label_model}.sql"
        )
    twice = labels[labels.duplicated([*use_case.key_columns, AS_OF_DATE], keep=False)]
    if len(twice):
        raise LabelModelBroken(
            f"label model {use_case.label_table}: {len(twice)} row(s) repeat keys {use_case.key_columns} on one "
            f"{AS_OF_DATE}, e.g. {twice.head(6).to_dict('records')}. Fix dbt/models/labels/{use_case.label_model}.sql"
        )
    return labels[known_at <= pd.Timestamp(knowledge_cutoff(run_date))].reset_index(drop=True)


def _typed(frame: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Keys in the use case's types and ``as_of_date`` as a date."""
    import pandas as pd

    frame = frame.astype(use_case.key_dtypes)
    frame[AS_OF_DATE] = pd.to_datetime(frame[AS_OF_DATE]).dt.date
    return frame


def labelled_population(settings: Settings, use_case: UseCase, run_date: date) -> tuple[pd.DataFrame, TrainingWindow]:
    """The population rows of the latest ``training.window_days`` days with known labels, labelled.

    Returns:
        ``<keys>, event_timestamp`` (end of the row's day), ``as_of_date`` and ``label``, sorted by
        day and keys, and the window it covers.
    Raises:
        TrainingDataError: no label known yet, or the population model does not exist yet.
        WarehouseError: a model exists but cannot be read; no day is ever dropped for it.
    """
    import pandas as pd

    from nightshift.modeling.reads import read_if_exists
    from nightshift.warehouse import Warehouse

    labels = known_labels(settings, use_case, run_date)
    if labels.empty:
        raise TrainingDataError(
            f"no label of {use_case.label_table} was known by {knowledge_cutoff(run_date):%Y-%m-%d %H:%M} UTC "
            f"(run date {run_date}, horizon {use_case.horizon_days} days): ingest at least window_days + "
            f"{use_case.horizon_days} days of history before training"
        )
    days = sorted(labels[AS_OF_DATE].unique())[-int(use_case.training.get("window_days", 60)):]
    window = TrainingWindow(run_date, days[0], days[-1])
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    population = read_if_exists(warehouse, use_case.population_table, lambda: warehouse.read_range(
        use_case.population_table, AS_OF_DATE, window.first_day, window.last_day))
    if population is None:
        raise TrainingDataError(f"population model {use_case.population_table} does not exist yet: run the "
                                f"`features_{use_case.name}` DAG before retraining")
    keys = [*use_case.key_columns, AS_OF_DATE]
    frame = _typed(population[keys].drop_duplicates(), use_case).merge(labels[[*keys, LABEL]], on=keys, how="inner")
    ends = {d: pd.Timestamp(end_of_day(d)) for d in frame[AS_OF_DATE].unique()}
    frame[EVENT_TIMESTAMP] = pd.to_datetime(frame[AS_OF_DATE].map(ends), utc=True)
    frame = frame.sort_values([AS_OF_DATE, *use_case.key_columns], ignore_index=True)
    return frame[[*use_case.key_columns, EVENT_TIMESTAMP, AS_OF_DATE, LABEL]], window


def build_training_set(settings: Settings, use_case: UseCase, run_date: date) -> tuple[pd.DataFrame, TrainingWindow]:
    """The labelled population joined point-in-time with the use case's feature service."""
    from nightshift.features import training_frame

    spine, window = labelled_population(settings, use_case, run_date)
    return training_frame(settings, use_case.feature_service, spine), window


def split_days(days: list[date], holdout_days: int, valid_days: int, gap_days: int) -> dict[date, str]:
    """``train`` / ``valid`` / ``holdout`` (or ``purged``) per day, the holdout the most recent.

    ``gap_days`` days are purged between train and valid and between valid and holdout: the label
    of a day D is decided by events in (D, D + horizon], so with a gap of ``horizon`` days no label
    of an earlier split is decided by an event of a later one.

    Raises:
        TrainingDataError: too few days for the three splits and the two gaps.
    """
    days = sorted(days)
    if not days:
        raise TrainingDataError("no days to split")
    last = days[-1]
    holdout_start = last - timedelta(days=holdout_days - 1)
    valid_end = holdout_start - timedelta(days=gap_days + 1)
    valid_start = valid_end - timedelta(days=valid_days - 1)
    train_end = valid_start - timedelta(days=gap_days + 1)
    split = {}
    for day in days:
        if day >= holdout_start:
            split[day] = "holdout"
        elif valid_start <= day <= valid_end:
            split[day] = "valid"
        elif day <= train_end:
            split[day] = "train"
        else:
            split[day] = "purged"
    if "train" not in split.values() or "valid" not in split.values():
        span = holdout_days + valid_days + 2 * gap_days + 1
        raise TrainingDataError(
            f"{len(days)} days ({days[0]}..{last}) cannot hold {holdout_days} holdout days, {valid_days} validation "
            f"days, two purge gaps of {gap_days} days (the label horizon) and at least one training day: that needs "
            f"{span}+ days. Land more history, raise training.window_days, or lower valid_days/holdout_days"
        )
    return split


def assign_splits(frame: pd.DataFrame, use_case: UseCase) -> pd.Series:
    """The split of each row of ``frame`` by its ``as_of_date`` (see :func:`split_days`)."""
    import pandas as pd

    split = split_days(list(frame[AS_OF_DATE].unique()), int(use_case.training.get("holdout_days", 7)),
                       int(use_case.training.get("valid_days", 5)), use_case.horizon_days)
    return pd.Series(frame[AS_OF_DATE].map(split).to_numpy(), index=frame.index)


def train_model(
    frame: pd.DataFrame, split: pd.Series, features: list[str], use_case: UseCase
) -> lgb.Booster:
    """LightGBM on the ``train`` rows, early-stopped on ``valid``; parameters and seed from config."""
    import lightgbm as lgb

    config = use_case.training
    categorical = [c for c in config.get("categorical", []) if c in features]
    seed = int(config.get("seed", 42))
    objective = "binary" if use_case.task == "binary" else "regression"
    params: dict[str, Any] = {"objective": objective, "verbosity": -1, **config.get("params", {}),
                              "seed": seed, "deterministic": True, "num_threads": int(config.get("num_threads", 0))}
    train = split == "train"
    valid = split == "valid"
    train_set = lgb.Dataset(model_input(frame[train], features, categorical), frame.loc[train, LABEL],
                            categorical_feature=categorical or "auto", free_raw_data=False)
    valid_set = lgb.Dataset(model_input(frame[valid], features, categorical), frame.loc[valid, LABEL],
                            reference=train_set, categorical_feature=categorical or "auto")
    return lgb.train(
        params,
        train_set,
        num_boost_round=int(config.get("num_boost_round", 500)),
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(int(config.get("early_stopping_rounds", 50)), verbose=False)],
    )
