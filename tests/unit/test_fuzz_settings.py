"""Fuzz rtfin.toml: whatever a file holds, loading gives settings or a one-line ConfigError — never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtfin_cli.errors import ConfigError
from rtfin_cli.settings import load_settings

KEYS = ["partitions", "bootstrap", "port", "ingest", "batch_size", "api_key", "replication", "x"]
SECTIONS = ["kafka", "kafka.topics", "clickhouse", "sentiment", "polygon", "local", "nope"]
values = st.one_of(
    st.integers(-(2**70), 2**70), st.text(max_size=20), st.booleans(), st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=3),
)  # fmt: skip


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, float):
        return "nan" if v != v else repr(v).replace("inf", "inf")
    return str(v)


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rtfin.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_settings(path, "local", environ={})
        except ConfigError as exc:
            assert exc.message and "\n" not in exc.message.strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SECTIONS), st.sampled_from(KEYS), values), max_size=6))
def test_structured_profiles(entries: list[tuple[str, str, object]]) -> None:
    body = "".join(f"[local.{sec}]\n{key} = {_toml_value(val)}\n" for sec, key, val in entries)
    _load(body)
