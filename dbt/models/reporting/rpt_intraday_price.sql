{#
  view over stg_stock_aggs (the raw table FINAL), not over fct_stock_bars: a bar is on the dashboard
  the moment the loader inserted it, with no dbt run in between (DESIGN.md: freshness of seconds).
  Intraday = each ticker's current session: from its day's first bar, which is where the accumulated
  volume (av, "today's volume so far") restarts (av <= v); without such a bar, from its first bar.
  change_pct = close / the session's first open - 1, so tickers of any price level share one axis.
  bar_start_et is the bar's wall-clock time in market time (var market_timezone), typed as UTC so a
  client that shows UTC (Superset) shows New York time.
#}
with bars as (
    select sym as ticker, bar_start, bar_end, o, h, l, c, vw
    from {{ ref('stg_stock_aggs') }}
    where ev = 'AM'
),
sessions as (
    select
        sym as ticker,
        if(countIf(av <= v) > 0, maxIf(bar_start, av <= v), min(bar_start)) as session_start,
        if(countIf(av <= v) > 0, argMaxIf(o, bar_start, av <= v), argMin(o, bar_start)) as session_open
    from {{ ref('stg_stock_aggs') }}
    where ev = 'AM'
    group by sym
)
select
    b.ticker as ticker,
    b.bar_start as bar_start,
    b.bar_end as bar_end,
    toDateTime64(toString(toTimeZone(b.bar_start, '{{ var("market_timezone") }}')), 3, 'UTC') as bar_start_et,
    b.o as open,
    b.h as high,
    b.l as low,
    b.c as close,
    b.vw as vwap,
    s.session_start as session_start,
    s.session_open as session_open,
    b.c / nullIf(s.session_open, 0) - 1 as change_pct
from bars as b
inner join sessions as s on s.ticker = b.ticker
where b.bar_start >= s.session_start
