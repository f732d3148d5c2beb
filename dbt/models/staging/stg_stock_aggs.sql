-- view: zero storage, always current; FINAL keeps one row per bar identity (sym, ev, s).
select
    sym,
    ev,
    fromUnixTimestamp64Milli(s, 'UTC') as bar_start,
    fromUnixTimestamp64Milli(e, 'UTC') as bar_end,
    o, h, l, c, v, vw, av, a, z, otc,
    ingested_at,
    _loaded_at as loaded_at
from {{ source('raw', 'stock_aggs') }} final
