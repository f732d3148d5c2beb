"""Agreement between the model's label and the news provider's (Massive ``insights``) over what is in ClickHouse.

Each insight is one (article, ticker) reading by the provider; the model scores the article as a whole, so
the pair compared is (the insight's sentiment, the article's newest model label). The raw tables are read
deduplicated (FINAL), so the numbers hold right after loading, without a dbt run. Insights of articles not
scored yet, and provider labels outside positive/negative/neutral, are counted but not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtfin_cli.errors import DataError, RtfinError
from rtfin_cli.sentiment.evaluate import EvalReport, metrics
from rtfin_cli.sentiment.labelled import LABELS
from rtfin_cli.settings import RtfinSettings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

UNKNOWN_TABLE = {60, 81}  # UNKNOWN_TABLE, UNKNOWN_DATABASE
_SQL = """
SELECT tupleElement(i, 'sentiment') AS provider, s.label AS model, count() AS n
FROM {raw}.news AS a FINAL
ARRAY JOIN a.insights AS i
LEFT JOIN (SELECT id, label FROM {raw}.news_sentiment FINAL) AS s ON s.id = a.id
WHERE a.published_utc >= fromUnixTimestamp64Milli({{since:Int64}}, 'UTC')
GROUP BY provider, model
SETTINGS join_use_nulls = 0
"""


@dataclass
class InsightsReport:
    """The model (predicted) against the provider (gold) over every compared (article, ticker) insight."""

    metrics: EvalReport
    insights: int  # every insight in range
    unscored: int  # of those, on articles the model has not scored yet
    other_labels: int  # of those, with a provider label outside LABELS
    since_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        m = self.metrics.as_dict()
        del m["ece"], m["errors"]  # the provider gives no confidence to calibrate against
        return m | {"compared": self.metrics.n, "insights": self.insights, "unscored": self.unscored,
                    "other_labels": self.other_labels, "since_ms": self.since_ms}  # fmt: skip


def counts(client: Client, raw: str, since_ms: int | None) -> dict[tuple[str, str], int]:
    """{(provider label, model label or ''): insights} of articles published since ``since_ms``."""
    rows = client.query(_SQL.format(raw=raw), parameters={"since": since_ms or 0}).result_rows
    return {(str(p), str(m)): int(n) for p, m, n in rows}


def compare(
    settings: RtfinSettings, since_ms: int | None = None, client: Client | None = None
) -> InsightsReport:
    """Accuracy, macro-F1 and confusion matrix of the model against the provider's insights in ClickHouse."""
    from rtfin_cli.sources.records import iso_ms
    from rtfin_cli.warehouse.client import error_code, errors, get_client, where
    from rtfin_cli.warehouse.ddl import ident

    ch = settings.clickhouse
    raw = ident(ch.raw_database)
    client = client or get_client(settings)
    try:
        with errors(ch, "reading the provider's insights"):
            by_pair = counts(client, raw, since_ms)
    except RtfinError as exc:
        if error_code(exc.__cause__ or exc) in UNKNOWN_TABLE:
            raise DataError(
                f"ClickHouse at {where(ch)} has no raw news tables ({raw}.news, {raw}.news_sentiment)",
                "Create and fill them: `rtfin transform run` (or `rtfin local up`).",
            ) from exc
        raise
    gold, pred = [], []
    for (provider, model), n in by_pair.items():
        if provider in LABELS and model in LABELS:
            gold += [provider] * n
            pred += [model] * n
    if not gold:
        since = f" published since {iso_ms(since_ms)}" if since_ms is not None else ""
        raise DataError(
            f"no article in {raw}{since} has both a provider insight and a model label to compare",
            "Load news with insights and run the sentiment job (`rtfin sentiment run`), or widen --since.",
        )
    return InsightsReport(
        metrics=metrics(gold, pred, "model vs provider"),
        insights=sum(by_pair.values()),
        unscored=sum(n for (_, m), n in by_pair.items() if m not in LABELS),
        other_labels=sum(n for (p, m), n in by_pair.items() if p not in LABELS and m in LABELS),
        since_ms=since_ms,
    )
