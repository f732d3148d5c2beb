{#
  view: one row per pipeline stage as the warehouse sees it, for the dashboard's health row. For each raw
  table: data age = now - newest event time (what `rtfin lag` shows as the warehouse's data age when the
  event clock is the wall clock), seconds since the last row was loaded (_loaded_at: a stall shows here
  whatever the replay's clock), and rows loaded per minute over the last 5 minutes (every version counts:
  it is throughput). The models' row: seconds since dbt last rebuilt dim_ticker (a table every run
  replaces; its newest active part). Read straight from the raw tables, not the FINAL staging views.
#}
{% set stages = [
    (1, 'market bars', 'stock_aggs', "fromUnixTimestamp64Milli(e, 'UTC')"),
    (2, 'news', 'news', 'published_utc'),
    (3, 'sentiment', 'news_sentiment', 'scored_at'),
] %}
{% for order, stage, table, event in stages %}
select
    toUInt8({{ order }}) as stage_order,
    '{{ stage }}' as stage,
    'raw.{{ table }}' as source_table,
    if(count() = 0, null, dateDiff('second', max({{ event }}), now64(3, 'UTC'))) as data_age_s,
    if(count() = 0, null, dateDiff('second', max(_loaded_at), now64(3, 'UTC'))) as last_load_s,
    countIf(_loaded_at >= now64(3, 'UTC') - interval 5 minute) / 5 as rows_per_min,
    count() as total_rows
from {{ source('raw', table) }}
union all
{% endfor %}
select
    toUInt8(4) as stage_order,
    'models (dbt)' as stage,
    'dim_ticker' as source_table,
    cast(null as Nullable(Int64)) as data_age_s,
    (
        select dateDiff('second', max(modification_time), now())
        from system.parts
        where database = '{{ this.schema }}' and table = 'dim_ticker' and active
    ) as last_load_s,
    cast(null as Nullable(Float64)) as rows_per_min,
    (select count() from {{ ref('dim_ticker') }}) as total_rows
