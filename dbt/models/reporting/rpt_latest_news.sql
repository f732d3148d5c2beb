{#
  view: the newest articles (var latest_articles, default 500) at article x ticker grain so a
  ticker filter works; label/score/sentiment are NULL until the article is scored.
#}
select
    article_id,
    ticker,
    published_at,
    title,
    article_url,
    publisher,
    tickers,
    label,
    score,
    sentiment,
    scored_at
from {{ ref('fct_news_sentiment') }}
where article_id in (
    select article_id
    from {{ ref('fct_news_sentiment') }}
    group by article_id
    order by max(published_at) desc, article_id
    limit {{ var('latest_articles') }}
)
order by published_at desc, article_id, ticker
