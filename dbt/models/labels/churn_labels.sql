{{ config(location=day_table_location('labels', 'churn_labels')) }}

{#- The outcome window and how late a cancellation may land (the cancellations suite's
    allowed_lateness_hours): a label is final once both have passed and that day has landed. -#}
{%- set horizon_days = 30 -%}
{%- set lateness_days = 2 -%}
{#- A run rewrites the labels of the horizon + lateness days before its first day too: those are
    the rows that cancellations landing on its days can decide. -#}
{{ config(restate_days=horizon_days + lateness_days) }}

-- The churn label of each population row: 1 when the customer's first cancellation after D falls
-- within the 30 days after D. Only cancellations that had landed by the day the label is decided
-- count, so a label never changes once it is emitted, and rows whose outcome has not landed yet
-- are not emitted at all.
with population as (
    select * from {{ ref('churn_population') }}
    where {{ in_build_days('as_of_date', horizon_days + lateness_days) }}
),

cancellations as (
    select
        customer_id,
        cast(cancelled_at as date) as cancelled_on,
        batch_date as landed_on
    from {{ ref('stg_cancellations') }}
    where {{ since_build_days('batch_date', horizon_days + lateness_days) }}
),

landed as (
    select max(cast(batch_date as date)) as landed_through
    from {{ source('meta', 'validation_runs') }}
    where source = 'cancellations'
),

decidable as (
    select
        population.customer_id,
        population.as_of_date,
        cast(population.as_of_date + interval '{{ horizon_days + lateness_days }} days' as date) as decided_on
    from population
    cross join landed
    where cast(population.as_of_date + interval '{{ horizon_days + lateness_days }} days' as date)
        <= landed.landed_through
),

first_after as (
    select
        decidable.customer_id,
        decidable.as_of_date,
        min(cancellations.cancelled_on) as cancelled_on
    from decidable
    inner join cancellations
        on cancellations.customer_id = decidable.customer_id
        and cancellations.cancelled_on > decidable.as_of_date
        and cancellations.landed_on <= decidable.decided_on
    group by 1, 2
),

final as (
    select
        decidable.customer_id,
        decidable.as_of_date,
        case
            when first_after.cancelled_on <= cast(decidable.as_of_date + interval '{{ horizon_days }} days' as date)
            then 1 else 0
        end as label,
        cast(decidable.decided_on + interval '1 day' as timestamp) as label_known_at
    from decidable
    left join first_after
        on first_after.customer_id = decidable.customer_id
        and first_after.as_of_date = decidable.as_of_date
)

select * from final
