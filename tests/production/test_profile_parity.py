"""The same generated days on both profiles give the same answers.

Once on the embedded default (local landing, DuckDB + Parquet, SQLite online store, MLflow on
SQLite) and once on the production profile (landing on S3 through moto's server, the warehouse,
Feast's registry and offline store on Postgres, the online store on Redis, MLflow's backend store
on Postgres with its artifacts on S3): the same batches, dirty rows included, are landed and
ingested, the features built and materialized, a model trained on the features and registered,
and the last day scored. Then:

* ``predictions.<use case>_daily`` of that day are equal within float tolerance (key by key);
* the quarantine of every source (rows and reasons) and ``meta.validation_runs`` (counts and
  reasons per batch) are equal exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from nightshift import scoring
from nightshift.demo.churn_data import SOURCES, DatagenSpec
from nightshift.warehouse import VALIDATION_RUNS, predictions_table, quarantine_table
from tests.conftest import postgres_database
from tests.production.test_features_production import redis_url  # noqa: F401 - a fixture
from tests.unit.test_features import DAYS, LAST, START, build_world
from tests.unit.test_scoring import LINEAGE, register_model

pytestmark = pytest.mark.production
SPEC = DatagenSpec(customers=80, start=START, days=DAYS, seed=5,
                   bad_rates={"null_required": 0.02, "out_of_range": 0.02, "unknown_category": 0.02,
                              "duplicate_key": 0.01, "uncoercible": 0.01})
#: Columns that say when or in which run a row was written, not what it holds.
WRITTEN = {"batch_id", "ingested_at", "validated_at", "files", *LINEAGE}


def outputs(world) -> dict[str, pd.DataFrame]:  # noqa: ANN001 - tests.unit.test_features.World
    """The day's predictions, every source's quarantine and the validation runs, sorted and without lineage."""
    warehouse = world.warehouse
    found = {"predictions": warehouse.read(predictions_table("churn"), {"scoring_date": LAST})}
    for source in SOURCES:
        found[f"quarantine.{source}"] = warehouse.read(quarantine_table(source))
    found["validation"] = warehouse.read(VALIDATION_RUNS)
    for name, frame in found.items():
        frame = frame.drop(columns=[c for c in frame.columns if c in WRITTEN])
        frame = frame[sorted(frame.columns)]
        found[name] = frame.astype("string").sort_values(list(frame.columns), ignore_index=True) \
            if name != "predictions" else frame.sort_values("customer_id", ignore_index=True)
    return found


def run_profile(root, env: dict[str, str]) -> dict[str, pd.DataFrame]:  # noqa: ANN001 - a path
    for world in build_world(root, env, spec=SPEC):
        register_model(world.settings, "champion")
        scoring.score_day(world.settings, "churn", LAST, airflow_run_id="parity")
        return outputs(world)
    raise AssertionError("build_world yielded nothing")


@pytest.fixture
def s3_profile(s3_bucket: str) -> Iterator[dict[str, str]]:
    """Landing, artifacts and MLflow's backend store of the production profile."""
    with postgres_database("nightshift_test_mlflow") as mlflow_db:
        yield {"NIGHTSHIFT_LANDING_URI": f"s3://{s3_bucket}/landing", "NIGHTSHIFT_ARTIFACTS_URI": f"s3://{s3_bucket}/artifacts",
               "NIGHTSHIFT_MLFLOW_URI": mlflow_db}


def test_both_profiles_publish_the_same_predictions_quarantine_and_validation(
    tmp_path, postgres_url: str, redis_url: str, s3_profile: dict[str, str]  # noqa: ANN001, F811
) -> None:
    embedded = run_profile(tmp_path / "embedded", {})
    production = run_profile(tmp_path / "production", {"NIGHTSHIFT_WAREHOUSE_URI": postgres_url,
                                                       "NIGHTSHIFT_REDIS_URL": redis_url, **s3_profile})
    assert set(embedded) == set(production)

    quarantined = sum(len(embedded[f"quarantine.{s}"]) for s in SOURCES)
    assert quarantined > 0, "the dirty rows were quarantined"
    assert len(embedded["predictions"]) > 50 and len(embedded["validation"]) == len(SOURCES) * DAYS
    for name in sorted(set(embedded) - {"predictions"}):
        pd.testing.assert_frame_equal(embedded[name], production[name], obj=name)

    left, right = embedded["predictions"], production["predictions"]
    assert left["customer_id"].tolist() == right["customer_id"].tolist()
    numeric = [c for c in left.columns if pd.api.types.is_float_dtype(left[c])]
    assert "score" in numeric
    for column in numeric:
        pd.testing.assert_series_equal(left[column].astype(float), right[column].astype(float), rtol=1e-9, atol=1e-12,
                                       obj=f"predictions.{column}")
    others = [c for c in left.columns if c not in numeric]
    pd.testing.assert_frame_equal(left[others].astype("string"), right[others].astype("string"), obj="predictions")
