{{ config(location=day_table_location('marts', 'churn_score_summary')) }}

{{ score_summary('churn', ['customer_id']) }}
