{{ config(location=day_table_location('labels', 'demand_labels')) }}

{#- The outcome window and how late a sale may land (the sales suite's allowed lateness): a
    label is final once both have passed and that day has landed. -#}
{%- set horizon_days = 7 -%}
{%- set lateness_days = 2 -%}
{#- A run rewrites the labels of the horizon + lateness days before its first day too: those are
    the rows that sales landing on its days can decide. -#}
{{ config(restate_days=horizon_days + lateness_days) }}

-- The demand label of each population row: the units the store sold of the product in the 7 days
-- after D (0 when none). Only sales that had landed by the day the label is decided count, so a
-- label never changes once it is emitted, and rows whose outcome has not landed yet are not
-- emitted at all.
with population as (
    select * from {{ ref('demand_population') }}
    where {{ in_build_days('as_of_date', horizon_days + lateness_days) }}
),

sales as (
    select
        store_id,
        product_id,
        cast(sold_at as date) as sold_on,
        units,
        batch_date as landed_on
    from {{ ref('stg_sales') }}
    where {{ since_build_days('batch_date', horizon_days + lateness_days) }}
),

landed as (
    select max(cast(batch_date as date)) as landed_through
    from {{ source('meta', 'validation_runs') }}
    where source = 'sales'
),

decidable as (
    select
        population.store_id,
        population.product_id,
        population.as_of_date,
        cast(population.as_of_date + interval '{{ horizon_days + lateness_days }} days' as date) as decided_on
    from population
    cross join landed
    where cast(population.as_of_date + interval '{{ horizon_days + lateness_days }} days' as date)
        <= landed.landed_through
),

units_after as (
    select
        decidable.store_id,
        decidable.product_id,
        decidable.as_of_date,
        sum(sales.units) as units
    from decidable
    inner join sales
        on sales.store_id = decidable.store_id
        and sales.product_id = decidable.product_id
        and sales.sold_on > decidable.as_of_date
        and sales.sold_on <= cast(decidable.as_of_date + interval '{{ horizon_days }} days' as date)
        and sales.landed_on <= decidable.decided_on
    group by 1, 2, 3
),

final as (
    select
        decidable.store_id,
        decidable.product_id,
        decidable.as_of_date,
        cast(coalesce(units_after.units, 0) as double precision) as label,
        cast(decidable.decided_on + interval '1 day' as timestamp) as label_known_at
    from decidable
    left join units_after
        on units_after.store_id = decidable.store_id
        and units_after.product_id = decidable.product_id
        and units_after.as_of_date = decidable.as_of_date
)

select * from final
