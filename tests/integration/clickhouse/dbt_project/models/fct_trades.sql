{{ config(materialized='incremental', engine='ReplacingMergeTree()', order_by='trade_id', unique_key='trade_id') }}
select trade_id, ticker, price, qty, price * qty as notional, traded_at from {{ ref('stg_trades') }}
{% if is_incremental() %}
where traded_at > (select max(traded_at) from {{ this }})
{% endif %}
