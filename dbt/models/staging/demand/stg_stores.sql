-- One row per store per snapshot day, as accepted by ingest (raw.stores).
with source as (
    select * from {{ source('raw', 'stores') }}
),

renamed as (
    select
        store_id,
        region,
        store_format,
        floor_area_sqm,
        cast(opened_on as date) as opened_on,
        snapshot_at,
        cast(batch_date as date) as batch_date,
        batch_id
    from source
)

select * from renamed
