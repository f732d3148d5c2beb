{{ config(materialized='view') }}
select trade_id, ticker, price, qty, traded_at from {{ source('raw', 'trades') }}
