"""One door to the store the configuration names: SQLite by default, PostgreSQL with ``url``.

Every command that touches the database (``popup run``, ``sessions``, ``export``, ``migrate``,
``copy``) opens it here. asyncpg is imported only when a URL is configured, so a SQLite Popup's
start-up never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessions.errors import StorageError
from storage.settings import StorageSettings

if TYPE_CHECKING:
    from storage.postgres import PostgresStore
    from storage.sqlite import SqliteStore

    OpenedStore = SqliteStore | PostgresStore


async def open_store(settings: StorageSettings) -> OpenedStore:
    """Open (and migrate to the newest schema) the configured store; a StorageError says why not,
    also when the database's schema is newer than this Popup knows."""
    if settings.url:
        from storage.postgres import PostgresStore

        return await PostgresStore.open(settings.url)
    from storage.sqlite import SqliteStore

    return await SqliteStore.open(settings.path)


async def migrate_store(settings: StorageSettings) -> tuple[int, int]:
    """Apply the migrations the configured database lacks; ``(version before, version now)``."""
    if settings.url:
        from storage.postgres.migrate import schema_versions
        from storage.postgres.store import PostgresStore, connect_pool

        pool = await connect_pool(settings.url, max_size=1)
        try:
            async with pool.acquire() as conn:
                before = (await schema_versions(conn)).current
        finally:
            await pool.close()
        return before, (await PostgresStore.migrate(settings.url)).current
    from storage.sqlite import SqliteStore
    from storage.sqlite.migrate import migrations

    before = _sqlite_version(settings)
    store = await SqliteStore.open(settings.path)
    await store.close()
    known = migrations()
    return before, known[-1][0] if known else 0


def _sqlite_version(settings: StorageSettings) -> int:
    import contextlib
    import sqlite3

    if not settings.path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(settings.path)) as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"storage.path {str(settings.path)!r}: not a usable SQLite database: {exc}") from exc
