"""Just enough SQL lexing for the HTTP protocol: statement kind, the FORMAT clause, inline INSERT data.

The engine parses the SQL; here we only find the boundaries ClickHouse's HTTP handler finds itself:
where an ``INSERT ... FORMAT X`` header ends and its (possibly binary) data begins, and which output
format a query asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
# Statements chDB can stream with send_query; everything else runs with query().
STREAMABLE = {"SELECT", "WITH", "("}
# Output formats whose chunks concatenate into one valid stream (others, e.g. Arrow or Parquet, have a
# file footer: their results are produced whole).
STREAMABLE_FORMATS = {
    f.lower()
    for f in (
        "Native", "RowBinary", "RowBinaryWithNames", "RowBinaryWithNamesAndTypes", "TabSeparated", "TSV",
        "TabSeparatedRaw", "TSVRaw", "TabSeparatedWithNames", "TSVWithNames", "TabSeparatedWithNamesAndTypes",
        "TSVWithNamesAndTypes", "CSV", "CSVWithNames", "CSVWithNamesAndTypes", "JSONEachRow", "JSONLines",
        "NDJSON", "JSONCompactEachRow", "JSONCompactEachRowWithNames", "JSONCompactEachRowWithNamesAndTypes",
        "JSONStringsEachRow", "ArrowStream", "Values",
    )
}  # fmt: skip
READ_ONLY = {"SELECT", "WITH", "(", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "SET", "USE", ""}
SESSION_STATE = {"SET", "USE"}
# Statements that produce a result set: ClickHouse names its format (X-ClickHouse-Format) even when it is
# empty; DDL, SET, USE, INSERT ... produce none and get no such header.
RESULT_KINDS = {
    "SELECT",
    "WITH",
    "(",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "EXISTS",
    "EXPLAIN",
    "CHECK",
    "KILL",
    "WATCH",
}


@dataclass
class Token:
    start: int
    end: int
    word: str  # upper-cased keyword/identifier, or the punctuation character


def tokens(sql: bytes, limit: int | None = None) -> Iterator[Token]:
    """Top-level tokens (words and punctuation), skipping whitespace, comments and quoted text."""
    i, n = 0, len(sql) if limit is None else min(len(sql), limit)
    while i < n:
        c = sql[i : i + 1]
        if c.isspace():
            i += 1
        elif sql.startswith(b"--", i) or c == b"#":
            j = sql.find(b"\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith(b"/*", i):
            j = sql.find(b"*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in (b"'", b'"', b"`"):
            j = i + 1
            while j < n:
                if sql[j : j + 1] == b"\\":
                    j += 2
                    continue
                if sql[j : j + 1] == c:
                    if sql[j + 1 : j + 2] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            yield Token(i, j + 1, "'")
            i = j + 1
        elif m := _WORD.match(sql, i):
            yield Token(i, m.end(), m.group().decode().upper())
            i = m.end()
        else:
            yield Token(i, i + 1, c.decode("latin-1"))
            i += 1


def kind(sql: bytes) -> str:
    """The statement's first keyword (SELECT, INSERT, CREATE, ...) or '(' for a parenthesised select;
    INSERT for ``WITH ... INSERT ...`` (a WITH clause in front of an INSERT)."""
    toks = tokens(sql, 4096)
    first = next(toks, None)
    if first is None:
        return ""
    return "INSERT" if first.word == "WITH" and _with_insert(toks) is not None else first.word


def _with_insert(toks: Iterator[Token]) -> Token | None:
    """The INSERT token that follows a leading WITH clause at the top level (None: a WITH ... SELECT)."""
    depth = 0
    for tok in toks:
        if tok.word == "(":
            depth += 1
        elif tok.word == ")":
            depth -= 1
        elif depth == 0 and tok.word == "SELECT":
            return None
        elif depth == 0 and tok.word == "INSERT":
            return tok
    return None


def second_statement(sql: bytes) -> int | None:
    """Where a second statement starts after a top-level ';' (None: one statement, maybe with a
    trailing ';'). ClickHouse's HTTP interface runs one statement per request."""
    after_semicolon = False
    for tok in tokens(sql):
        if after_semicolon and tok.word != ";":
            return tok.start
        after_semicolon = after_semicolon or tok.word == ";"
    return None


@dataclass
class InsertSplit:
    """An INSERT whose data follows its header: ``statement`` (without FORMAT) + data in ``fmt``.

    ``input_call``: for ``INSERT INTO t SELECT ... FROM input('structure') FORMAT X``, the statement split
    around the ``input(...)`` call as (before, the call's arguments, after); the data feeds that call."""

    statement: str
    fmt: str
    data_offset: int  # where the data starts in the text that was split
    input_call: tuple[str, str, str] | None = None


def split_insert(sql: bytes, limit: int = 1 << 20) -> InsertSplit | None:
    """Find ``INSERT ... FORMAT X`` / ``INSERT ... VALUES`` / ``INSERT ... SELECT ... FROM input(...) FORMAT X``
    and where its data begins (None: no such INSERT).

    ClickHouse skips one run of whitespace after the format name; the rest is data (any bytes).
    """
    toks = tokens(sql, limit)
    first = next(toks, None)
    if first is not None and first.word == "WITH":  # WITH ... INSERT INTO t ... FORMAT X: the same split
        first = _with_insert(toks)
    if first is None or first.word != "INSERT":
        return None
    depth = 0
    select = False  # INSERT ... SELECT: data only for an input() call
    call: tuple[int, int, int] | None = None  # input( ... ): (start of input, after '(', at ')')
    call_depth = 0
    prev: Token | None = None
    for tok in toks:
        if tok.word == "(":
            depth += 1
            if select and call is None and prev is not None and prev.word == "INPUT":
                call, call_depth = (prev.start, tok.end, -1), depth
        elif tok.word == ")":
            if call is not None and call[2] < 0 and depth == call_depth:
                call = (call[0], call[1], tok.start)
            depth -= 1
        elif depth == 0 and tok.word in ("SELECT", "WITH"):
            select = True  # INSERT ... SELECT: no inline data unless it reads input()
        elif depth == 0 and tok.word == "VALUES" and not select:
            return InsertSplit(sql[: tok.start].decode(), "Values", tok.end)
        elif depth == 0 and tok.word == "FORMAT":
            name = next(toks, None)
            if name is None or not name.word[:1].isalpha() or (select and (call is None or call[2] < 0)):
                return None
            fmt = sql[name.start : name.end].decode()
            offset = name.end
            while offset < len(sql) and sql[offset : offset + 1] in (b" ", b"\t", b"\r"):
                offset += 1
            if sql[offset : offset + 1] == b"\n":
                offset += 1
            if select and call is not None:
                pieces = (sql[: call[0]], sql[call[1] : call[2]], sql[call[2] + 1 : tok.start])
                before, args, after = (p.decode() for p in pieces)
                return InsertSplit(before + after, fmt, offset, (before, args, after))
            return InsertSplit(sql[: tok.start].decode(), fmt, offset)
        prev = tok
    return None


def split_settings(statement: str) -> tuple[str, str]:
    """``INSERT INTO t (cols) SETTINGS a = 1`` -> (``INSERT INTO t (cols)``, ``SETTINGS a = 1``)."""
    sql = statement.encode()
    depth = 0
    toks = list(tokens(sql))
    for i, tok in enumerate(toks):
        if tok.word == "(":
            depth += 1
        elif tok.word == ")":
            depth -= 1
        elif (
            depth == 0
            and tok.word == "SETTINGS"
            and i + 2 < len(toks)
            and _WORD.fullmatch(sql[toks[i + 1].start : toks[i + 1].end])
            and toks[i + 2].word == "="
        ):
            return sql[: tok.start].decode(), sql[tok.start :].decode()
    return statement, ""


def output_format(sql: bytes) -> str | None:
    """The format named by a trailing top-level ``FORMAT X`` clause, if any."""
    found = _format_clause(sql)
    return None if found is None else sql[found[1] : found[2]].decode()


def without_format(sql: bytes) -> bytes:
    """The statement without its trailing ``FORMAT X`` clause."""
    found = _format_clause(sql)
    return sql if found is None else sql[: found[0]] + sql[found[2] :]


def _format_clause(sql: bytes) -> tuple[int, int, int] | None:
    """(start of FORMAT, start of the name, end of the name) of a top-level FORMAT clause that ends the
    statement (only SETTINGS or ';' may follow it)."""
    found, after = None, ""
    depth = 0
    fmt_start = -1
    for tok in tokens(sql):
        if found is not None and not after:
            after = tok.word
        if tok.word == "(":
            depth += 1
        elif tok.word == ")":
            depth -= 1
        elif fmt_start >= 0 and depth == 0 and tok.word[:1].isalpha():
            found, after = (fmt_start, tok.start, tok.end), ""
        fmt_start = tok.start if depth == 0 and tok.word == "FORMAT" else -1
    return found if after in ("", ";", "SETTINGS") else None
