{{ config(location=day_table_location('populations', 'demand_population')) }}

-- Who is scored on day D, and trained on over a window: every store x product pair that sold at
-- least once in the 28 days up to D (by landing day), whose store is in D's stores snapshot and
-- whose product is in D's products snapshot.
with stores as (
    select * from {{ ref('stg_stores') }}
    where {{ in_build_days('batch_date') }}
),

products as (
    select * from {{ ref('stg_products') }}
    where {{ in_build_days('batch_date') }}
),

sales as (
    select * from {{ ref('stg_sales') }}
    where {{ in_build_days('batch_date', 27) }}
),

days as (
    select distinct batch_date as as_of_date
    from stores
),

pair_sales_days as (
    select distinct
        store_id,
        product_id,
        batch_date as sales_date
    from sales
),

recent_pairs as (
    select distinct
        pair_sales_days.store_id,
        pair_sales_days.product_id,
        days.as_of_date
    from days
    inner join pair_sales_days
        on pair_sales_days.sales_date <= days.as_of_date
        and pair_sales_days.sales_date > cast(days.as_of_date - interval '28 days' as date)
),

population as (
    select
        recent_pairs.store_id,
        recent_pairs.product_id,
        recent_pairs.as_of_date
    from recent_pairs
    inner join stores
        on stores.store_id = recent_pairs.store_id
        and stores.batch_date = recent_pairs.as_of_date
    inner join products
        on products.product_id = recent_pairs.product_id
        and products.batch_date = recent_pairs.as_of_date
)

select * from population
