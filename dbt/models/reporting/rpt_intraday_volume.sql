{#
  view over stg_stock_aggs (the raw table FINAL), like rpt_intraday_price: minute volume and the
  day's accumulated volume per ticker, current as soon as a bar is loaded.
#}
select
    sym as ticker,
    bar_start,
    bar_end,
    v as volume,
    av as accumulated_volume
from {{ ref('stg_stock_aggs') }}
where ev = 'AM'
