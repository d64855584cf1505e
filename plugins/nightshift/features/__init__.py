"""Features: the dbt feature tables served through Feast, to training, scoring and the online store.

The public entry points of the stage; each lives in the module named beside it.
"""

from nightshift.features.builds import BuildPlan, days_to_build, record_build
from nightshift.features.dbt_project import (
    DBT_PROJECT,
    DbtFailed,
    external_tables,
    features_build,
    marts_build,
    prepare_dbt_tables,
    publish_dbt_tables,
    run_dbt,
)
from nightshift.features.readiness import (
    check_features_ready, features_event, population_of, ready_days, resolve_day,
)
from nightshift.features.skew import SkewDetected, SkewReport, check_skew
from nightshift.features.store import (
    EVENT_TIMESTAMP,
    FEATURE_REPO,
    FeatureDataMissing,
    MaterializeResult,
    apply_definitions,
    feature_names,
    feature_store,
    materialize,
    parse_definitions,
    training_frame,
    validate_schemas,
)

__all__ = [
    "DBT_PROJECT", "EVENT_TIMESTAMP", "FEATURE_REPO", "BuildPlan", "DbtFailed",
    "FeatureDataMissing", "MaterializeResult", "SkewDetected", "SkewReport", "apply_definitions",
    "check_features_ready", "check_skew", "external_tables", "feature_names", "features_build", "marts_build", "feature_store", "materialize",
    "parse_definitions", "days_to_build", "population_of", "record_build", "prepare_dbt_tables", "publish_dbt_tables", "features_event", "ready_days", "resolve_day", "run_dbt", "training_frame",
    "validate_schemas",
]
