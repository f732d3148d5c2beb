"""The replay's status tells `rtfin lag` its clock, whether its market is open and its newest article."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from rtfin_cli.local.market import dataset as ds
from rtfin_cli.local.market.server import Market, make_app


def _status_at(dataset_ms: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        m = Market(speed=0.0)
        async with TestClient(TestServer(make_app(m))) as c:
            goto = ds.iso(m.shown(dataset_ms))
            return await (await c.post("/_control/clock", json={"goto": goto})).json()  # type: ignore[no-any-return]

    return asyncio.run(main())


def test_open_market_names_its_session_open() -> None:
    day = ds.trading_days()[5]
    doc = _status_at(day + 90 * ds.MINUTE_MS)  # 11:00 New York
    assert doc["market_open"] is True and doc["next_open"] is None
    shift = doc["shift_ms"]
    assert ds.parse_ms(doc["session_open"]) == day + shift
    assert ds.parse_ms(doc["now"]) == day + 90 * ds.MINUTE_MS + shift
    newest = ds.parse_ms(doc["newest_article"])
    assert newest <= ds.parse_ms(doc["now"]) and doc["articles_visible"] > 0


def test_closed_market_names_the_next_open() -> None:
    days = ds.trading_days()
    after_close = days[4] + (ds.SESSION_MINUTES + 30) * ds.MINUTE_MS  # a Friday evening
    doc = _status_at(after_close)
    assert doc["market_open"] is False and doc["session_open"] is None
    assert ds.parse_ms(doc["next_open"]) == days[5] + doc["shift_ms"]  # Monday's open


def test_before_the_first_article_there_is_no_newest() -> None:
    doc = _status_at(ds.START_MS - 30 * 86_400_000)
    assert doc["articles_visible"] == 0 and doc["newest_article"] is None


def test_next_article_is_the_first_one_after_what_a_producer_has() -> None:
    async def main() -> None:
        m = Market(speed=0.0)
        async with TestClient(TestServer(make_app(m))) as c:
            goto = ds.iso(m.shown(ds.trading_days()[5] + 90 * ds.MINUTE_MS))
            doc = await (await c.post("/_control/clock", json={"goto": goto})).json()
            visible = doc["articles_visible"]
            had = ds.iso(m.shown(m.times[visible - 10]))  # a producer ten articles behind
            got = await (await c.get("/_control/status", params={"after": had})).json()
            first_missing = next(t for t in m.times[visible - 10 :] if t > m.times[visible - 10])
            assert ds.parse_ms(got["next_article"]) == m.shown(first_missing)
            caught_up = await (
                await c.get("/_control/status", params={"after": doc["newest_article"]})
            ).json()
            assert caught_up["next_article"] is None
            assert (await c.get("/_control/status", params={"after": "soon"})).status == 400

    asyncio.run(main())
