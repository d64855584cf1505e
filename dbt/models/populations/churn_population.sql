{{ config(location=day_table_location('populations', 'churn_population')) }}

-- Who is scored on day D, and trained on over a window: every customer in D's snapshot.
with customers as (
    select * from {{ ref('stg_customers') }}
    where {{ in_build_days('batch_date') }}
),

population as (
    select distinct
        customer_id,
        batch_date as as_of_date
    from customers
)

select * from population
