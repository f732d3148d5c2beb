"""Where rtfin finds what the local stack left on disk: generated passwords and fetched jars.

Production code reads the local ClickHouse and Superset passwords and the Spark/Kafka jars through
this module, so it never imports the local servers themselves. Reads are cheap (one small file or
one directory listing) and never create anything.
"""

from __future__ import annotations

from pathlib import Path

from rtfin_cli.errors import ProcessError

KAFKA_VERSION = "4.1.1"
SPARK_VERSION = "4.0.0"
KAFKA_BUNDLE = f"kafka-{KAFKA_VERSION}"
SPARK_KAFKA_BUNDLE = f"spark-kafka-{SPARK_VERSION}"

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def read_secret(path: Path) -> str | None:
    """The stripped content of a small secret file, or None when it is missing or empty."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def local_clickhouse_password(configured: str, host: str, secret_file: Path) -> str | None:
    """The local endpoint's generated password, when no password is ``configured`` and ``host`` is this
    machine. This is the one rule: settings loading and the client both use it, so ``rtfin config show``
    reports the password the client sends, and a remote host never receives the local secret."""
    if configured or host not in LOOPBACK_HOSTS:
        return None
    return read_secret(secret_file)


def bundle_dir(cache_dir: str | Path, name: str) -> Path:
    """Where ``make setup`` puts the jars of one Maven bundle."""
    return Path(cache_dir).resolve() / "jars" / name


def classpath(cache_dir: str | Path, name: str) -> str:
    """The ``dir/*`` classpath of a fetched bundle, or ProcessError telling how to fetch it."""
    d = bundle_dir(cache_dir, name)
    if not (d / ".complete").exists():
        raise ProcessError(
            f"Java artifacts '{name}' are not in {d.parent}", "Run `make setup` to fetch them."
        )
    return str(d / "*")


def jar_files(cache_dir: str | Path, name: str) -> list[Path]:
    """The jars of a fetched bundle (ProcessError when it was never fetched)."""
    classpath(cache_dir, name)
    return sorted(bundle_dir(cache_dir, name).glob("*.jar"))
