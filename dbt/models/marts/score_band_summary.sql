{{ config(location=warehouse_table_location('marts', 'score_band_summary')) }}

-- How many customers fall in each band per day, and their mean score.
with predictions as (
    select * from {{ ref('stg_predictions') }}
),

summary as (
    select
        use_case,
        scoring_date,
        band,
        model_version,
        count(*) as customers,
        avg(score) as mean_score,
        sum(case when features_missing > 0 then 1 else 0 end) as customers_with_missing_features
    from predictions
    group by 1, 2, 3, 4
)

select * from summary
