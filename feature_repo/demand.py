"""Feast definitions of the demand use case: the store and product entities, their feature views
and the versioned feature services.

Data teams edit this file (and dbt/models/features/demand/). A model pins the exact feature set it
was trained on by its feature service's name: never change a released service; add `demand_v2`
instead.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field
from feast.types import Float64, String
from feast.value_type import ValueType

from sources import feature_table_source

# The store, one of the two entities every demand forecast is about.
store = Entity(
    name="store",
    join_keys=["store_id"],
    value_type=ValueType.STRING,
    description="A retail store (S001, ...).",
    tags={"owner": "data-platform"},
)

# The product, the other entity every demand forecast is about.
product = Entity(
    name="product",
    join_keys=["product_id"],
    value_type=ValueType.STRING,
    description="A catalogue product (P0001, ...).",
    tags={"owner": "data-platform"},
)

# Daily store attributes and store-wide sales, built by dbt model store_daily.
store_daily_source = feature_table_source("store_daily", "Store attributes and units per store per day (end of day).")

# Region, format, floor area and the store's units over all products; a day's row is valid for three days.
store_daily_fv = FeatureView(
    name="store_daily",
    entities=[store],
    ttl=timedelta(days=3),
    schema=[
        Field(name="region", dtype=String),
        Field(name="store_format", dtype=String),
        Field(name="floor_area_sqm", dtype=Float64),
        Field(name="store_units_7d", dtype=Float64),
        Field(name="store_units_28d", dtype=Float64),
    ],
    source=store_daily_source,
    online=True,
    tags={"owner": "retail-analytics", "dbt_model": "store_daily"},
)

# Daily product attributes and chain-wide sales, built by dbt model product_daily.
product_daily_source = feature_table_source(
    "product_daily", "Product attributes and units per product per day (end of day)."
)

# Category, list price and the product's units across stores.
product_daily_fv = FeatureView(
    name="product_daily",
    entities=[product],
    ttl=timedelta(days=3),
    schema=[
        Field(name="category", dtype=String),
        Field(name="unit_price", dtype=Float64),
        Field(name="product_units_7d", dtype=Float64),
        Field(name="product_units_28d", dtype=Float64),
    ],
    source=product_daily_source,
    online=True,
    tags={"owner": "merchandising-data", "dbt_model": "product_daily"},
)

# Daily sales of each store x product pair in the population, built by dbt model store_product_daily.
store_product_daily_source = feature_table_source(
    "store_product_daily", "Rolling sales per store x product pair per day (end of day)."
)

# Trailing units, promo days, recency and price paid of the pair.
store_product_daily_fv = FeatureView(
    name="store_product_daily",
    entities=[store, product],
    ttl=timedelta(days=3),
    schema=[
        Field(name="units_1d", dtype=Float64),
        Field(name="units_7d", dtype=Float64),
        Field(name="units_28d", dtype=Float64),
        Field(name="promo_days_7d", dtype=Float64),
        Field(name="days_since_last_sale", dtype=Float64),
        Field(name="mean_price_28d", dtype=Float64),
    ],
    source=store_product_daily_source,
    online=True,
    tags={"owner": "retail-analytics", "dbt_model": "store_product_daily"},
)

# Version 1 of the demand model's inputs. Released: do not edit, add demand_v2. Features are listed
# by name, so a field added to a view later never changes what this service serves.
demand_v1 = FeatureService(
    name="demand_v1",
    features=[
        store_product_daily_fv[
            ["units_1d", "units_7d", "units_28d", "promo_days_7d", "days_since_last_sale", "mean_price_28d"]
        ],
        store_daily_fv[["region", "store_format", "floor_area_sqm", "store_units_7d", "store_units_28d"]],
        product_daily_fv[["category", "unit_price", "product_units_7d", "product_units_28d"]],
    ],
    tags={"owner": "data-platform", "use_case": "demand"},
    description="Inputs of demand models trained from 2026-01 on.",
)
