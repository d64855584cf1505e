{{ config(location=feature_table_location('customer_profile_daily')) }}

-- Profile features: one row per customer per snapshot day.
with customers as (
    select * from {{ ref('stg_customers') }}
    where {{ in_build_days('batch_date') }}
),

final as (
    select
        customer_id,
        batch_date as feature_date,
        cast(batch_date + interval '1 day' as timestamp) as feature_timestamp,
        cast(batch_date + interval '1 day' as timestamp) as created_at,
        plan,
        region,
        channel,
        cast(monthly_price as double precision) as monthly_price,
        cast(batch_date - signup_date as double precision) as tenure_days
    from customers
)

select * from final
