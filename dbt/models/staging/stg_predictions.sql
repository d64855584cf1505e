{{ config(tags=['scoring']) }}

-- One row per customer per use case per scoring day, as published by the score DAG.
with source as (
    select * from {{ source('predictions', 'daily') }}
),

renamed as (
    select
        use_case,
        cast(scoring_date as date) as scoring_date,
        customer_id,
        score,
        decile,
        band,
        model_name,
        model_version,
        feature_service,
        features_missing,
        airflow_run_id,
        scored_at
    from source
)

select * from renamed
