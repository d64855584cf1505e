{{ config(location=feature_table_location('store_product_daily')) }}

-- Store x product features: one row per pair per day the pair is in the demand population.
-- Windows count what had LANDED by the end of the day (batch_date), like store_daily. A pair is
-- in the population only while it sold within 28 days, so its window days are all on the spine.
-- A run for some days reads the 27 days before them too, and takes the last sale day before them
-- from the rows already built.
with population as (
    select * from {{ ref('demand_population') }}
    where {{ in_build_days('as_of_date', 27) }}
),

sales as (
    select * from {{ ref('stg_sales') }}
    where {{ in_build_days('batch_date', 27) }}
),

daily_sales as (
    select
        store_id,
        product_id,
        batch_date as sales_date,
        sum(units) as units,
        -- a decimal (exact to 9 places): a sum of doubles depends on the order of its terms, and a
        -- run that builds one day must give the bits a full build gives
        sum(units * cast(unit_price as decimal(38, 9))) as revenue,
        max(case when promo <> 'none' then 1 else 0 end) as promo
    from sales
    group by 1, 2, 3
),

pair_days as (
    select
        population.store_id,
        population.product_id,
        population.as_of_date as feature_date,
        coalesce(daily_sales.units, 0) as units,
        coalesce(daily_sales.revenue, 0) as revenue,
        coalesce(daily_sales.promo, 0) as promo,
        case when daily_sales.units > 0 then population.as_of_date end as sale_date
    from population
    left join daily_sales
        on population.store_id = daily_sales.store_id
        and population.product_id = daily_sales.product_id
        and population.as_of_date = daily_sales.sales_date
),

rolling as (
    select
        store_id,
        product_id,
        feature_date,
        units as units_1d,
        {% for column, days in [('units', 7), ('units', 28), ('revenue', 28), ('promo', 7)] %}
        sum({{ column }}) over (
            partition by store_id, product_id order by feature_date
            range between interval '{{ days - 1 }} days' preceding and current row
        ) as {{ column }}_{{ days }}d,
        {% endfor %}
        max(sale_date) over (
            partition by store_id, product_id order by feature_date
            rows between unbounded preceding and current row
        ) as last_sale_date
    from pair_days
),

earlier as (
    {%- if build_days() is none %}
    select cast(null as varchar) as store_id, cast(null as varchar) as product_id, cast(null as date) as last_sale_date
    where false
    {%- else %}
    select store_id, product_id, max(feature_date - cast(days_since_last_sale as integer)) as last_sale_date
    from {{ this }}
    where {{ before_build_days('feature_date') }}
    group by 1, 2
    {%- endif %}
),

final as (
    select
        rolling.store_id,
        rolling.product_id,
        rolling.feature_date,
        cast(feature_date + interval '1 day' as timestamp) as feature_timestamp,
        cast(feature_date + interval '1 day' as timestamp) as created_at,
        cast(units_1d as double precision) as units_1d,
        cast(units_7d as double precision) as units_7d,
        cast(units_28d as double precision) as units_28d,
        cast(promo_7d as double precision) as promo_days_7d,
        cast(
            feature_date - coalesce(greatest(rolling.last_sale_date, earlier.last_sale_date),
                                    rolling.last_sale_date, earlier.last_sale_date)
            as double precision
        ) as days_since_last_sale,
        -- units-weighted mean price paid; null when nothing sold in the 28 days
        cast(revenue_28d as double precision) / nullif(cast(units_28d as double precision), 0) as mean_price_28d
    from rolling
    left join earlier
        on earlier.store_id = rolling.store_id
        and earlier.product_id = rolling.product_id
)

select * from final
