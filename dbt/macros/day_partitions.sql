{#- Day-partitioned models: a nightly run rebuilds the days it is given, not the whole history.

    The features DAG plans which days to build (nightshift.features.builds) and passes them in the
    environment variable NIGHTSHIFT_DBT_DAYS, "<first>:<last>" (ISO dates). Without it (or empty)
    a run builds every day: the full refresh, also what `dbt build` by hand does. It is read only
    when dbt executes, never while it parses: a new value each night then costs no full re-parse
    of the project (a changed --vars would).

    A model opts in with `materialized='day_partitions'` and `partition_by='<date column>'`
    (dbt_project.yml sets both for features, populations and labels). The materialization writes
    only the planned days, whatever the model's SQL returns, so a model that reads its whole
    history is still correct; it is fast when it also narrows its inputs with `in_build_days`.
    `restate_days` (default 0) widens what a run rewrites to that many days before the first planned
    day, for a model whose earlier rows change with new data (a label decided by later landings). -#}


{% macro build_days() -%}
    {#- [first, last] as 'YYYY-MM-DD' strings, or none for a full build (and while dbt parses). -#}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = (env_var('NIGHTSHIFT_DBT_DAYS', '') or '') | string | trim -%}
    {%- if text in ('', 'None', 'full') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parts = text.split(':') -%}
    {%- if parts | length != 2 or parts[0] | length != 10 or parts[1] | length != 10 or parts[0] > parts[1] -%}
        {{ exceptions.raise_compiler_error("NIGHTSHIFT_DBT_DAYS must be '<first>:<last>' (ISO dates, first <= last) or empty for a full build; got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(parts) }}
{%- endmacro %}


{% macro in_build_days(column, lookback_days=0) -%}
    {#- True for rows a build of the planned days needs: `column` within the days, or up to
        `lookback_days` before the first (the longest window the model computes). -#}
    {%- set days = build_days() -%}
    {%- if days is none -%}
        true
    {%- else -%}
        {{ column }} between cast(cast('{{ days[0] }}' as date) - interval '{{ lookback_days }} days' as date)
            and cast('{{ days[1] }}' as date)
    {%- endif -%}
{%- endmacro %}


{% macro since_build_days(column, lookback_days=0) -%}
    {#- Like in_build_days, with no upper bound: for inputs that may have landed after the last day
        (a label is decided by what lands after its day). -#}
    {%- set days = build_days() -%}
    {%- if days is none -%}
        true
    {%- else -%}
        {{ column }} >= cast(cast('{{ days[0] }}' as date) - interval '{{ lookback_days }} days' as date)
    {%- endif -%}
{%- endmacro %}


{% macro before_build_days(column) -%}
    {#- True for rows of days before the planned ones (false in a full build: there is no before). -#}
    {%- set days = build_days() -%}
    {%- if days is none -%}
        false
    {%- else -%}
        {{ column }} < cast('{{ days[0] }}' as date)
    {%- endif -%}
{%- endmacro %}


{% macro _day_partition_predicate(partition_by, days, restate_days) -%}
    {%- if days is none -%} true {%- else -%}
    {{ partition_by }} between cast(cast('{{ days[0] }}' as date) - interval '{{ restate_days }} days' as date)
        and cast('{{ days[1] }}' as date)
    {%- endif -%}
{%- endmacro %}


{% macro _restated_days(days, restate_days) -%}
    {#- The planned days widened by the model's restate_days: [first - restate_days, last]. -#}
    {%- if days is none -%}{{ return(none) }}{%- endif -%}
    {%- set first = modules.datetime.date.fromisoformat(days[0]) - modules.datetime.timedelta(days=restate_days) -%}
    {{ return([first.isoformat(), days[1]]) }}
{%- endmacro %}


{#- Embedded (DuckDB): one Parquet file per day, <location>/<partition_by>=<day>/part.parquet.
    Each day's file is written by its own COPY to a temporary file renamed over the old one, so a
    reader sees a day whole, old or new. A planned day that now has no rows gets an empty file
    (and so does every day a full build no longer produces): readers see no rows for it. The
    relation is a view over every day's file. -#}
{% materialization day_partitions, adapter='duckdb' %}
    {%- set partition_by = config.require('partition_by') -%}
    {%- set location = config.require('location') | string -%}
    {%- set restate_days = config.get('restate_days', 0) | int -%}
    {%- set days = build_days() -%}
    {%- set written = _restated_days(days, restate_days) -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if days is not none and existing is none -%}
        {{ exceptions.raise_compiler_error("model " ~ this ~ " has not been built yet, so days " ~ days | join(':') ~ " cannot be added to it: build it whole first (NIGHTSHIFT_DBT_DAYS empty, or the features DAG with full_refresh)") }}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set rows = '__nightshift_day_rows' -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('rows') -%}
        create or replace temporary table {{ rows }} as
        select * from ({{ sql }}) as model_rows
        where {{ _day_partition_predicate(partition_by, days, restate_days) }}
    {%- endcall %}

    {%- set produced = run_query("select distinct strftime(" ~ partition_by ~ ", '%Y-%m-%d') from " ~ rows ~ " order by 1").columns[0].values() -%}
    {%- set on_disk = [] -%}
    {%- for path in run_query("select file from glob('" ~ location ~ "/" ~ partition_by ~ "=*/part.parquet')").columns[0].values() -%}
        {%- set day = path.split('/')[-2].split('=')[-1] -%}
        {%- if written is none or (day >= written[0] and day <= written[1]) -%}
            {%- do on_disk.append(day) -%}
        {%- endif -%}
    {%- endfor -%}

    {#- DuckDB's COPY makes folders only when it partitions: one partitioned COPY of the day keys
        creates each day's folder (with a small .folder0.keep marker), then each day is written. -#}
    {% if produced | length > 0 %}
        {% call statement('folders') -%}
            copy (select distinct {{ partition_by }}, '' as folder from {{ rows }}) to '{{ location }}'
            (format csv, partition_by ({{ partition_by }}), overwrite_or_ignore true,
             filename_pattern '.folder', file_extension 'keep', header false)
        {%- endcall %}
    {% endif %}

    {% for day in produced %}
        {% call statement('day_' ~ loop.index) -%}
            copy (select * from {{ rows }} where {{ partition_by }} = cast('{{ day }}' as date))
            to '{{ location }}/{{ partition_by }}={{ day }}/part.parquet' (format parquet, use_tmp_file true)
        {%- endcall %}
    {% endfor %}

    {% for day in on_disk if day not in produced %}
        {% call statement('empty_' ~ loop.index) -%}
            copy (select * from {{ rows }} where false)
            to '{{ location }}/{{ partition_by }}={{ day }}/part.parquet' (format parquet, use_tmp_file true)
        {%- endcall %}
    {% endfor %}

    {#- A full build writes an empty <location>/part.parquet: the table has a file (and a schema)
        even with no day yet, and the one file of the layout before day partitions is emptied. -#}
    {% if days is none %}
        {% call statement('no_day') -%}
            copy (select * from {{ rows }} where false) to '{{ location }}/part.parquet' (format parquet, use_tmp_file true)
        {%- endcall %}
    {% endif %}

    {#- The view reads the day folders as hive partitions, so a filter on the day column (a test of
        tonight's days, a model reading its parent's last 28 days) skips the other days' files
        without opening them. Before the first day it reads the empty file. -#}
    {%- set day_files = run_query("select count(*) from glob('" ~ location ~ "/" ~ partition_by ~ "=*/part.parquet')").columns[0].values()[0] -%}
    {% call statement('main') -%}
        create or replace view {{ target_relation }} as
        {% if day_files > 0 -%}
        select * from read_parquet('{{ location }}/{{ partition_by }}=*/part.parquet', union_by_name = true,
                                   hive_partitioning = true, hive_types = {'{{ partition_by }}': 'DATE'})
        {%- else -%}
        select * from read_parquet('{{ location }}/part.parquet')
        {%- endif %}
    {%- endcall %}

    {% call statement('drop_rows') -%}
        drop table if exists {{ rows }}
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- Production (Postgres): one table. Planned days are replaced in one transaction (delete them,
    insert the new rows), so readers see the old days or the new ones. A full build creates the
    table beside the old one and swaps the names in one transaction, like dbt's `table`. -#}
{% materialization day_partitions, adapter='postgres' %}
    {%- set partition_by = config.require('partition_by') -%}
    {%- set restate_days = config.get('restate_days', 0) | int -%}
    {%- set days = build_days() -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% if days is none or existing is none %}
        {%- if days is not none -%}
            {{ exceptions.raise_compiler_error("model " ~ this ~ " has not been built yet, so days " ~ days | join(':') ~ " cannot be added to it: build it whole first (NIGHTSHIFT_DBT_DAYS empty, or the features DAG with full_refresh)") }}
        {%- endif -%}
        {%- set intermediate = make_intermediate_relation(target_relation) -%}
        {%- set backup = make_backup_relation(target_relation, 'table') -%}
        {{ drop_relation_if_exists(intermediate) }}
        {{ drop_relation_if_exists(backup) }}
        {% call statement('main') -%}
            {{ get_create_table_as_sql(False, intermediate, sql) }}
        {%- endcall %}
        {% if existing is not none %}
            {{ adapter.rename_relation(existing, backup) }}
        {% endif %}
        {{ adapter.rename_relation(intermediate, target_relation) }}
        {{ run_hooks(post_hooks, inside_transaction=True) }}
        {% do adapter.commit() %}
        {{ drop_relation_if_exists(backup) }}
    {% else %}
        {%- set rows = make_temp_relation(target_relation) -%}
        {% call statement('rows') -%}
            {{ get_create_table_as_sql(True, rows, "select * from (" ~ sql ~ ") as model_rows where " ~ _day_partition_predicate(partition_by, days, restate_days)) }}
        {%- endcall %}
        {%- set columns = adapter.get_columns_in_relation(rows) | map(attribute='quoted') | join(', ') -%}
        {% call statement('main') -%}
            delete from {{ target_relation }} where {{ _day_partition_predicate(partition_by, days, restate_days) }};
            insert into {{ target_relation }} ({{ columns }}) select {{ columns }} from {{ rows }};
        {%- endcall %}
        {{ run_hooks(post_hooks, inside_transaction=True) }}
        {% do adapter.commit() %}
    {% endif %}

    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- The data tests of a day-partitioned model check the days the run wrote (and no other: those
    were checked when they were written), so a nightly run's tests cost the night too; so do the
    tests of a staging view, which names its landing day as `partition_by` (dbt_project.yml). A
    `unique` test is left whole: a value must be unique across every day. This is dbt's own
    get_where_subquery (every generic test wraps the model it tests with it), with the run's days
    added to the test's `where`. A full build tests every day. It calls no other macro of this
    project: a test resolves only the macros it names itself. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- if execute -%}
        {%- set text = (env_var('NIGHTSHIFT_DBT_DAYS', '') or '') | string | trim -%}
        {%- set attached = model.get('attached_node') if model is mapping else none -%}
        {%- set kind = (model.get('test_metadata') or {}).get('name') if model is mapping else none -%}
        {%- if text not in ('', 'None', 'full') and attached and attached in graph.nodes and kind != 'unique' -%}
            {%- set tested = graph.nodes[attached].config -%}
            {%- set days = text.split(':') -%}
            {%- if tested.get('partition_by') and days | length == 2 -%}
                {%- do conditions.append(tested.get('partition_by') ~ " between cast(cast('" ~ days[0] ~ "' as date) - interval '"
                    ~ (tested.get('restate_days', 0) | int) ~ " days' as date) and cast('" ~ days[1] ~ "' as date)") -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
