{{ config(location=day_table_location('marts', 'churn_predictions_history')) }}

{{ predictions_history('churn', ['customer_id']) }}
