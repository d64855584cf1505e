{{ config(location=day_table_location('marts', 'demand_score_summary')) }}

{{ score_summary('demand', ['store_id', 'product_id']) }}
