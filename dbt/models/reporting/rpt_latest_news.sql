{#
  view over the staging views (raw tables FINAL), not over fct_news_sentiment: an article and its
  label show as soon as the loader inserted them. Only the newest articles (var latest_articles,
  default 500) are read: the top-N by published time first, then those ids' rows and scores by
  primary key. Grain article x ticker (same rows as fct_news_sentiment) so a ticker filter works;
  label/score/sentiment are NULL until the article is scored. published_et: the publish time in market
  time (var market_timezone), typed as UTC so a client that shows UTC shows New York time. keywords: the
  title's words of 3+ letters and the article's tickers, lower case, for the dashboard's keyword search.
  provider_label / provider_reasoning: the news provider's insight for the row's ticker (NULL if none).
#}
with arrayFirst(i -> tupleElement(i, 'ticker') = ticker, n.insights) as insight,
latest as (
    select article_id
    from {{ ref('stg_news') }}
    where notEmpty(tickers)
    order by published_at desc, article_id
    limit {{ var('latest_articles') }}
),
scores as (
    select article_id, label, score, sentiment, scored_at
    from {{ ref('stg_news_sentiment') }}
    where article_id in (select article_id from latest)
)
select
    n.article_id as article_id,
    ticker,
    n.published_at as published_at,
    toDateTime64(toString(toTimeZone(n.published_at, '{{ var("market_timezone") }}')), 3, 'UTC') as published_et,
    n.title as title,
    n.article_url as article_url,
    n.publisher as publisher,
    arrayStringConcat(n.tickers, ',') as tickers,
    s.label as label,
    s.score as score,
    s.sentiment as sentiment,
    s.scored_at as scored_at,
    nullIf(tupleElement(insight, 'sentiment'), '') as provider_label,
    nullIf(tupleElement(insight, 'sentiment_reasoning'), '') as provider_reasoning,
    arrayDistinct(arrayConcat(
        arrayFilter(w -> length(w) >= 3, splitByNonAlpha(lower(n.title))),
        arrayMap(t -> lower(t), n.tickers)
    )) as keywords
from {{ ref('stg_news') }} as n
array join n.tickers as ticker
left join scores as s on s.article_id = n.article_id
where n.article_id in (select article_id from latest)
order by published_at desc, article_id, ticker
settings join_use_nulls = 1
