{{ config(location=feature_table_location('customer_activity_daily')) }}

-- Rolling activity features: one row per customer per day the customer is in the snapshot.
-- Windows count what had LANDED by the end of the day (batch_date), not event time: a late
-- event is counted on the day it arrived and never changes an earlier day's features.
-- A run for some days reads the 27 days before them too (the longest window), and takes the last
-- active day before them from the rows already built.
with customers as (
    select * from {{ ref('stg_customers') }}
    where {{ in_build_days('batch_date', 27) }}
),

activity as (
    select * from {{ ref('stg_activity') }}
    where {{ in_build_days('batch_date', 27) }}
),

spine as (
    select distinct customer_id, batch_date as feature_date
    from customers
),

daily_activity as (
    select
        customer_id,
        batch_date as activity_date,
        sum(sessions) as sessions,
        -- summed as decimals (exact to 9 places): a sum of doubles depends on the order of its
        -- terms, and a run that builds one day must give the bits a full build gives
        sum(cast(minutes as decimal(38, 9))) as minutes,
        sum(cast(spend as decimal(38, 9))) as spend,
        sum(support_tickets) as support_tickets,
        sum(case when plan_change <> 'none' then 1 else 0 end) as plan_changes,
        1 as active
    from activity
    group by 1, 2
),

customer_days as (
    select
        spine.customer_id,
        spine.feature_date,
        coalesce(daily_activity.sessions, 0) as sessions,
        coalesce(daily_activity.minutes, 0) as minutes,
        coalesce(daily_activity.spend, 0) as spend,
        coalesce(daily_activity.support_tickets, 0) as support_tickets,
        coalesce(daily_activity.plan_changes, 0) as plan_changes,
        coalesce(daily_activity.active, 0) as active,
        case when daily_activity.active = 1 then spine.feature_date end as active_date
    from spine
    left join daily_activity
        on spine.customer_id = daily_activity.customer_id
        and spine.feature_date = daily_activity.activity_date
),

rolling as (
    select
        customer_id,
        feature_date,
        {% for column in ['sessions', 'minutes', 'spend', 'support_tickets', 'active'] %}
        {% for days in [7, 28] %}
        sum({{ column }}) over (
            partition by customer_id order by feature_date
            range between interval '{{ days - 1 }} days' preceding and current row
        ) as {{ column }}_{{ days }}d,
        {% endfor %}
        {% endfor %}
        sum(plan_changes) over (
            partition by customer_id order by feature_date
            range between interval '27 days' preceding and current row
        ) as plan_changes_28d,
        max(active_date) over (
            partition by customer_id order by feature_date
            rows between unbounded preceding and current row
        ) as last_active_date
    from customer_days
),

earlier as (
    {%- if build_days() is none %}
    select cast(null as integer) as customer_id, cast(null as date) as last_active_date
    where false
    {%- else %}
    select customer_id, max(feature_date - cast(days_since_last_activity as integer)) as last_active_date
    from {{ this }}
    where {{ before_build_days('feature_date') }}
    group by 1
    {%- endif %}
),

final as (
    select
        rolling.customer_id,
        rolling.feature_date,
        -- features of day D are complete, and known, at the end of D
        cast(feature_date + interval '1 day' as timestamp) as feature_timestamp,
        cast(feature_date + interval '1 day' as timestamp) as created_at,
        cast(sessions_7d as double precision) as sessions_7d,
        cast(sessions_28d as double precision) as sessions_28d,
        cast(minutes_7d as double precision) as minutes_7d,
        cast(minutes_28d as double precision) as minutes_28d,
        cast(spend_7d as double precision) as spend_7d,
        cast(spend_28d as double precision) as spend_28d,
        cast(support_tickets_7d as double precision) as support_tickets_7d,
        cast(support_tickets_28d as double precision) as support_tickets_28d,
        cast(active_7d as double precision) as active_days_7d,
        cast(active_28d as double precision) as active_days_28d,
        cast(plan_changes_28d as double precision) as plan_changes_28d,
        cast(
            feature_date - coalesce(greatest(rolling.last_active_date, earlier.last_active_date),
                                    rolling.last_active_date, earlier.last_active_date)
            as double precision
        ) as days_since_last_activity
    from rolling
    left join earlier
        on earlier.customer_id = rolling.customer_id
)

select * from final
