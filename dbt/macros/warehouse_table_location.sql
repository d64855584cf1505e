{#- Where an external (DuckDB) model of `schema` writes its Parquet file; none on Postgres.
    One file per model: DuckDB's COPY writes a temporary file and renames it, so readers
    see the old table or the new one, never a half-written one. -#}
{% macro warehouse_table_location(schema, name) -%}
    {%- if target.type == 'duckdb' -%}
        {{ env_var('NIGHTSHIFT_WAREHOUSE_DIR') }}/tables/{{ schema }}/{{ name }}/part.parquet
    {%- else -%}
        {{ none }}
    {%- endif -%}
{%- endmacro %}

{% macro feature_table_location(name) -%}
    {{ day_table_location('features', name) }}
{%- endmacro %}

{#- Schema names as written: `features`, not `analytics_features`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}


{#- The folder of a day-partitioned (DuckDB) model: <folder>/<partition column>=<day>/part.parquet. -#}
{% macro day_table_location(schema, name) -%}
    {%- if target.type == 'duckdb' -%}
        {{ env_var('NIGHTSHIFT_WAREHOUSE_DIR') }}/tables/{{ schema }}/{{ name }}
    {%- else -%}
        {{ none }}
    {%- endif -%}
{%- endmacro %}
