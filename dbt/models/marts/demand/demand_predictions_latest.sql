{{ config(location=warehouse_table_location('marts', 'demand_predictions_latest')) }}

{{ predictions_latest('demand', ['store_id', 'product_id']) }}
