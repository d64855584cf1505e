-- One row per sale, as accepted by ingest (raw.sales): the demand features and labels.
with source as (
    select * from {{ source('raw', 'sales') }}
),

renamed as (
    select
        sale_id,
        store_id,
        product_id,
        sold_at,
        units,
        unit_price,
        promo,
        -- the day the sale landed: features use it, so a late sale never rewrites history
        cast(batch_date as date) as batch_date,
        batch_id
    from source
)

select * from renamed
