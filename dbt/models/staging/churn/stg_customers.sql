-- One row per customer per snapshot day, as accepted by ingest (raw.customers).
with source as (
    select * from {{ source('raw', 'customers') }}
),

renamed as (
    select
        customer_id,
        cast(signup_date as date) as signup_date,
        plan,
        region,
        channel,
        monthly_price,
        snapshot_at,
        cast(batch_date as date) as batch_date,
        batch_id
    from source
)

select * from renamed
