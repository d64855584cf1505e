{{ config(location=warehouse_table_location('marts', 'predictions_history')) }}

-- Every score ever published, with its lineage: one row per use case, customer and scoring day.
with predictions as (
    select * from {{ ref('stg_predictions') }}
)

select * from predictions
