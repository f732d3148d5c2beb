"""The official Massive client (``massive`` on PyPI, a dev extra) as an oracle for the replay server and
for rtfin's records: it pages through the news endpoint and receives minute aggregates from the
WebSocket exactly as it would from Massive, and every record rtfin writes from those payloads
round-trips through the client's models (massive ``rest/models/tickers.py`` TickerNews and Insight,
``websocket/models/models.py`` EquityAgg) with no field the models define lost."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import pytest

from rtfin_cli.local.market.service import MarketServer
from rtfin_cli.settings import PolygonSettings
from rtfin_cli.sources.news import NewsClient
from rtfin_cli.sources.records import agg_record, news_record

massive = pytest.importorskip("massive")
KEY = "replay-key"


def _model_dict(model: Any) -> dict[str, Any]:
    return {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}


def test_the_official_client_pages_the_news_and_rtfin_records_round_trip(market: MarketServer) -> None:
    from massive.rest.models.tickers import TickerNews

    client = massive.RESTClient(api_key=KEY, base=market.url, retries=0)
    theirs = list(client.list_ticker_news(published_utc_gte="2000-01-01", limit=1000, sort="published_utc",
                                          order="asc"))  # fmt: skip
    ours = [
        a for page in NewsClient(PolygonSettings(rest_url=market.url, api_key=KEY)).pages(0) for a in page
    ]
    assert len(theirs) > 1000  # more than one page: the client followed next_url
    assert [a.id for a in theirs] == [a["id"] for a in ours]

    fields = {f.name for f in dataclasses.fields(TickerNews)}
    for raw in ours:
        _, _, record = news_record(raw, "2026-12-06T10:00:00.000Z")
        assert fields <= set(record), f"dropped: {fields - set(record)}"
        model = _model_dict(TickerNews.from_dict(record))
        expected = TickerNews.from_dict(raw)
        for name in fields - {"publisher", "insights"}:
            assert model[name] == getattr(expected, name), name
        assert _model_dict(model["publisher"]) == _model_dict(expected.publisher)


def test_rtfin_keeps_every_insight_of_the_official_model() -> None:
    from massive.rest.models.tickers import TickerNews

    raw = {
        "id": "n1", "published_utc": "2026-12-04T14:30:00Z", "title": "t", "article_url": "https://x.example/n1",
        "publisher": {"name": "p"}, "tickers": ["AAPL", "MSFT"],
        "insights": [{"ticker": "AAPL", "sentiment": "positive", "sentiment_reasoning": "beat on revenue"},
                     {"ticker": "MSFT", "sentiment": "neutral", "sentiment_reasoning": "mentioned"}],
    }  # fmt: skip
    record = news_record(raw, "2026-12-04T14:30:01.000Z")[2]
    assert TickerNews.from_dict(record).insights == TickerNews.from_dict(raw).insights


def test_the_official_websocket_client_receives_aggregates_rtfin_records_round_trip(
    market: MarketServer,
) -> None:
    from massive.websocket.models import EquityAgg, Market, parse

    frames: list[str] = []

    class Enough(Exception):
        pass

    async def collect(msg: Any) -> None:
        frames.append(msg if isinstance(msg, str) else msg.decode())
        if sum(1 for f in frames for e in json.loads(f) if e.get("ev") == "AM") >= 20:
            raise Enough

    ws = massive.WebSocketClient(api_key=KEY, feed=f"127.0.0.1:{market.port}", market="stocks",
                                 secure=False, raw=True, subscriptions=["AM.*"], max_reconnects=0)  # fmt: skip
    market.control("clock", {"speed": 600})
    try:
        with pytest.raises(Enough):
            asyncio.run(asyncio.wait_for(ws.connect(collect), timeout=60))
    finally:
        market.control("clock", {"speed": 0})
    events = [e for f in frames for e in json.loads(f) if e.get("ev") == "AM"]
    official = parse(events, logging.getLogger("massive-oracle"), Market.Stocks)
    assert len(official) == len(events) >= 20 and all(isinstance(m, EquityAgg) for m in official)
    for event, model in zip(events, official, strict=True):
        record = agg_record(event, "2026-12-06T10:00:00.000Z")[2]
        ours = EquityAgg.from_dict(record)
        # otc is sent only when true; rtfin's record makes the absent flag an explicit false
        assert dataclasses.replace(ours, otc=ours.otc or None) == model
