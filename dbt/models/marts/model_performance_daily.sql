{{ config(location=warehouse_table_location('marts', 'model_performance_daily')) }}

-- Realized performance of each scoring day, once its 30-day outcome window has closed: the
-- cancellations of every day up to D+30 have landed. AUC is the Mann-Whitney statistic over
-- the day's scores (ties share their average rank); precision@k is the churn rate among the
-- top-decile customers, the ones a retention team would call.
with predictions as (
    select * from {{ ref('stg_predictions') }}
),

cancellations as (
    select * from {{ ref('stg_cancellations') }}
),

labels_landed_through as (
    select max(batch_date) as last_landed from cancellations
),

first_cancellation as (
    select customer_id, min(cast(cancelled_at as date)) as cancelled_on
    from cancellations
    group by 1
),

closed_days as (
    select predictions.*
    from predictions
    cross join labels_landed_through
    where predictions.scoring_date + interval '30 days' <= labels_landed_through.last_landed
),

labelled as (
    select
        closed_days.*,
        case
            when first_cancellation.cancelled_on > closed_days.scoring_date
                and first_cancellation.cancelled_on <= closed_days.scoring_date + interval '30 days'
            then 1 else 0
        end as churned
    from closed_days
    left join first_cancellation on closed_days.customer_id = first_cancellation.customer_id
),

ranked as (
    select
        *,
        rank() over (partition by use_case, scoring_date, model_version order by score)
            + (count(*) over (partition by use_case, scoring_date, model_version, score) - 1) / 2.0 as score_rank
    from labelled
),

per_day as (
    select
        use_case,
        scoring_date,
        model_version,
        count(*) as customers,
        sum(churned) as churned,
        sum(case when churned = 1 then score_rank else 0 end) as positive_rank_sum,
        sum(case when decile = 1 then 1 else 0 end) as top_decile_customers,
        sum(case when decile = 1 then churned else 0 end) as top_decile_churned
    from ranked
    group by 1, 2, 3
),

final as (
    select
        use_case,
        scoring_date,
        model_version,
        customers,
        churned,
        cast(churned as double precision) / customers as churn_rate,
        case
            when churned > 0 and churned < customers
            then (positive_rank_sum - churned * (churned + 1) / 2.0) / (churned * (customers - churned))
        end as realized_auc,
        case
            when top_decile_customers > 0
            then cast(top_decile_churned as double precision) / top_decile_customers
        end as precision_at_top_decile
    from per_day
)

select * from final
