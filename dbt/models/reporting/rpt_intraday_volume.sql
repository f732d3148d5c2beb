{#
  view over fct_stock_bars FINAL: minute volume and the day's accumulated volume per ticker.
#}
select
    sym as ticker,
    bar_start,
    bar_end,
    v as volume,
    av as accumulated_volume
from {{ ref('fct_stock_bars') }} final
where ev = 'AM'
