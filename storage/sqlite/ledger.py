"""The outbound ledger on SQLite: claim a post, count its attempts, record what the platform
answered, and find the prompt a thread belongs to (the protocol is in docs/architecture.md §4).

A mixin of :class:`storage.sqlite.SqliteStore`: it writes through the store's one writer (the
ledger's writes are urgent: they go ahead of queued inbound batches) and reads on its read-only
connection.
"""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from sessions.model import ChannelRef, Posted
from sessions.records import PostRecord, ThreadTarget
from storage.sqlite.connections import fetch_all, fetch_one
from storage.sqlite.rows import (
    POST_COLUMNS,
    THREAD_POST_UNDER_WAY_QUERY,
    THREAD_TARGET_QUERY,
    as_post,
    as_thread_target,
    ts,
)
from storage.sqlite.writer import Writer


class LedgerMethods:
    """The outbound ledger of :class:`sessions.store.Store`, for SqliteStore."""

    _writer: Writer
    _read: aiosqlite.Connection

    async def claim_post(
        self, session_id: int, key: str, channel: ChannelRef, *, prompt_id: int | None = None
    ) -> PostRecord:
        # One statement: creates the intent, or (the no-op update) hands back the one there is.
        rows = await self._writer.statement(
            "INSERT INTO posts (session_id, prompt_id, key, platform, channel_id) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (session_id, key, platform, channel_id) DO UPDATE SET attempts = posts.attempts "
            f"RETURNING {POST_COLUMNS}",
            (session_id, prompt_id, key, channel.platform, channel.channel_id),
        )
        assert len(rows) == 1
        return as_post(rows[0])

    async def note_attempt(self, post_id: int) -> None:
        await self._writer.write(("UPDATE posts SET attempts = attempts + 1 WHERE id = ?", (post_id,)), urgent=True)

    async def record_posted(self, post_id: int, posted: Posted, *, at: datetime) -> None:
        thread = posted.thread
        await self._writer.write(
            (
                "UPDATE posts SET message_id = ?, thread_id = ?, thread_channel_id = ?, posted_at = ? WHERE id = ?",
                (
                    posted.message.message_id,
                    thread.thread_id if thread else None,
                    thread.channel.channel_id if thread else None,
                    ts(at),
                    post_id,
                ),
            ),
            urgent=True,
        )

    async def posts(self, session_id: int) -> list[PostRecord]:
        rows = await fetch_all(
            self._read,
            f"SELECT {POST_COLUMNS} FROM posts WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [as_post(row) for row in rows]

    async def thread_target(self, platform: str, thread_id: str) -> ThreadTarget | None:
        row = await fetch_one(self._read, THREAD_TARGET_QUERY, (platform, thread_id))
        return None if row is None else as_thread_target(row)

    async def thread_post_under_way(self, platform: str) -> bool:
        row = await fetch_one(self._read, THREAD_POST_UNDER_WAY_QUERY, (platform,))
        return row is not None
