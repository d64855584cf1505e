{#- The marts every use case gets, generic over its keys and its task. A use case's folder
    dbt/models/marts/<use case>/ holds one short model per macro, for example
        {{ predictions_latest('demand', ['store_id', 'product_id']) }}
    and reads the use case's predictions table, predictions.<use case>_daily. -#}


{% macro _prediction_columns() -%}
    score, decile, band, model_name, model_version, feature_service, features_missing, airflow_run_id, scored_at
{%- endmacro %}

{% macro _predictions(use_case, keys, where='true') -%}
    select
        {{ keys | join(', ') }},
        cast(scoring_date as date) as scoring_date,
        {{ _prediction_columns() }}
    from {{ source('predictions', use_case ~ '_daily') }}
    where {{ where }}
{%- endmacro %}


{#- The marts by scoring day are day-partitioned (macros/day_partitions.sql): the score DAG's run
    rebuilds the days it scored, not the whole history. -#}
{% macro _by_scoring_day(restate_days=0) -%}
    {{ config(materialized='day_partitions', partition_by='scoring_date', restate_days=restate_days) }}
{%- endmacro %}

{% macro predictions_latest(use_case, keys) -%}
-- Tonight's answer: each entity's most recent score, one row per {{ keys | join(' x ') }}.
{#- A run for some scoring days reads those days' scores and the previous answer, not the history:
    an entity's latest row is the later of its previous latest row (outside the rebuilt days) and
    its newest row in them. Only an entity whose previous latest row lies in the rebuilt days and
    that is no longer scored on any of them (the day's population changed before it was scored
    again) sends the run back to the history before those days, and only for that entity. -#}
{%- set days = build_days() -%}
{%- set key_match = [] -%}
{%- for key in keys -%}{%- do key_match.append('candidates.' ~ key ~ ' = rebuilt.' ~ key) -%}{%- endfor -%}
{%- set in_days = "scoring_date between cast('" ~ (days[0] if days else '') ~ "' as date) and cast('" ~ (days[1] if days else '') ~ "' as date)" -%}
{%- set scored_in_days = "cast(" ~ in_days.replace("scoring_date between", "scoring_date as date) between", 1) -%}
{%- set dropped = false -%}
{%- if days is not none and execute -%}
    {%- set matches = [] -%}
    {%- for key in keys -%}{%- do matches.append('p.' ~ key ~ ' = previous.' ~ key) -%}{%- endfor -%}
    {%- set probe -%}
        select count(*) from {{ this }} as previous
        where previous.{{ in_days }}
          and not exists (select 1 from ({{ _predictions(use_case, keys, scored_in_days) }}) as p where {{ matches | join(' and ') }})
    {%- endset -%}
    {%- set dropped = run_query(probe).columns[0].values()[0] > 0 -%}
{%- endif %}
with predictions as (
    {%- if days is none %}
    {{ _predictions(use_case, keys) }}
    {%- else %}
    {{ _predictions(use_case, keys, scored_in_days) }}
    union all
    select {{ keys | join(', ') }}, scoring_date, {{ _prediction_columns() }}
    from {{ this }}
    where not ({{ in_days }})
    {%- if dropped %}
    union all
    -- entities whose latest score was on a rebuilt day that no longer scores them
    select candidates.* from ({{ _predictions(use_case, keys, "cast(scoring_date as date) < cast('" ~ days[0] ~ "' as date)") }}) as candidates
    inner join (
        select {{ keys | join(', ') }} from {{ this }} as previous where previous.{{ in_days }}
    ) as rebuilt on {{ key_match | join(' and ') }}
    {%- endif %}
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by {{ keys | join(', ') }} order by scoring_date desc) as recency
    from predictions
),

latest as (
    select {{ keys | join(', ') }}, scoring_date, {{ _prediction_columns() }}
    from ranked
    where recency = 1
)

select * from latest
{%- endmacro %}

{% macro predictions_history(use_case, keys) -%}
{{ _by_scoring_day() }}
-- Every published score with its lineage: one row per {{ keys | join(' x ') }} and scoring day.
with predictions as (
    {{ _predictions(use_case, keys, in_build_days('cast(scoring_date as date)')) }}
)

select * from predictions
{%- endmacro %}

{% macro score_summary(use_case, keys) -%}
{{ _by_scoring_day() }}
-- How scores are distributed each day: entities, mean, min and max score per decile (and band, where
-- the use case has bands) and model version.
with predictions as (
    {{ _predictions(use_case, keys, in_build_days('cast(scoring_date as date)')) }}
),

summary as (
    select
        scoring_date,
        model_version,
        decile,
        band,
        count(*) as entities,
        avg(score) as mean_score,
        min(score) as min_score,
        max(score) as max_score,
        sum(case when features_missing > 0 then 1 else 0 end) as entities_with_missing_features
    from predictions
    group by 1, 2, 3, 4
)

select * from summary
{%- endmacro %}

{% macro model_performance_daily(use_case, keys, label_model, task, label_days) -%}
{#- label_days: the label model's restate_days (horizon + lateness): a label of D can be decided
    that many days after D, so a run rewrites the performance of that many days before its first. -#}
{{ _by_scoring_day(label_days) }}
-- Realized performance of each scoring day, once the label model has its labels: the scores of D
-- joined to the labels of the same entities and D. label_coverage is the share of D's scores that
-- have a label yet. Binary: AUC (Mann-Whitney, ties share their average rank), positive rate and
-- precision in the top decile. Regression: RMSE, MAE and bias (mean of score - label).
with predictions as (
    {{ _predictions(use_case, keys, in_build_days('cast(scoring_date as date)', label_days)) }}
),

labels as (
    select * from {{ ref(label_model) }}
    where {{ in_build_days('as_of_date', label_days) }}
),

scored as (
    select scoring_date, model_version, count(*) as scored
    from predictions
    group by 1, 2
),

labelled as (
    select predictions.scoring_date, predictions.model_version, predictions.score, predictions.decile,
        cast(labels.label as double precision) as label
    from predictions
    inner join labels
        on labels.as_of_date = predictions.scoring_date
        {%- for key in keys %}
        and labels.{{ key }} = predictions.{{ key }}
        {%- endfor %}
),

{%- if task == 'binary' %}

ranked as (
    select
        *,
        rank() over (partition by scoring_date, model_version order by score)
            + (count(*) over (partition by scoring_date, model_version, score) - 1) / 2.0 as score_rank
    from labelled
),

per_day as (
    select
        scoring_date,
        model_version,
        count(*) as labelled,
        sum(label) as positives,
        sum(case when label = 1 then score_rank else 0 end) as positive_rank_sum,
        sum(case when decile = 1 then 1 else 0 end) as top_decile_entities,
        sum(case when decile = 1 then label else 0 end) as top_decile_positives
    from ranked
    group by 1, 2
),

final as (
    select
        per_day.scoring_date,
        per_day.model_version,
        scored.scored,
        per_day.labelled,
        cast(per_day.labelled as double precision) / scored.scored as label_coverage,
        per_day.positives,
        per_day.positives / per_day.labelled as positive_rate,
        case
            when per_day.positives > 0 and per_day.positives < per_day.labelled
            then (per_day.positive_rank_sum - per_day.positives * (per_day.positives + 1) / 2.0)
                / (per_day.positives * (per_day.labelled - per_day.positives))
        end as realized_auc,
        case
            when per_day.top_decile_entities > 0
            then per_day.top_decile_positives / per_day.top_decile_entities
        end as precision_at_top_decile
    from per_day
    inner join scored
        on scored.scoring_date = per_day.scoring_date and scored.model_version = per_day.model_version
)

{%- else %}

per_day as (
    select
        scoring_date,
        model_version,
        count(*) as labelled,
        avg(label) as mean_label,
        sqrt(avg((score - label) * (score - label))) as rmse,
        avg(abs(score - label)) as mae,
        avg(score - label) as bias
    from labelled
    group by 1, 2
),

final as (
    select
        per_day.scoring_date,
        per_day.model_version,
        scored.scored,
        per_day.labelled,
        cast(per_day.labelled as double precision) / scored.scored as label_coverage,
        per_day.mean_label,
        per_day.rmse,
        per_day.mae,
        per_day.bias
    from per_day
    inner join scored
        on scored.scoring_date = per_day.scoring_date and scored.model_version = per_day.model_version
)

{%- endif %}

select * from final
{%- endmacro %}
