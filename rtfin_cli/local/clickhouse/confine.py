"""What a user of the local endpoint may reach beyond its tables: the confinement of a ClickHouse server.

chDB runs ClickHouse as ``clickhouse-local``, which lets ``file()`` read any path the process can read
(ClickHouse's ``StorageFile`` confines paths to ``user_files_path`` only when it runs as a server) and
``url()`` / ``remote()`` / ``s3()`` ... reach any host. This module refuses such statements before they reach
the engine, with the errors a ClickHouse server gives:

- file-reading/writing table functions, engines and the ``file()`` function (file, fileCluster, File,
  sqlite, SQLite, Filesystem, icebergLocal, deltaLakeLocal, ATTACH ... FROM 'dir'): every string argument
  must resolve inside the user-files directory (relative paths are taken from it, like
  ``user_files_path``), else ``DATABASE_ACCESS_DENIED`` (291) ``File `x` is not inside `dir```;
- ``INTO OUTFILE`` and ``FROM INFILE`` (client-side clauses a server refuses): ``INTO_OUTFILE_NOT_ALLOWED``
  (358) / ``UNKNOWN_TYPE_OF_QUERY`` (59); a ``format_schema`` file, like a file argument;
- programs (executable, executablePool, Executable engines, chDB's Python()): ``DATABASE_ACCESS_DENIED``;
- VALUES data: expressions there are evaluated (``file()`` among them), so inline VALUES data is checked
  like SQL; VALUES data streamed in a body too large to read first is taken as literals only. The two
  settings that allow expressions cannot be changed: ``SETTING_CONSTRAINT_VIOLATION`` (452);
- network table functions and engines (url, remote, s3, mysql, postgresql, hdfs, kafka ...): refused with
  ``UNACCEPTABLE_URL`` (491, as for a host missing from ``remote_url_allow_hosts``) unless the endpoint was
  started with loopback access, and then only when their address is a loopback literal.

The check is lexical (top-level tokens; quoted text and comments are skipped), so it refuses a little more
than ClickHouse would (e.g. a non-literal path), never less: a name is caught wherever it is called.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rtfin_cli.local.clickhouse.errors import CHError
from rtfin_cli.local.clickhouse.sqltext import InsertSplit, Token, tokens

FILE_CALLS = {"FILE", "FILECLUSTER", "SQLITE", "FILESYSTEM", "ICEBERGLOCAL", "DELTALAKELOCAL", "HUDILOCAL"}
PROGRAM_CALLS = {"EXECUTABLE", "EXECUTABLEPOOL", "PYTHON"}
NETWORK_CALLS = {
    "URL", "URLCLUSTER", "REMOTE", "REMOTESECURE", "CLUSTER", "CLUSTERALLREPLICAS", "S3", "S3CLUSTER", "GCS",
    "OSS", "COSN", "AZUREBLOBSTORAGE", "AZUREBLOBSTORAGECLUSTER", "HDFS", "HDFSCLUSTER", "MYSQL", "POSTGRESQL",
    "MATERIALIZEDPOSTGRESQL", "MATERIALIZEDMYSQL", "MONGODB", "REDIS", "ODBC", "JDBC", "ICEBERG", "ICEBERGS3",
    "ICEBERGAZURE", "ICEBERGHDFS", "ICEBERGCLUSTER", "ICEBERGS3CLUSTER", "DELTALAKE", "DELTALAKES3",
    "DELTALAKEAZURE", "DELTALAKECLUSTER", "HUDI", "HUDICLUSTER", "ARROWFLIGHT", "YTSAURUS",
    "KAFKA", "RABBITMQ", "NATS", "S3QUEUE", "AZUREQUEUE", "HTTP", "CLICKHOUSE", "DATALAKECATALOG", "PAIMON",
}  # fmt: skip
# ClickHouse's codes for these refusals (src/Common/ErrorCodes.cpp); the HTTP status is the one
# src/Server/HTTP/exceptionCodeToHTTPStatus.cpp gives them (500, but 404 for UNKNOWN_TYPE_OF_QUERY).
CODES = {"DATABASE_ACCESS_DENIED": 291, "INTO_OUTFILE_NOT_ALLOWED": 358, "UNKNOWN_TYPE_OF_QUERY": 59,
         "UNACCEPTABLE_URL": 491, "SETTING_CONSTRAINT_VIOLATION": 452}  # fmt: skip
# VALUES data as literals only: no expression (a file() call among them) is evaluated.
LOCKED_SETTINGS = {"input_format_values_interpret_expressions": "0",
                   "input_format_values_deduce_templates_of_expressions": "0"}  # fmt: skip
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class Confinement:
    """The rules of one endpoint: ``user_files`` (None: no file access at all) and whether network table
    functions and engines may reach loopback addresses (never any other host)."""

    user_files: Path | None = None
    loopback_network: bool = False

    def check_statement(
        self, text: bytes, split: InsertSplit | None, settings: dict[str, str], inline: bool = True
    ) -> None:
        """Check a request's statement and settings. The data of an INSERT is not SQL, except VALUES data,
        whose expressions the engine evaluates: checked like SQL when it is ``inline`` in ``text``, else
        ``settings`` (the request's engine settings) gets the two that make it take literals only."""
        for name in LOCKED_SETTINGS.keys() & settings.keys():
            raise _locked(name)
        if "format_schema" in settings:
            self._files([settings["format_schema"].split(":")[0]])
        if split is None:
            self.check(text)
            return
        self.check(split.statement.encode())
        if split.fmt.upper() != "VALUES":
            return
        if inline and text:
            self.check(text[split.data_offset :])
        else:
            settings.update(LOCKED_SETTINGS)

    def check(self, sql: bytes) -> None:
        """CHError (ClickHouse's code and message) for the first thing ``sql`` may not reach."""
        toks = list(tokens(sql))
        for i, tok in enumerate(toks):
            nxt = toks[i + 1].word if i + 1 < len(toks) else ""
            engine = i >= 2 and toks[i - 1].word == "=" and toks[i - 2].word == "ENGINE"
            if tok.word.lower() in LOCKED_SETTINGS:
                raise _locked(tok.word.lower())
            if nxt != "(" and not engine:
                self._clause(sql, toks, i)
                continue
            args = _literals(sql, toks, i + 1) if nxt == "(" else []
            if tok.word in FILE_CALLS:
                self._files(args)
            elif tok.word in PROGRAM_CALLS:
                raise _refused(
                    "DATABASE_ACCESS_DENIED",
                    f"{_name(sql, tok)}: running programs is not allowed: the endpoint has no user scripts folder",
                    status=500,
                )
            elif tok.word in NETWORK_CALLS and not _local_source(toks, i):
                self._network(_name(sql, tok), args)

    def _clause(self, sql: bytes, toks: list[Token], i: int) -> None:
        word, prev = toks[i].word, toks[i - 1].word if i else ""
        if word == "OUTFILE" and prev == "INTO":
            raise _refused("INTO_OUTFILE_NOT_ALLOWED", "INTO OUTFILE is not allowed", status=500)
        if word == "INFILE" and prev == "FROM":
            raise _refused(
                "UNKNOWN_TYPE_OF_QUERY", "Query has infile and was send directly to server", status=404
            )
        if word == "FROM" and toks[0].word == "ATTACH" and i + 1 < len(toks) and toks[i + 1].word == "'":
            self._files([_unquote(sql, toks[i + 1])])
        if (
            word == "FORMAT_SCHEMA"
        ):  # Protobuf/CapnProto schema file: a server reads it from format_schema_path
            value = next((t for t in toks[i + 1 : i + 3] if t.word == "'"), None)
            self._files([_unquote(sql, value).split(":")[0]] if value is not None else ["(not a literal)"])

    def _files(self, paths: list[str]) -> None:
        root = self.user_files
        for path in paths:
            if root is None or not _inside(path, root):
                shown = root if root is not None else "user_files (none: file access is off)"
                raise _refused("DATABASE_ACCESS_DENIED", f"File `{path}` is not inside `{shown}`", status=500)

    def _network(self, name: str, args: list[str]) -> None:
        addresses = [a for a in args if _addressish(a)]
        if self.loopback_network and addresses and addresses[0] == args[0] and all(map(_loopback, addresses)):
            return
        shown = args[0] if args else name
        hint = "only loopback addresses" if self.loopback_network else "no network: the setting "
        hint += "" if self.loopback_network else "local.clickhouse_loopback_network opens loopback addresses"
        raise _refused(
            "UNACCEPTABLE_URL",
            f'URL "{shown}" is not allowed in configuration file, see <remote_url_allow_hosts> '
            f"(the local endpoint allows {hint})",
            status=500,
        )


def _local_source(toks: list[Token], at: int) -> bool:
    """A dictionary's ``SOURCE(CLICKHOUSE(...))`` without HOST reads a table of this server, not the network."""
    if toks[at].word != "CLICKHOUSE" or at + 1 >= len(toks) or toks[at + 1].word != "(":
        return False
    depth = 0
    for tok in toks[at + 1 :]:
        depth += (tok.word == "(") - (tok.word == ")")
        if depth <= 0:
            return True
        if depth == 1 and tok.word == "HOST":
            return False
    return True


def _locked(setting: str) -> CHError:
    return _refused("SETTING_CONSTRAINT_VIOLATION", f"Setting {setting} should not be changed", status=500)


def _refused(name: str, message: str, status: int) -> CHError:
    return CHError(name, message, CODES[name], status)


def _name(sql: bytes, tok: Token) -> str:
    return sql[tok.start : tok.end].decode("utf-8", "replace")


def _literals(sql: bytes, toks: list[Token], open_at: int) -> list[str]:
    """The string literals among the call's arguments (nested calls included), in order."""
    found, depth = [], 0
    for tok in toks[open_at:]:
        depth += (tok.word == "(") - (tok.word == ")")
        if depth <= 0:
            break
        if tok.word == "'" and sql[tok.start : tok.start + 1] == b"'":
            found.append(_unquote(sql, tok))
    return found


def _unquote(sql: bytes, tok: Token) -> str:
    text = sql[tok.start + 1 : tok.end - 1].decode("utf-8", "replace")
    return text.replace("''", "'").replace("\\'", "'").replace("\\\\", "\\")


def _inside(path: str, root: Path) -> bool:
    """True when ``path`` (relative ones from ``root``, symlinks followed) stays inside ``root``. A ``..``
    anywhere is refused: glob alternatives (``{..,x}``) and ranges (``{1..9}``) expand after this check."""
    if ".." in path:
        return False
    base = os.path.realpath(root)
    full = os.path.realpath(os.path.join(base, path))
    return full == base or full.startswith(base + os.sep)


def _addressish(arg: str) -> bool:
    """An argument that names a host (a URL, or ``host:port``), as opposed to a database or format name."""
    return "://" in arg or ":" in arg or arg.lower() in LOOPBACK_NAMES or _is_ip(arg)


def _loopback(address: str) -> bool:
    """True when every host in ``address`` (a URL, ``host[:port]``, or ``a:1,b:2``) is a loopback one."""
    return all(_loopback_host(host) for host in _hosts(address))


def _hosts(address: str) -> Iterator[str]:
    if "://" in address:
        yield urlsplit(address).hostname or ""
        return
    for part in address.replace("|", ",").split(","):
        part = part.strip()
        if part.startswith("["):
            yield part[1 : part.find("]")]
        else:
            yield part.rsplit(":", 1)[0] if part.count(":") == 1 else part


def _loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
