"""The PostgreSQL store's own parts: its schema versions, migrating from several processes at once,
what a migration does to data already there, and a clear error where the server is not there.
What every store promises is the contract suite's (tests/store_contract/)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from sessions.errors import StorageError
from sessions.model import ChannelRef, MessageRef
from storage.postgres import PostgresStore
from storage.postgres.migrate import migrations
from tests.store_contract.conftest import Backend
from tests.store_contract.tallies import PLATFORM, T0, assert_tallies_right, votes


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


async def test_migration_4_recounts_votes_already_gamed(postgres_url: str) -> None:
    # A database as a Popup of schema 3 left it: every (member, emoji) row counted as a vote.
    conn = await asyncpg.connect(postgres_url)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TABLE schema_version (version integer PRIMARY KEY)")
            for number, script in migrations():
                if number <= 3:
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
        start = T0.timestamp()
        await conn.execute(
            "INSERT INTO sessions (id, plan_name, title, intro, timezone, state, anonymous, started_by, started_at, "
            "recap_at) VALUES (1, 'p', 't', 'i', 'UTC', 'running', 0, 'U0', $1, $2)",
            start,
            start + 8 * 3600,
        )
        await conn.execute("INSERT INTO session_channels VALUES (1, 0, $1, 'old')", PLATFORM)
        await conn.execute(
            "INSERT INTO prompts (id, session_id, position, text, due_at, state) VALUES (1, 1, 1, 'q', $1, 'posted')",
            start,
        )
        for n, author in enumerate(("U1", "U2", "U3")):
            await conn.execute(
                "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
                "author_name, text, created_at) VALUES (1, 1, $1, 'old', $2, $3, 'name', 'text', $4)",
                PLATFORM,
                f"r{n}",
                author,
                start + n,
            )
        # r0: its author's five emoji and one of another member's; r1: two members, two emoji each;
        # r2: deleted, with its author's emoji (it stays out of the tallies either way).
        reactions = [("r0", "U1", e) for e in "abcde"] + [("r0", "U2", "a")]
        reactions += [("r1", u, e) for u in ("U3", "U4") for e in "ab"] + [("r2", "U3", "a")]
        await conn.executemany(
            "INSERT INTO reactions VALUES ($1, 'old', $2, $3, $4, 1, $5)",
            [(PLATFORM, message, user, emoji, start) for message, user, emoji in reactions],
        )
        await conn.execute("INSERT INTO deletions VALUES ($1, 'old', 'r2', $2)", PLATFORM, start)
        counted = await conn.fetch("SELECT reactions FROM replies ORDER BY id")
        assert [r["reactions"] for r in counted] == [6, 4, 1]  # as 0001 counted
    finally:
        await conn.close()
    store = await PostgresStore.open(postgres_url)
    try:
        assert await votes(store, 1) == {"r0": 1, "r1": 2}
        recounted = await store._pool.fetch("SELECT reactions FROM replies ORDER BY id")
        assert [r["reactions"] for r in recounted] == [1, 2, 0]
        await assert_tallies_right(Backend("postgres", postgres_url), store, 1)
        assert (await store.session_stats(1)).reactions == 3
        # And they keep counting the new way from there.
        ref = MessageRef(channel=ChannelRef(platform=PLATFORM, channel_id="old"), message_id="r1")
        later = T0 + timedelta(minutes=1)
        await store.set_reaction(ref, "U3", "a", added=False, at=later)  # U3's "b" still stands
        await store.set_reaction(ref, "U2", "z", added=True, at=later)  # its author
        await store.set_reaction(ref, "U1", "z", added=True, at=later)
        await store.set_reaction(ref, "U1", "y", added=True, at=later)
        assert await votes(store, 1) == {"r0": 1, "r1": 3}
        await assert_tallies_right(Backend("postgres", postgres_url), store, 1)
    finally:
        await store.close()
