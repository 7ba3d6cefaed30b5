"""The PostgreSQL store's own parts: its schema versions, migrating from several processes at once,
and a clear error where the server is not there. What every store promises is the contract suite's
(tests/store_contract/)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from sessions.errors import StorageError
from storage.postgres import PostgresStore
from storage.postgres.migrate import migrations


async def test_stores_opened_at_once_migrate_the_database_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(postgres_url) for _ in range(4)))
    try:
        rows = await stores[0]._pool.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == [number for number, _ in migrations()]
    finally:
        for store in stores:
            await store.close()
    versions = await PostgresStore.migrate(postgres_url)  # nothing left to do
    assert versions.current == versions.latest == migrations()[-1][0]


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    await PostgresStore.migrate(postgres_url)
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO schema_version (version) VALUES (999)")
    finally:
        await conn.close()
    with pytest.raises(StorageError, match="schema version 999 is newer than this Popup knows"):
        await PostgresStore.open(postgres_url)
    with pytest.raises(StorageError, match="newer than this Popup"):
        await PostgresStore.migrate(postgres_url)


async def test_without_migrating_an_old_schema_is_refused_with_the_command_that_fixes_it(postgres_url: str) -> None:
    with pytest.raises(StorageError, match="run popup migrate"):
        await PostgresStore.open(postgres_url, migrate_schema=False)
    await PostgresStore.migrate(postgres_url)
    store = await PostgresStore.open(postgres_url, migrate_schema=False)
    await store.close()


async def test_no_server_is_a_clear_error_naming_the_url() -> None:
    with pytest.raises(StorageError, match=r"storage.url 'postgresql://popup@127.0.0.1:9/x': cannot connect"):
        await PostgresStore.open("postgresql://popup@127.0.0.1:9/x")
