{{ config(location=feature_table_location('product_daily')) }}

-- Product features: one row per product per snapshot day, with the product's units across stores.
-- Windows count what had LANDED by the end of the day (batch_date), like store_daily.
with products as (
    select * from {{ ref('stg_products') }}
    where {{ in_build_days('batch_date', 27) }}
),

sales as (
    select * from {{ ref('stg_sales') }}
    where {{ in_build_days('batch_date', 27) }}
),

daily_sales as (
    select
        product_id,
        batch_date as sales_date,
        sum(units) as units
    from sales
    group by 1, 2
),

product_days as (
    select
        products.product_id,
        products.batch_date as feature_date,
        products.category,
        products.unit_price,
        coalesce(daily_sales.units, 0) as units
    from products
    left join daily_sales
        on products.product_id = daily_sales.product_id
        and products.batch_date = daily_sales.sales_date
),

rolling as (
    select
        product_id,
        feature_date,
        category,
        unit_price,
        {% for days in [7, 28] %}
        sum(units) over (
            partition by product_id order by feature_date
            range between interval '{{ days - 1 }} days' preceding and current row
        ) as units_{{ days }}d{{ "," if not loop.last }}
        {% endfor %}
    from product_days
),

final as (
    select
        product_id,
        feature_date,
        cast(feature_date + interval '1 day' as timestamp) as feature_timestamp,
        cast(feature_date + interval '1 day' as timestamp) as created_at,
        category,
        -- the list price in that day's catalogue snapshot
        cast(unit_price as double precision) as unit_price,
        cast(units_7d as double precision) as product_units_7d,
        cast(units_28d as double precision) as product_units_28d
    from rolling
)

select * from final
