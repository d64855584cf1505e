"""Feast definitions: the customer entity, its feature views and the versioned feature services.

Data teams edit this file (and dbt/models/features/). A model pins the exact feature set it
was trained on by its feature service's name: never change a released service; add
`churn_v2` instead. README.md walks through adding a feature.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field
from feast.types import Float64, String
from feast.value_type import ValueType

from sources import feature_table_source

# The customer, the entity every churn feature describes and every prediction is about.
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A subscription customer.",
    tags={"owner": "data-platform"},
)

# Daily rolling activity features, built by dbt model customer_activity_daily.
customer_activity_source = feature_table_source(
    "customer_activity_daily", "Rolling activity per customer per day (end of day)."
)

# Rolling usage, spend and support features; a day's row is valid for three days.
customer_activity_fv = FeatureView(
    name="customer_activity",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=[
        Field(name="sessions_7d", dtype=Float64),
        Field(name="sessions_28d", dtype=Float64),
        Field(name="minutes_7d", dtype=Float64),
        Field(name="minutes_28d", dtype=Float64),
        Field(name="spend_7d", dtype=Float64),
        Field(name="spend_28d", dtype=Float64),
        Field(name="support_tickets_7d", dtype=Float64),
        Field(name="support_tickets_28d", dtype=Float64),
        Field(name="active_days_7d", dtype=Float64),
        Field(name="active_days_28d", dtype=Float64),
        Field(name="plan_changes_28d", dtype=Float64),
        Field(name="days_since_last_activity", dtype=Float64),
    ],
    source=customer_activity_source,
    online=True,
    tags={"owner": "growth-analytics", "dbt_model": "customer_activity_daily"},
)

# Daily profile snapshot, built by dbt model customer_profile_daily.
customer_profile_source = feature_table_source(
    "customer_profile_daily", "Customer profile per snapshot day (end of day)."
)

# Plan, region, channel, price and tenure as of the day's snapshot.
customer_profile_fv = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=[
        Field(name="plan", dtype=String),
        Field(name="region", dtype=String),
        Field(name="channel", dtype=String),
        Field(name="monthly_price", dtype=Float64),
        Field(name="tenure_days", dtype=Float64),
    ],
    source=customer_profile_source,
    online=True,
    tags={"owner": "crm-data", "dbt_model": "customer_profile_daily"},
)

# Version 1 of the churn model's inputs. Released: do not edit, add churn_v2. Features are listed
# by name, so a field added to a view later never changes what this service serves.
churn_v1 = FeatureService(
    name="churn_v1",
    features=[
        customer_activity_fv[
            [
                "sessions_7d",
                "sessions_28d",
                "minutes_7d",
                "minutes_28d",
                "spend_7d",
                "spend_28d",
                "support_tickets_7d",
                "support_tickets_28d",
                "active_days_7d",
                "active_days_28d",
                "plan_changes_28d",
                "days_since_last_activity",
            ]
        ],
        customer_profile_fv[["plan", "region", "channel", "monthly_price", "tenure_days"]],
    ],
    tags={"owner": "data-platform", "use_case": "churn"},
    description="Inputs of churn models trained from 2026-01 on.",
)
