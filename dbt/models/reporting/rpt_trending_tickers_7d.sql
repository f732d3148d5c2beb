{#
  view: top tickers by distinct articles over the last 7 days with average sentiment and the share
  of positive/negative articles (among scored ones). An aggregate over a few thousand rows of
  fct_news_sentiment — cheaper to compute per dashboard refresh than to store. last_price and
  change_pct: the ticker's newest close in its current session and its change from the session's open
  (rpt_intraday_price; NULL without bars), so the ranking shows the price level beside the news.
#}
with ranked as (
    select
        toUInt32(row_number() over (order by article_count desc, ticker)) as rank,
        ticker,
        article_count,
        avg_sentiment,
        share_positive,
        share_negative,
        last_article_at
    from (
        select
            ticker,
            toUInt64(uniqExact(article_id)) as article_count,
            avgOrNullIf(sentiment, label is not null) as avg_sentiment,
            countIf(label = 'positive') / nullIf(countIf(label is not null), 0) as share_positive,
            countIf(label = 'negative') / nullIf(countIf(label is not null), 0) as share_negative,
            max(published_at) as last_article_at
        from {{ ref('fct_news_sentiment') }}
        where published_at >= now64(3, 'UTC') - interval {{ var('trending_days') }} day
        group by ticker
    )
    order by rank
    limit {{ var('trending_top') }}
),
prices as (
    select ticker, argMax(close, bar_start) as last_price, argMax(change_pct, bar_start) as change_pct
    from {{ ref('rpt_intraday_price') }}
    where ticker in (select ticker from ranked)
    group by ticker
)
select
    r.rank as rank,
    r.ticker as ticker,
    r.article_count as article_count,
    r.avg_sentiment as avg_sentiment,
    r.share_positive as share_positive,
    r.share_negative as share_negative,
    r.last_article_at as last_article_at,
    p.last_price as last_price,
    p.change_pct as change_pct
from ranked as r
left join prices as p on p.ticker = r.ticker
order by rank
settings join_use_nulls = 1
