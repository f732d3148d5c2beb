"""The local endpoint's generated password: made on first start, stored 0600 under <data_dir>/clickhouse/."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PASSWORD_FILE = "password"


def password_path(data_dir: str | Path) -> Path:
    return Path(data_dir).expanduser().resolve() / "clickhouse" / PASSWORD_FILE


def read_password(data_dir: str | Path) -> str | None:
    """The stored password, or None when the endpoint never started there (cheap: one small file read)."""
    try:
        return password_path(data_dir).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ensure_password(data_dir: str | Path) -> str:
    """The stored password, generating a random one (owner read/write only) if there is none."""
    if (existing := read_password(data_dir)) is not None:
        return existing
    path = password_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
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
