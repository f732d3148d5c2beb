-- A replay (every record produced again) must not show a duplicate anywhere downstream:
-- the deduplicated staging views hold exactly one row per raw identity, and every mart and
-- reporting model holds at most one row per identity. Returns offending models.
select model, problems from (
    select 'stg_news' as model,
        (select count() from {{ ref('stg_news') }})
        - (select uniqExact(id) from {{ source('raw', 'news') }}) as problems
    union all
    select 'stg_stock_aggs',
        (select count() from {{ ref('stg_stock_aggs') }})
        - (select uniqExact(sym, ev, s) from {{ source('raw', 'stock_aggs') }})
    union all
    select 'stg_news_sentiment',
        (select count() from {{ ref('stg_news_sentiment') }})
        - (select uniqExact(id) from {{ source('raw', 'news_sentiment') }})
    union all
    select 'fct_stock_bars', count() from (
        select sym, ev, bar_start from {{ ref('fct_stock_bars') }} final group by sym, ev, bar_start having count() > 1)
    union all
    select 'fct_news_sentiment', count() from (
        select article_id, ticker from {{ ref('fct_news_sentiment') }} group by article_id, ticker having count() > 1)
    union all
    select 'dim_ticker', count() from (
        select ticker from {{ ref('dim_ticker') }} group by ticker having count() > 1)
    union all
    select 'rpt_intraday_volume', count() from (
        select ticker, bar_start from {{ ref('rpt_intraday_volume') }} group by ticker, bar_start having count() > 1)
    union all
    select 'rpt_trending_tickers_7d', count() from (
        select ticker from {{ ref('rpt_trending_tickers_7d') }} group by ticker having count() > 1)
)
where problems != 0
