-- view: zero storage, always current; FINAL collapses replayed/duplicated versions of an article.
select
    id as article_id,
    published_utc as published_at,
    title,
    description,
    article_url,
    author,
    tupleElement(r.publisher, 'name') as publisher,
    tupleElement(r.publisher, 'homepage_url') as publisher_url,
    arrayDistinct(arrayFilter(t -> t != '', r.tickers)) as tickers,
    keywords,
    insights,
    image_url,
    ingested_at,
    _loaded_at as loaded_at
from {{ source('raw', 'news') }} as r final
