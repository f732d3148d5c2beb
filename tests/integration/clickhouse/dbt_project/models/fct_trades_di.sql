{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='trade_id',
          engine='MergeTree()', order_by='trade_id') }}
select trade_id, ticker, qty from {{ ref('stg_trades') }}
{% if is_incremental() %}
where traded_at >= (select max(traded_at) from {{ ref('stg_trades') }}) - interval 30 second
{% endif %}
