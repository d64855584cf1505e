-- One row per activity event, as accepted by ingest (raw.activity).
with source as (
    select * from {{ source('raw', 'activity') }}
),

renamed as (
    select
        event_id,
        customer_id,
        event_time,
        sessions,
        minutes,
        spend,
        support_tickets,
        plan_change,
        -- the day the event landed: features use it, so a late event never rewrites history
        cast(batch_date as date) as batch_date,
        batch_id
    from source
)

select * from renamed
