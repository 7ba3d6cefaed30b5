"""The SQLite store's own parts: its private file, schema check, backup, read-only reader and WAL.

What every store promises is the store contract suite's (tests/store_contract/), run against this
store and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from sessions.errors import StorageError
from storage.sqlite import SqliteStore
from tests.store_contract.test_store_contract import new_session, reply, texts


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
