"""Training a challenger: the point-in-time training set, the time-ordered split, LightGBM.

The training set is built only from what was known at each snapshot: features through
:func:`nightshift.features.training_frame` (the same Feast path scoring uses) and labels whose
outcome window had closed, from cancellations that had landed, by the run date. This module
never talks to MLflow (see :mod:`nightshift.modeling.registry`) and never decides a promotion (see
:mod:`nightshift.modeling.evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from nightshift.features.store import EVENT_TIMESTAMP
from nightshift.modeling.inputs import model_input
from nightshift.settings import Settings
from nightshift.usecase import UseCase

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

#: Columns of a training set besides the features.
LABEL = "label"
SNAPSHOT_DATE = "snapshot_date"
SPLITS = ("train", "valid", "holdout")


class TrainingDataError(ValueError):
    """The training set cannot be built or split; the message says what is missing."""


@dataclass(frozen=True)
class TrainingWindow:
    """The snapshot days a training set covers, and the run date whose knowledge it uses."""

    run_date: date
    first_day: date
    last_day: date

    def as_dict(self) -> dict[str, str]:
        return {"run_date": self.run_date.isoformat(), "first_day": self.first_day.isoformat(),
                "last_day": self.last_day.isoformat()}


def training_window(use_case: UseCase, run_date: date) -> TrainingWindow:
    """The latest ``window_days`` snapshot days whose outcome window closed by ``run_date``.

    A snapshot of day D is labelled by what happens in (D, D + horizon]; that is known only
    from the end of D + horizon, so the last usable day is ``run_date - horizon``.
    """
    horizon = int(use_case.label["horizon_days"])
    last_day = run_date - timedelta(days=horizon)
    first_day = last_day - timedelta(days=int(use_case.training.get("window_days", 60)) - 1)
    return TrainingWindow(run_date, first_day, last_day)


def label_spine(settings: Settings, use_case: UseCase, window: TrainingWindow) -> pd.DataFrame:
    """One row per entity per snapshot day in ``window``, with its label as known at the run date.

    Entities come from the use case's ``entity_source`` partitions (who was active on D).
    Label: the entity's first cancellation falls in (D, D + horizon]; only cancellations that
    had landed by the run date count, so no label comes from the future.

    Returns:
        ``<entity key>, event_timestamp`` (end of D, when D's features are known),
        ``snapshot_date`` and ``label`` (0/1), sorted by snapshot day and key.
    """
    import pandas as pd

    from nightshift.days import end_of_day
    from nightshift.warehouse import Warehouse, WarehouseError, raw_table

    key = use_case.entity_key
    warehouse = Warehouse.from_uri(settings.warehouse_uri)
    frames = []
    day = window.first_day
    while day <= window.last_day:
        try:
            active = warehouse.read(raw_table(use_case.entity_source), {"batch_date": day})
        except WarehouseError:
            active = None  # a day that was never ingested contributes no rows
        if active is not None and len(active):
            frames.append(pd.DataFrame({key: active[key].astype("int64").unique(), SNAPSHOT_DATE: day}))
        day += timedelta(days=1)
    if not frames:
        raise TrainingDataError(
            f"no {use_case.entity_source} snapshots between {window.first_day} and {window.last_day} "
            f"(run date {window.run_date}, horizon {use_case.label['horizon_days']} days): ingest at least "
            "window_days + horizon days of history before training"
        )
    spine = pd.concat(frames, ignore_index=True)

    label_source = use_case.label["source"]
    try:
        events = warehouse.read(raw_table(label_source))
    except WarehouseError:
        events = pd.DataFrame({key: [], "cancelled_at": [], "batch_date": []})
    landed = pd.to_datetime(events["batch_date"]).dt.date <= window.run_date
    first_event = (
        events[landed].assign(event_day=pd.to_datetime(events["cancelled_at"]).dt.date)
        .groupby(key)["event_day"].min()
    )
    event_day = spine[key].map(first_event)
    horizon = timedelta(days=int(use_case.label["horizon_days"]))
    after = event_day.notna() & (event_day > spine[SNAPSHOT_DATE])
    within = after & (event_day <= spine[SNAPSHOT_DATE] + horizon)
    spine[LABEL] = within.astype("int64")
    # end of each snapshot day, computed once per distinct day (not once per row)
    ends = {d: pd.Timestamp(end_of_day(d)) for d in spine[SNAPSHOT_DATE].unique()}
    spine[EVENT_TIMESTAMP] = pd.to_datetime(spine[SNAPSHOT_DATE].map(ends), utc=True)
    return spine[[key, EVENT_TIMESTAMP, SNAPSHOT_DATE, LABEL]].sort_values([SNAPSHOT_DATE, key], ignore_index=True)


def build_training_set(settings: Settings, use_case: UseCase, run_date: date) -> tuple[pd.DataFrame, TrainingWindow]:
    """The labelled spine joined point-in-time with the use case's feature service."""
    from nightshift.features import training_frame

    window = training_window(use_case, run_date)
    spine = label_spine(settings, use_case, window)
    return training_frame(settings, use_case.feature_service, spine), window


def assign_splits(frame: pd.DataFrame, use_case: UseCase) -> pd.Series:
    """``train`` / ``valid`` / ``holdout`` per row, by snapshot day: the holdout is the most recent.

    Raises:
        TrainingDataError: fewer distinct days than the three splits need.
    """
    import pandas as pd

    days = sorted(frame[SNAPSHOT_DATE].unique())
    holdout_days = int(use_case.training.get("holdout_days", 7))
    valid_days = int(use_case.training.get("valid_days", 5))
    if len(days) < holdout_days + valid_days + 1:
        raise TrainingDataError(
            f"{len(days)} snapshot days cannot be split into train, {valid_days} validation and "
            f"{holdout_days} holdout days; land more history or lower training.valid_days/holdout_days"
        )
    holdout_start = days[-holdout_days]
    valid_start = days[-(holdout_days + valid_days)]
    split = pd.Series("train", index=frame.index)
    split[frame[SNAPSHOT_DATE] >= valid_start] = "valid"
    split[frame[SNAPSHOT_DATE] >= holdout_start] = "holdout"
    return split


def train_model(
    frame: pd.DataFrame, split: pd.Series, features: list[str], use_case: UseCase
) -> lgb.Booster:
    """LightGBM on the ``train`` rows, early-stopped on ``valid``; parameters and seed from config."""
    import lightgbm as lgb

    config = use_case.training
    categorical = [c for c in config.get("categorical", []) if c in features]
    seed = int(config.get("seed", 42))
    params: dict[str, Any] = {"objective": "binary", "verbosity": -1, **config.get("params", {}),
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
