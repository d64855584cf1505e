-- One row per product per snapshot day, as accepted by ingest (raw.products).
with source as (
    select * from {{ source('raw', 'products') }}
),

renamed as (
    select
        product_id,
        category,
        unit_price,
        snapshot_at,
        cast(batch_date as date) as batch_date,
        batch_id
    from source
)

select * from renamed
