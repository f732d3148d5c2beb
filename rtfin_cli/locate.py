"""Where rtfin finds what the local stack left on disk: generated passwords and fetched jars.

Production code reads the local ClickHouse and Superset passwords and the Spark/Kafka jars through
this module, so it never imports the local servers themselves. Reads are cheap (one small file or
one directory listing) and never create anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rtfin_cli.errors import ProcessError

if TYPE_CHECKING:
    from rtfin_cli.settings import RtfinSettings

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


def local_clickhouse_password(settings: RtfinSettings) -> str | None:
    """The local endpoint's generated password, when no password is configured and the host is this machine.

    This is the one rule: settings loading and the client both use it, so ``rtfin config show``
    reports the password the client sends, and a remote host never receives the local secret.
    """
    ch = settings.clickhouse
    if ch.password is not None and ch.password.get_secret_value():
        return None
    if ch.host not in LOOPBACK_HOSTS:
        return None
    return read_secret(settings.local.clickhouse_password_file())


def local_admin_password(settings: RtfinSettings) -> str | None:
    """The generated admin password of the local Superset, if it was initialised."""
    return read_secret(settings.local.superset_password_file())


def generated_secrets(settings: RtfinSettings) -> dict[str, tuple[str, Path]]:
    """Secrets the local stack generated that this profile uses, by setting key: (value, the file it is
    read from). Only where the setting is empty and its service is on this machine."""
    from urllib.parse import urlsplit

    out: dict[str, tuple[str, Path]] = {}
    clickhouse = local_clickhouse_password(settings)
    if clickhouse:
        out["clickhouse.password"] = (clickhouse, settings.local.clickhouse_password_file())
    d = settings.dashboard
    if not (d.password and d.password.get_secret_value()) and urlsplit(d.url).hostname in LOOPBACK_HOSTS:
        admin = local_admin_password(settings)
        if admin:
            out["dashboard.password"] = (admin, settings.local.superset_password_file())
    return out


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
