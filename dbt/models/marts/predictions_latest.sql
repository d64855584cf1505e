{{ config(location=warehouse_table_location('marts', 'predictions_latest')) }}

-- Tonight's answer: each customer's most recent score, one row per use case and customer.
with predictions as (
    select * from {{ ref('stg_predictions') }}
),

ranked as (
    select
        *,
        row_number() over (partition by use_case, customer_id order by scoring_date desc) as recency
    from predictions
),

latest as (
    select
        use_case, customer_id, scoring_date, score, decile, band,
        model_name, model_version, feature_service, features_missing, airflow_run_id, scored_at
    from ranked
    where recency = 1
)

select * from latest
