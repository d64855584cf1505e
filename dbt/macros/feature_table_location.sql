{#- Where an external (DuckDB) feature model writes its Parquet file; none on Postgres.
    One file per model: dbt-duckdb writes it to a temporary file and renames it, so
    readers see the old table or the new one, never a half-written one. -#}
{% macro feature_table_location(name) -%}
    {%- if target.type == 'duckdb' -%}
        {{ env_var('NIGHTSHIFT_WAREHOUSE_DIR') }}/tables/features/{{ name }}/part.parquet
    {%- else -%}
        {{ none }}
    {%- endif -%}
{%- endmacro %}

{#- Schema names as written: `features`, not `analytics_features`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
