"""The model's input matrix and predictions: the one typing of features, shared by training,
the gate and scoring (so a column is typed the same way on every side)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd


def model_input(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input matrix: ``features`` in order, categorical ones as pandas categories.

    Training and scoring both call this, so a column is typed the same way on both sides;
    LightGBM maps category values by name (stored in the model), not by code.
    """
    import pandas as pd

    matrix = frame[features].copy()
    for column in features:
        if column in categorical:
            matrix[column] = matrix[column].astype("string").astype("category")
        else:
            matrix[column] = pd.to_numeric(matrix[column], errors="coerce").astype("float64")
    return matrix


def predict(model: lgb.Booster, frame: pd.DataFrame, categorical: list[str]) -> Any:
    """The model's scores (probabilities or values) for ``frame``'s rows, using the model's own feature list."""
    features = model.feature_name()
    return model.predict(model_input(frame, features, [c for c in categorical if c in features]))
