-- One row per cancellation, as accepted by ingest (raw.cancellations): the churn labels.
with source as (
    select * from {{ source('raw', 'cancellations') }}
),

renamed as (
    select
        customer_id,
        cancelled_at,
        reason,
        cast(batch_date as date) as batch_date,
        batch_id
    from source
)

select * from renamed
