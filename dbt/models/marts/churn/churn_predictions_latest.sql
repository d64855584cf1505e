{{ config(location=warehouse_table_location('marts', 'churn_predictions_latest')) }}

{{ predictions_latest('churn', ['customer_id']) }}
