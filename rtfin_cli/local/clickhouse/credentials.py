"""The local endpoint's generated password: made on first start, stored 0600 under <data_dir>/clickhouse/."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from rtfin_cli.local.supervisor import private_dir
from rtfin_cli.locate import read_secret
from rtfin_cli.settings import LocalSettings


def password_path(data_dir: str | Path) -> Path:
    """The password file of the endpoint whose local data directory is ``data_dir``."""
    return LocalSettings(data_dir=str(data_dir)).clickhouse_password_file()


def read_password(data_dir: str | Path) -> str | None:
    """The stored password, or None when the endpoint never started there (cheap: one small file read)."""
    return read_secret(password_path(data_dir))


def ensure_password(data_dir: str | Path) -> str:
    """The stored password, generating a random one (owner read/write only) if there is none."""
    if (existing := read_password(data_dir)) is not None:
        return existing
    path = password_path(data_dir)
    private_dir(path.parent)
    password = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race, or an empty file was left behind
        if (existing := read_password(data_dir)) is not None:
            return existing
        path.unlink(missing_ok=True)
        return ensure_password(data_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password
