{{ config(location=day_table_location('marts', 'demand_predictions_history')) }}

{{ predictions_history('demand', ['store_id', 'product_id']) }}
