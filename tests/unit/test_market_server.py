"""The replay server's REST protocol in-process (aiohttp test client): auth, filters, pages, 429, clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.server import Market, make_app

NEWS = "/v2/reference/news"


def _run(fn: Callable[[TestClient[Any, Any], Market], Awaitable[None]], **market: Any) -> None:
    async def main() -> None:
        m = Market(**{"speed": 0.0, **market})
        async with TestClient(TestServer(make_app(m))) as client:
            await fn(client, m)

    asyncio.run(main())


def test_auth_by_query_or_bearer_and_401s() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        assert (await c.get(NEWS)).status == 401
        assert (await c.get(NEWS, params={"apiKey": "x"})).status == 200
        assert (await c.get(NEWS, headers={"Authorization": "Bearer x"})).status == 200
        await c.post("/_control/faults", json={"auth_fail": True})
        resp = await c.get(NEWS, params={"apiKey": "x"})
        assert resp.status == 401 and (await resp.json())["error"] == "Unknown API Key"

    _run(check)


def test_only_past_articles_are_visible_and_times_are_shifted() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        body = await (await c.get(NEWS, params={"apiKey": "x", "limit": 1000, "order": "desc"})).json()
        newest = body["results"][0]
        assert ds.parse_ms(newest["published_utc"]) <= m.shown(m.clock.now())
        status = await (await c.get("/_control/status")).json()
        assert 0 < status["articles_visible"] < status["articles_total"]
        assert "label" not in newest and newest["insights"][0]["sentiment"] in (
            "positive",
            "negative",
            "neutral",
        )

    _run(check)


def test_pagination_gte_gt_lt_and_cursor_cover_everything_once() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        await c.post("/_control/clock", json={"goto": "end"})
        ids: list[str] = []
        params: dict[str, Any] | None = {
            "apiKey": "x",
            "order": "asc",
            "limit": 333,
            "published_utc.gte": "2000-01-01",
        }
        url = NEWS
        while True:
            body = await (await c.get(url, params=params)).json()
            ids += [a["id"] for a in body["results"]]
            if "next_url" not in body:
                break
            url, params = body["next_url"].split(str(c.make_url("")).rstrip("/"), 1)[1], {"apiKey": "x"}
        assert len(ids) == len(set(ids)) == len(ds.news())
        t = (await (await c.get(NEWS, params={"apiKey": "x", "order": "asc", "limit": 5})).json())["results"][
            2
        ]
        ts = t["published_utc"]
        gte = await (
            await c.get(NEWS, params={"apiKey": "x", "order": "asc", "published_utc.gte": ts})
        ).json()
        gt = await (await c.get(NEWS, params={"apiKey": "x", "order": "asc", "published_utc.gt": ts})).json()
        assert gte["results"][0]["published_utc"] == ts and all(
            a["published_utc"] > ts for a in gt["results"]
        )
        lt = await (await c.get(NEWS, params={"apiKey": "x", "published_utc.lt": ts, "limit": 1000})).json()
        assert all(a["published_utc"] < ts for a in lt["results"]) and len(lt["results"]) == 2
        one = await (await c.get(NEWS, params={"apiKey": "x", "ticker": "AAPL", "limit": 50})).json()
        assert one["results"] and all("AAPL" in a["tickers"] for a in one["results"])
        assert (await c.get(NEWS, params={"apiKey": "x", "published_utc.gt": "junk"})).status == 400

    _run(check)


def test_rate_limit_answers_429_with_retry_after() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        codes = [(await c.get(NEWS, params={"apiKey": "x", "limit": 1})) for _ in range(8)]
        limited = [r for r in codes if r.status == 429]
        assert limited and float(limited[0].headers["Retry-After"]) >= 0.5
        await c.post("/_control/faults", json={"http_5xx": 1})
        await asyncio.sleep(1.1)
        assert (await c.get(NEWS, params={"apiKey": "x"})).status == 503

    _run(check, rate_limit=2.0)


def test_control_rejects_unknown_faults() -> None:
    async def check(c: TestClient[Any, Any], m: Market) -> None:
        assert (await c.post("/_control/faults", json={"nope": 1})).status == 400
        assert (await c.post("/_control/clock", json={"speed": -1})).status == 400

    _run(check)
