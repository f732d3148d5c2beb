{#
  table, rebuilt each run: one row per article x ticker with its (newest) sentiment. News and
  their scores land at different times, so a full rebuild from the deduplicated staging views
  is the simple way to keep the join right; 100k articles rebuild in seconds.
  An article not scored yet has NULL label/score/sentiment. provider_label / provider_reasoning: the news
  provider's insight for this ticker (Massive's `insights`), NULL where the article has none for it.
#}
{{ config(order_by='(ticker, published_at, article_id)', engine='MergeTree()') }}
with arrayFirst(i -> tupleElement(i, 'ticker') = ticker, n.insights) as insight
select
    n.article_id as article_id,
    ticker,
    n.published_at as published_at,
    n.title as title,
    n.article_url as article_url,
    n.publisher as publisher,
    arrayStringConcat(n.tickers, ',') as tickers,
    s.label as label,
    s.score as score,
    s.sentiment as sentiment,
    s.model as model,
    s.scored_at as scored_at,
    nullIf(tupleElement(insight, 'sentiment'), '') as provider_label,
    nullIf(tupleElement(insight, 'sentiment_reasoning'), '') as provider_reasoning
from {{ ref('stg_news') }} as n
array join n.tickers as ticker
left join {{ ref('stg_news_sentiment') }} as s on s.article_id = n.article_id
settings join_use_nulls = 1
