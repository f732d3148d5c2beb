{#
  view over stg_stock_aggs (the raw table FINAL), not over fct_stock_bars: a bar is on the dashboard
  the moment the loader inserted it, with no dbt run in between (DESIGN.md: freshness of seconds).
  The raw table's ORDER BY (sym, ev, s) serves the dashboard's ticker filter; FINAL keeps one row
  per bar identity, so a replayed bar never shows twice.
#}
select
    sym as ticker,
    bar_start,
    bar_end,
    o as open,
    h as high,
    l as low,
    c as close,
    vw as vwap
from {{ ref('stg_stock_aggs') }}
where ev = 'AM'
