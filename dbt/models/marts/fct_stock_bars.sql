{#
  incremental (append) into a ReplacingMergeTree keyed on the bar identity: each run reads only
  rows loaded since the last run (minus a look-back window for late inserts) instead of
  rebuilding ~1M bars; a re-read or replayed bar collapses on (sym, ev, bar_start). Readers use FINAL.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    engine='ReplacingMergeTree(ingested_at)',
    order_by='(sym, ev, bar_start)',
    partition_by='toYYYYMM(bar_start)',
) }}
select
    sym,
    ev,
    bar_start,
    bar_end,
    o, h, l, c, v, vw, av, a, z, otc,
    ingested_at,
    loaded_at
from {{ ref('stg_stock_aggs') }}
{% if is_incremental() %}
where loaded_at > (
    select max(loaded_at) - interval {{ var('incremental_lookback_minutes') }} minute from {{ this }}
)
{% endif %}
