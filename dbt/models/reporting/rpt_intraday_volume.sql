{#
  view over stg_stock_aggs (the raw table FINAL), like rpt_intraday_price: minute volume and the
  day's accumulated volume per ticker in its current session (from the bar where av restarts),
  current as soon as a bar is loaded; bar_start_et in market time as in rpt_intraday_price.
#}
with bars as (
    select sym as ticker, bar_start, bar_end, v, av
    from {{ ref('stg_stock_aggs') }}
    where ev = 'AM'
),
sessions as (
    select ticker, if(countIf(av <= v) > 0, maxIf(bar_start, av <= v), min(bar_start)) as session_start
    from bars
    group by ticker
)
select
    b.ticker as ticker,
    b.bar_start as bar_start,
    b.bar_end as bar_end,
    toDateTime64(toString(toTimeZone(b.bar_start, '{{ var("market_timezone") }}')), 3, 'UTC') as bar_start_et,
    b.v as volume,
    b.av as accumulated_volume
from bars as b
inner join sessions as s on s.ticker = b.ticker
where b.bar_start >= s.session_start
