{{ config(materialized='table', engine='MergeTree()', order_by='ticker') }}
select t.ticker as ticker, any(t.name) as name, count(s.trade_id) as trades
from {{ ref('tickers') }} as t left join {{ ref('stg_trades') }} as s on s.ticker = t.ticker
group by t.ticker
