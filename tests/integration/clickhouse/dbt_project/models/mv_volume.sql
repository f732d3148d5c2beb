{{ config(materialized='materialized_view', engine='SummingMergeTree()', order_by='ticker') }}
select ticker, sum(qty) as volume from {{ source('raw', 'trades') }} group by ticker
