{{ config(location=day_table_location('marts', 'churn_model_performance_daily')) }}

{{ model_performance_daily('churn', ['customer_id'], 'churn_labels', 'binary', label_days=32) }}
