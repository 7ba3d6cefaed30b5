"""Brings a database to the newest schema: the numbered SQL files in :mod:`storage.migrations`."""

from __future__ import annotations

import logging
from importlib import resources

import aiosqlite

from sessions.errors import StorageError

_log = logging.getLogger(__name__)


def migrations() -> list[tuple[int, str]]:
    """``(number, script)`` for every ``NNNN_*.sql`` file, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(db: aiosqlite.Connection, path: str) -> None:
    """Run every migration newer than the file's ``user_version``, each all-or-nothing."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    known = migrations()
    latest = known[-1][0] if known else 0
    if current > latest:
        raise StorageError(
            f"storage.path {path!r}: database schema version {current} is newer than this Popup "
            f"knows ({latest}); upgrade Popup"
        )
    for number, script in known:
        if number <= current:
            continue
        # executescript commits first; the BEGIN/COMMIT make each migration all-or-nothing.
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {int(number)};\nCOMMIT;")
        _log.info("database migrated to schema %d", number)
