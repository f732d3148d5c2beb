{#
  table, rebuilt each run: one row per ticker seen in news or bars (a few hundred rows).
#}
{{ config(order_by='ticker', engine='MergeTree()') }}
select
    ticker,
    min(at) as first_seen_at,
    max(at) as last_seen_at,
    toUInt64(uniqExactIf(article_id, kind = 'news')) as article_count,
    toUInt64(countIf(kind = 'bar')) as bar_count
from (
    select ticker, published_at as at, article_id, 'news' as kind from {{ ref('fct_news_sentiment') }}
    union all
    select sym as ticker, bar_start as at, '' as article_id, 'bar' as kind from {{ ref('fct_stock_bars') }} final
)
group by ticker
