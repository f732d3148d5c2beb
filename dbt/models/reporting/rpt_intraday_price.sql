{#
  view over fct_stock_bars FINAL: minute bars (ev = 'AM') as OHLC + VWAP. The dashboard filters by
  ticker and time range, which the table's ORDER BY (sym, ev, bar_start) serves directly.
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
from {{ ref('fct_stock_bars') }} final
where ev = 'AM'
