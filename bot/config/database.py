"""``[storage]``: the SQLite file, or a PostgreSQL URL (whose password stays out of the file)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from bot.config.reader import Reader
from storage.settings import StorageSettings


def read_storage(storage: Reader) -> StorageSettings:
    path = Path(storage.get("path", str, "popup.db"))
    if not path.is_absolute():
        path = storage.source.resolve().parent / path  # relative to the config file
    url = storage.get("url", str, "").strip()
    if url:
        lease = storage.get("lease_seconds", (int, float), 15)
        if not 1 <= lease <= 3600:
            raise storage.fail("lease_seconds", f"{lease!r} must be from 1 to 3600 (seconds)")
        # path is not used then
        return StorageSettings(path=path, url=_postgres_url(storage, url), lease_seconds=float(lease))
    if not path.parent.is_dir():
        raise storage.fail("path", f"{str(path)!r}: folder {str(path.parent)!r} does not exist")
    return StorageSettings(path=path)


def _postgres_url(storage: Reader, url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as exc:
        raise storage.fail("url", f"{url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        shown = url if password is None else "postgresql://…"
        raise storage.fail("url", f'{shown!r} must start with "postgresql://" (e.g. postgresql://popup@db:5432/popup)')
    if password is not None:
        # Never echo it: the message goes to terminals and logs.
        host = parts.hostname or ""
        raise storage.fail(
            "url",
            f"holds a password (postgresql://{parts.username}:…@{host}…); keep it out of the file and set "
            "PGPASSWORD in the environment instead",
        )
    return url
