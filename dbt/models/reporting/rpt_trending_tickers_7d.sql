{#
  view: top tickers by distinct articles over the last 7 days with average sentiment and the share
  of positive/negative articles (among scored ones). An aggregate over a few thousand rows of
  fct_news_sentiment — cheaper to compute per dashboard refresh than to store.
#}
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
