{{ config(location=feature_table_location('store_daily')) }}

-- Store features: one row per store per snapshot day, with the store's units over all products.
-- Windows count what had LANDED by the end of the day (batch_date), not sale time: a late sale
-- is counted on the day it arrived and never changes an earlier day's features.
with stores as (
    select * from {{ ref('stg_stores') }}
    where {{ in_build_days('batch_date', 27) }}
),

sales as (
    select * from {{ ref('stg_sales') }}
    where {{ in_build_days('batch_date', 27) }}
),

daily_sales as (
    select
        store_id,
        batch_date as sales_date,
        sum(units) as units
    from sales
    group by 1, 2
),

store_days as (
    select
        stores.store_id,
        stores.batch_date as feature_date,
        stores.region,
        stores.store_format,
        stores.floor_area_sqm,
        coalesce(daily_sales.units, 0) as units
    from stores
    left join daily_sales
        on stores.store_id = daily_sales.store_id
        and stores.batch_date = daily_sales.sales_date
),

rolling as (
    select
        store_id,
        feature_date,
        region,
        store_format,
        floor_area_sqm,
        {% for days in [7, 28] %}
        sum(units) over (
            partition by store_id order by feature_date
            range between interval '{{ days - 1 }} days' preceding and current row
        ) as units_{{ days }}d{{ "," if not loop.last }}
        {% endfor %}
    from store_days
),

final as (
    select
        store_id,
        feature_date,
        -- features of day D are complete, and known, at the end of D
        cast(feature_date + interval '1 day' as timestamp) as feature_timestamp,
        cast(feature_date + interval '1 day' as timestamp) as created_at,
        region,
        store_format,
        cast(floor_area_sqm as double precision) as floor_area_sqm,
        cast(units_7d as double precision) as store_units_7d,
        cast(units_28d as double precision) as store_units_28d
    from rolling
)

select * from final
