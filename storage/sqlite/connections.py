"""The connections to one database file: opened private, configured, migrated; and reads in one trip.

Three connections, each with a thread of its own: the writer's (every write, see
:mod:`storage.sqlite.writer`), a read-only one, so a slow read (a status count, a recap over a big
session) never holds up the commit an acknowledgement waits for, and the checkpointer's
(:mod:`storage.sqlite.checkpoint`). In WAL mode a read sees every commit made before it starts,
so awaiting a write and then reading still reads it. Only ``":memory:"`` cannot be shared: there
the writer's connection does everything.

Rows come as :class:`sqlite3.Row`, so they are read by column name (:mod:`storage.sqlite.rows`).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from sessions.errors import StorageError
from storage.batching import Params
from storage.sqlite.migrate import migrate


@dataclass(frozen=True, slots=True, kw_only=True)
class Connections:
    writer: aiosqlite.Connection
    reader: aiosqlite.Connection  # the writer's own for ":memory:"
    checkpointer: aiosqlite.Connection | None  # None for ":memory:"


async def open_connections(target: str) -> Connections:
    """Open (creating it private if need be) and migrate the database at ``target``."""
    if target != ":memory:":
        create_private_file(target)
    try:
        db = await aiosqlite.connect(target, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"storage.path {target!r}: cannot open: {exc}") from exc
    try:
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA busy_timeout = 5000")
        await migrate(db, target)
    except sqlite3.DatabaseError as exc:
        await db.close()
        raise StorageError(f"storage.path {target!r}: not a usable SQLite database: {exc}") from exc
    except BaseException:
        await db.close()
        raise
    if target == ":memory:":
        return Connections(writer=db, reader=db, checkpointer=None)
    helpers: list[aiosqlite.Connection] = []
    try:
        helpers.append(await _open_helper(target, query_only=True))
        helpers.append(await _open_helper(target, query_only=False))
        await db.execute("PRAGMA wal_autocheckpoint = 0")  # see storage.sqlite.checkpoint
    except BaseException:
        for helper in helpers:
            await helper.close()
        await db.close()
        raise
    return Connections(writer=db, reader=helpers[0], checkpointer=helpers[1])


async def _open_helper(target: str, *, query_only: bool) -> aiosqlite.Connection:
    """A second connection to the writer's file: the reader, or the checkpointer."""
    helper = await aiosqlite.connect(target, isolation_level=None)
    try:
        helper.row_factory = sqlite3.Row
        if query_only:
            await helper.execute("PRAGMA query_only = ON")  # a read path that writes is a bug: fail loudly
        await helper.execute("PRAGMA busy_timeout = 5000")
    except BaseException:
        await helper.close()
        raise
    return helper


def create_private_file(target: str) -> None:
    """Replies are personal data: the file (and so its -wal/-shm) is readable by its owner only."""
    folder = Path(target).resolve().parent
    if not folder.is_dir():
        raise StorageError(f"storage.path {target!r}: folder {str(folder)!r} does not exist")
    os.close(os.open(target, os.O_CREAT | os.O_RDWR, 0o600))


# One trip to the database thread each (execute, fetch and close would be three).


async def fetch_all(db: aiosqlite.Connection, sql: str, params: Params) -> list[sqlite3.Row]:
    return list(await db.execute_fetchall(sql, params))


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Params) -> sqlite3.Row | None:
    rows = await db.execute_fetchall(sql, params)
    return next(iter(rows), None)
