"""Copies committed pages from the WAL into the database file, off the commit path."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import aiosqlite

_log = logging.getLogger(__name__)


class Checkpointer:
    """SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, so every
    acknowledgement waiting on that commit waits for the copy too (tens of ms under load: the
    Slack benchmark's p99). With it off on the writer, this runs a PASSIVE checkpoint on a
    connection and thread of its own, at most every ``interval`` seconds while there are writes;
    in WAL mode that runs alongside the writer and the readers and never blocks them.
    """

    def __init__(self, db: aiosqlite.Connection, interval: float = 1.0) -> None:
        self._db = db
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Something was written: checkpoint unless one ran (or is running) lately."""
        now = self._loop.time()
        if now - self._last < self._interval or (self._task is not None and not self._task.done()):
            return
        self._last = now
        self._task = asyncio.create_task(self._checkpoint(), name="popup-sqlite-checkpoint")

    async def _checkpoint(self) -> None:
        try:
            await self._db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)", ())
        except sqlite3.Error as exc:  # the next one will catch up; the data is safe in the WAL
            _log.warning("WAL checkpoint failed: %r", exc)

    async def close(self) -> None:
        if self._task is not None:
            await self._task
        # The last connection to close (the writer) checkpoints what is left and removes the WAL.
        await self._db.close()
