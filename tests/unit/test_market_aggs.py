"""The replay server's aggregates endpoint in-process: the bars it streams, only ended minutes, paging,
the official Massive client (PyPI `massive`) as an oracle, our AggsClient through 429/5xx faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.server import Market, make_app
from rtfin_cli.settings import PolygonSettings
from rtfin_cli.sources.aggs import AggsClient, Bar, am_event, bar_value
from rtfin_cli.sources.records import agg_record, agg_value

M = ds.MINUTE_MS
OPEN = ds.trading_days()[5]  # the default replay starts 5 minutes before this open


def _run(fn: Callable[[TestClient[Any, Any], Market], Awaitable[None]], **market: Any) -> None:
    async def main() -> None:
        m = Market(**{"speed": 0.0, **market})
        async with TestClient(TestServer(make_app(m))) as client:
            await fn(client, m)

    asyncio.run(main())


def _path(ticker: str, lo: int | str, hi: int | str) -> str:
    return f"/v2/aggs/ticker/{ticker}/range/1/minute/{lo}/{hi}"


def _streamed(day: int, minute: int, sym: str) -> dict[str, Any]:
    return next(b for b in ds.day_bars(day)[minute] if b["sym"] == sym)


def test_serves_exactly_the_streamed_bars_and_only_ended_minutes() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        shift = m.clock.shift_ms
        m.clock.set(sim_ms=OPEN + 10 * M + 30_000)  # 10.5 minutes into the session
        hdr = {"Authorization": "Bearer x"}
        body = await (
            await c.get(_path("AAPL", OPEN + shift - 60 * M, OPEN + shift + 60 * M), headers=hdr)
        ).json()
        assert body["status"] == "OK" and body["ticker"] == "AAPL" and body["adjusted"] is True
        ts = [r["t"] for r in body["results"]]
        assert ts == [OPEN + shift + i * M for i in range(10)]  # minute 10 has not ended
        for i, r in enumerate(body["results"]):
            bar = _streamed(5, i, "AAPL")
            event = am_event("AAPL", r)
            assert {k: event[k] for k in ("s", "e", "o", "h", "l", "c", "v", "vw")} == {
                "s": bar["s"] + shift,
                "e": bar["e"] + shift,
                **{k: bar[k] for k in ("o", "h", "l", "c", "v", "vw")},
            }
            agg_record(event, "2026-01-01T00:00:00Z")  # goes through the streamed record mapping
        empty = await (await c.get(_path("NOPE", 0, OPEN + shift), headers=hdr)).json()
        assert empty["resultsCount"] == 0 and "results" not in empty

    _run(check)


def test_refuses_what_the_endpoint_refuses() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        assert (await c.get(_path("AAPL", 0, 1))).status == 401
        hdr = {"Authorization": "Bearer x"}
        for path, params in [
            (_path("AAPL", 10, 5), {}),
            (_path("AAPL", "yesterday", 5), {}),
            (_path("AAPL", 0, 5), {"limit": "50001"}),
            (_path("AAPL", 0, 5), {"sort": "up"}),
            ("/v2/aggs/ticker/AAPL/range/5/minute/0/5", {}),
        ]:
            resp = await c.get(path, params=params, headers=hdr)
            body = await resp.json()
            assert resp.status == 400 and body["status"] == "ERROR" and body["error"], path

    _run(check)


def test_official_client_pages_through_every_bar_in_both_orders() -> None:
    massive = pytest.importorskip("massive")

    async def check(c: TestClient[Any, Any], m: Market) -> None:
        m.clock.set(sim_ms=ds.trading_days()[6] + 30 * M)  # day 6's session and 30 minutes of day 7
        shift = m.clock.shift_ms
        base = str(c.make_url("")).rstrip("/")
        rest = massive.RESTClient(api_key="x", base=base, retries=0)
        lo, hi = OPEN + shift, ds.trading_days()[6] + shift + 60 * M

        def fetch(sort: str) -> list[Any]:
            return list(rest.list_aggs("MSFT", 1, "minute", lo, hi, adjusted=True, sort=sort, limit=97))

        asc = await asyncio.to_thread(fetch, "asc")
        desc = await asyncio.to_thread(fetch, "desc")
        want = [OPEN + shift + i * M for i in range(390)] + [
            ds.trading_days()[6] + shift + i * M for i in range(30)
        ]
        assert [a.timestamp for a in asc] == want and [a.timestamp for a in desc] == want[::-1]
        first = _streamed(5, 0, "MSFT")
        assert (asc[0].open, asc[0].close, asc[0].volume, asc[0].vwap) == (
            first["o"],
            first["c"],
            first["v"],
            first["vw"],
        )
        assert all(a.transactions and a.transactions >= 1 for a in asc)

    _run(check)


def test_aggs_client_rides_out_429_and_5xx_and_pages() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        m.clock.set(sim_ms=OPEN + 120 * M)
        shift = m.clock.shift_ms
        await c.post("/_control/faults", json={"burst_429": 2, "http_5xx": 2, "retry_after": 0.01})
        pol = PolygonSettings(rest_url=str(c.make_url("")).rstrip("/"), max_retries=6)
        client = AggsClient(pol, limit=50)
        try:
            bars = await asyncio.to_thread(client.minute_bars, "BRK.B", OPEN + shift, OPEN + shift + 200 * M)
        finally:
            client.close()
        assert [b.t for b in bars if isinstance(b, Bar)] == [OPEN + shift + i * M for i in range(120)]
        assert client.retries == 4 and client.requests == 4 + 3  # 3 pages of 50

    _run(check)


@pytest.mark.parametrize(
    "result",
    [
        {"t": 1_700_000_000_000, "o": 1.5, "h": 2, "l": 1.25, "c": 1.75, "v": 1200, "vw": 1.6123, "n": 7},
        {
            "t": 1_700_000_060_000,
            "o": 0.0001,
            "h": 1e-05,
            "l": 3.0,
            "c": 4.1,
            "v": 0.5,
            "vw": 12345.678,
            "otc": True,
        },
    ],
)
@pytest.mark.parametrize("ticker", ["AAPL", "BRK.B", "Ä€"])
def test_the_typed_fast_path_writes_the_record_of_the_streamed_mapping(
    ticker: str, result: dict[str, Any]
) -> None:
    import json

    import msgspec

    bar = msgspec.convert(result, Bar)
    fast = bar_value(ticker, bar, "2026-12-06T10:00:00.000Z")
    sym, end_ms, slow = agg_value(am_event(ticker, result), "2026-12-06T10:00:00.000Z")
    assert fast is not None and fast[0] == end_ms and sym == ticker
    # the same object: fields, their order and values (msgspec may spell a float differently, 1e-5 / 1e-05)
    assert list(json.loads(fast[1]).items()) == list(json.loads(slow).items())
    assert bar_value(ticker, msgspec.structs.replace(bar, v=float("inf")), "x") is None


def test_a_range_the_endpoint_refuses_is_an_error_with_its_text() -> None:
    from rtfin_cli.errors import ServiceUnavailable

    async def check(c: TestClient[Any, Any], m: Market) -> None:
        client = AggsClient(PolygonSettings(rest_url=str(c.make_url("")).rstrip("/")))
        try:
            with pytest.raises(
                ServiceUnavailable, match="HTTP 400: The 'to' date must be after the 'from' date"
            ):
                await asyncio.to_thread(client.minute_bars, "AAPL", OPEN + 10 * M, OPEN)
        finally:
            client.close()

    _run(check)
