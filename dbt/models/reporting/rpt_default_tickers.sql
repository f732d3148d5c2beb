{#
  view: the tickers the price and volume charts show while the Ticker filter is empty — the configured
  list (var dashboard_tickers) if it is not empty, else the top var dashboard_default_top trending
  tickers that have bars in their current session. A handful of lines stays readable on one axis.
#}
{% set configured = var('dashboard_tickers') %}
{% if configured %}
select arrayJoin([{% for t in configured %}'{{ t | replace("'", "") }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as ticker
{% else %}
select ticker
from {{ ref('rpt_trending_tickers_7d') }}
where ticker in (select distinct ticker from {{ ref('rpt_intraday_price') }})
order by rank
limit {{ var('dashboard_default_top') }}
{% endif %}
