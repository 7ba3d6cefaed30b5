"""The SQLite store's own parts: its private file and pragmas, schema refusals, backup, the read-only
connection, checkpoints, and its writer's batching of control statements. What every store promises
is the contract suite's, on SQLite and PostgreSQL alike (tests/store_contract/)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from sessions.errors import StorageError
from sessions.model import ChannelRef
from sessions.records import PromptState
from storage.sqlite import SqliteStore
from tests.store_contract.records import T0, new_session, reply, texts


async def test_file_is_private_and_pragmas_are_set(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    store = await SqliteStore.open(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        await SqliteStore.open(tmp_path / "nope" / "popup.db")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 999")
    with pytest.raises(StorageError, match="newer than this Popup"):
        await SqliteStore.open(path)


@pytest.fixture
async def running(store: SqliteStore) -> tuple[int, int, int]:
    session = await store.create_session(new_session())
    assert session is not None
    prompts = await store.prompts(session.id)
    return session.id, prompts[0].id, prompts[1].id


async def test_backup_is_a_consistent_private_copy(
    store: SqliteStore, running: tuple[int, int, int], tmp_path: Path
) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1", "kept"))
    target = tmp_path / "copy.db"
    await store.backup(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    copy = await SqliteStore.open(target)
    try:
        assert await texts(copy, sid) == ["kept"]
    finally:
        await copy.close()


async def test_the_read_connection_refuses_to_write(store: SqliteStore, running: tuple[int, int, int]) -> None:
    sid, _, _ = running
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._all("DELETE FROM replies WHERE session_id = ?", (sid,))


async def test_checkpoints_reach_the_database_file_without_the_commit_doing_them(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = await SqliteStore.open(path)
    try:
        assert [tuple(row) for row in await store._db.execute_fetchall("PRAGMA wal_autocheckpoint", ())] == [(0,)]
        session = await store.create_session(new_session())
        assert session is not None
        prompt = (await store.prompts(session.id))[0]
        checkpointer = store._checkpointer
        assert checkpointer is not None
        checkpointer._interval = 0.0
        await asyncio.gather(*(store.add_reply(reply(session.id, prompt.id, f"m{i}")) for i in range(500)))
        await store.add_reply(reply(session.id, prompt.id, "last"))
        if checkpointer._task is not None:
            await checkpointer._task  # begun by an earlier batch: it may not cover the last ones
        checkpointer.poke()  # (or the writer already began one after its last commit)
        assert checkpointer._task is not None
        await checkpointer._task
        # The database file alone, without its WAL, already holds the replies.
        alone = tmp_path / "alone.db"
        alone.write_bytes(path.read_bytes())
        with contextlib.closing(sqlite3.connect(alone)) as copy:
            assert copy.execute("SELECT count(*) FROM replies").fetchone()[0] >= 500
    finally:
        await store.close()
    # The last connection to close checkpoints the rest and removes the WAL.
    assert not (tmp_path / "wal.db-wal").exists()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM replies").fetchone()[0] == 501


async def test_statements_queued_together_share_a_commit_but_not_each_others_errors(store: SqliteStore) -> None:
    channels = [ChannelRef(platform="slack", channel_id=f"C{k}") for k in range(40)]
    sessions = [await store.create_session(new_session(channel)) for channel in channels]
    prompts = [(await store.prompts(s.id))[0] for s in sessions if s is not None]
    assert len(prompts) == 40
    # A wave of prompts falling due at once: each moves its state, twice over, and one statement
    # among them breaks (the schema refuses a state it does not know).
    moves = [store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTING) for p in prompts]
    again = [store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTING) for p in prompts[:10]]
    broken = store._writer.statement("UPDATE prompts SET state = 'lost' WHERE id = ? RETURNING id", (prompts[0].id,))
    results = await asyncio.gather(*moves, *again, broken, return_exceptions=True)
    assert results[:40] == [True] * 40
    assert results[40:50] == [False] * 10  # compare-and-set: the first of each won
    assert isinstance(results[50], StorageError | sqlite3.IntegrityError)
    assert {p.state for s in sessions if s is not None for p in await store.prompts(s.id) if p.position == 1} == {
        PromptState.POSTING
    }
    # And without a broken one among them, all in one transaction.
    posted = [store.set_prompt_state(p.id, [PromptState.POSTING], PromptState.POSTED, at=T0) for p in prompts]
    assert await asyncio.gather(*posted) == [True] * 40
    assert {p.posted_at for s in sessions if s is not None for p in await store.prompts(s.id) if p.position == 1} == {
        T0
    }
