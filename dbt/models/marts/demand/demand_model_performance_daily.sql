{{ config(location=day_table_location('marts', 'demand_model_performance_daily')) }}

{{ model_performance_daily('demand', ['store_id', 'product_id'], 'demand_labels', 'regression', label_days=9) }}
