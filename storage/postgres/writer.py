"""The inbound writer: replies, edits, deletions and reactions, committed in groups.

Every caller awaits its own write's COMMIT (so "acknowledged" always means "durable"), but the
writes that arrive while a batch commits share the next transaction and one ``executemany`` per
statement (asyncpg pipelines its rows: one round trip, not one per row). Inbound events commute by
schema design (migrations/0001_init.sql), so grouping them by statement does not change the outcome.

Each batch first takes a transaction-scoped advisory lock, the same in every process on the
database: inbound transactions then meet the schema's triggers one at a time cluster-wide, as they
do behind SQLite's single writer. Without it, a reply and its deletion committed at once by two
processes could each miss the other (neither sees the other's uncommitted row). Control-plane
writes (compare-and-set, claims, the ledger) do not queue here: they are single statements or short
transactions on their own connections (:mod:`storage.postgres.store`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from sessions.errors import StorageError
from storage.batching import Statement, Write, fail, group_by_statement, settle
from storage.postgres.inbound import AS_ONE_STATEMENT
from storage.postgres.migrate import INBOUND_LOCK

_log = logging.getLogger(__name__)


# Bounds one transaction's time holding the inbound lock (and so every other process's wait for it).
_MAX_BATCH = 512


class Writer:
    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Write] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="popup-postgres-writer")

    async def write(self, *statements: Statement) -> None:
        """Commit ``statements`` together (with whatever else is queued); returns once durable.
        With none, returns once everything queued before it is committed."""
        done: asyncio.Future[None] = self._loop.create_future()
        self._queue.append(Write(statements, done))
        self._wake.set()
        await done

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        while True:
            if self._queue:
                count = min(len(self._queue), _MAX_BATCH)
                batch = [self._queue.popleft() for _ in range(count)]
                await self._commit(batch)
            elif self._stopping:
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    async def _commit(self, writes: list[Write]) -> None:
        try:
            await self._apply(writes)
        except asyncio.CancelledError:
            for write in writes:
                fail(write.done, StorageError("write cancelled"))
            raise
        except Exception as exc:
            # One bad row must not fail its neighbours: retry each write on its own.
            if len(writes) == 1:
                _log.error("write failed: %r", exc)
                fail(writes[0].done, StorageError(f"write failed: {exc}"))
                return
            for write in writes:
                await self._commit([write])
            return
        settle(writes)

    async def _apply(self, writes: list[Write]) -> None:
        grouped = group_by_statement(writes)
        if not grouped:
            return  # a flush: everything before it is committed already
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", INBOUND_LOCK)
            for sql, rows in grouped.items():
                one_statement = AS_ONE_STATEMENT.get(sql)
                if one_statement is None:
                    await conn.executemany(sql, rows)
                else:
                    await conn.execute(one_statement, *(list(column) for column in zip(*rows, strict=True)))
