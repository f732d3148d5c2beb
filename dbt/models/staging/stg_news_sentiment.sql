-- view: zero storage, always current; FINAL keeps the newest score (scored_at) per article.
select
    id as article_id,
    published_utc as published_at,
    label,
    score,
    sentiment,
    model,
    scored_at,
    _loaded_at as loaded_at
from {{ source('raw', 'news_sentiment') }} final
