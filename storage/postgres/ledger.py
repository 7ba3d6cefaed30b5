"""The outbound ledger on PostgreSQL: claim a post, count its attempts, record what the platform
answered, and find the prompt a thread belongs to (the protocol is in docs/architecture.md §4).

A mixin of :class:`storage.postgres.PostgresStore`: each write is one statement on the store's
pool, atomic on its own whichever process runs it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions.model import ChannelRef, Posted
from sessions.records import PostRecord, ThreadTarget
from storage.postgres.rows import (
    POST_COLUMNS,
    THREAD_POST_UNDER_WAY_QUERY,
    THREAD_TARGET_QUERY,
    as_post,
    as_thread_target,
    ts,
)


class LedgerMethods:
    """The outbound ledger of :class:`sessions.store.Store`, for PostgresStore."""

    _pool: Any

    async def claim_post(
        self, session_id: int, key: str, channel: ChannelRef, *, prompt_id: int | None = None
    ) -> PostRecord:
        # One statement: creates the intent, or (the no-op update) hands back the one there is.
        row = await self._pool.fetchrow(
            "INSERT INTO posts (session_id, prompt_id, key, platform, channel_id) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (session_id, key, platform, channel_id) DO UPDATE SET attempts = posts.attempts "
            f"RETURNING {POST_COLUMNS}",
            session_id,
            prompt_id,
            key,
            channel.platform,
            channel.channel_id,
        )
        return as_post(row)

    async def note_attempt(self, post_id: int) -> None:
        await self._pool.execute("UPDATE posts SET attempts = attempts + 1 WHERE id = $1", post_id)

    async def record_posted(self, post_id: int, posted: Posted, *, at: datetime) -> None:
        thread = posted.thread
        await self._pool.execute(
            "UPDATE posts SET message_id = $1, thread_id = $2, thread_channel_id = $3, posted_at = $4 WHERE id = $5",
            posted.message.message_id,
            thread.thread_id if thread else None,
            thread.channel.channel_id if thread else None,
            ts(at),
            post_id,
        )

    async def posts(self, session_id: int) -> list[PostRecord]:
        rows = await self._pool.fetch(f"SELECT {POST_COLUMNS} FROM posts WHERE session_id = $1 ORDER BY id", session_id)
        return [as_post(row) for row in rows]

    async def thread_target(self, platform: str, thread_id: str) -> ThreadTarget | None:
        row = await self._pool.fetchrow(THREAD_TARGET_QUERY, platform, thread_id)
        return None if row is None else as_thread_target(row)

    async def thread_post_under_way(self, platform: str) -> bool:
        row = await self._pool.fetchrow(THREAD_POST_UNDER_WAY_QUERY, platform)
        return row is not None
