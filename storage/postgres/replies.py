"""Replies on PostgreSQL: the inbound writes (their idempotent statements are in
:mod:`storage.postgres.inbound`, committed in groups by :class:`storage.postgres.writer.Writer`),
forgetting an author, the live counts of `/popup status`, and reading a session's standing replies
through a cursor.

A mixin of :class:`storage.postgres.PostgresStore`: it writes through the store's writer and reads
on its pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, Protocol

from sessions.model import MessageRef
from sessions.records import NewReply, PromptRecord, ReplyRecord, SessionStats
from storage.postgres import inbound
from storage.postgres.migrate import INBOUND_LOCK
from storage.postgres.recap_queries import STANDING
from storage.postgres.rows import REPLY_COLUMNS, as_reply
from storage.postgres.writer import Writer

_FETCH_BATCH = 2000


class _WithPrompts(Protocol):
    """What :meth:`ReplyMethods.iter_replies` needs of the store it is mixed into."""

    _pool: Any

    async def prompts(self, session_id: int) -> list[PromptRecord]: ...


class ReplyMethods:
    """Replies of :class:`sessions.store.Store`, for PostgresStore."""

    _writer: Writer
    _pool: Any

    async def add_reply(self, reply: NewReply) -> None:
        await self._writer.write(*inbound.reply_posted(reply))

    async def edit_reply(
        self,
        message: MessageRef,
        text: str,
        *,
        at: datetime,
        keep_if_unknown: bool = False,
        delivery_id: str | None = None,
    ) -> None:
        await self._writer.write(
            *inbound.reply_edited(message, text, at=at, keep_if_unknown=keep_if_unknown, delivery_id=delivery_id)
        )

    async def delete_reply(self, message: MessageRef, *, at: datetime, delivery_id: str | None = None) -> None:
        await self._writer.write(*inbound.reply_deleted(message, at=at, delivery_id=delivery_id))

    async def set_reaction(
        self,
        message: MessageRef,
        user_id: str,
        emoji: str,
        *,
        added: bool,
        at: datetime,
        delivery_id: str | None = None,
    ) -> None:
        await self._writer.write(
            *inbound.reaction_changed(message, user_id, emoji, added=added, at=at, delivery_id=delivery_id)
        )

    async def forget_author(self, session_id: int, platform: str, author_id: str) -> int:
        mine = (
            "SELECT platform, channel_id, message_id FROM replies "
            "WHERE session_id = $1 AND platform = $2 AND author_id = $3"
        )
        session_messages = "SELECT platform, channel_id, message_id FROM replies WHERE session_id = $1"
        # A reply sent just before the "forget" must not land after it: let this process's queued
        # inbound writes commit first. Then the inbound lock keeps every process's out meanwhile.
        await self._writer.write()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", INBOUND_LOCK)
            for table in ("reply_edits", "reactions", "deletions"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE (platform, channel_id, message_id) IN ({mine})",
                    session_id,
                    platform,
                    author_id,
                )
            # Their reactions on other people's replies go too; the triggers keep counts right.
            await conn.execute(
                "UPDATE reactions SET present = 0 WHERE platform = $2 AND user_id = $3 "
                f"AND (platform, channel_id, message_id) IN ({session_messages})",
                session_id,
                platform,
                author_id,
            )
            await conn.execute(
                "DELETE FROM reactions WHERE platform = $2 AND user_id = $3 "
                f"AND (platform, channel_id, message_id) IN ({session_messages})",
                session_id,
                platform,
                author_id,
            )
            removed = await conn.fetch(
                "DELETE FROM replies WHERE session_id = $1 AND platform = $2 AND author_id = $3 RETURNING id",
                session_id,
                platform,
                author_id,
            )
        return len(removed)

    async def session_stats(self, session_id: int) -> SessionStats:
        # From the tallies: `/popup status` reads a row per prompt and minute and one per person.
        per_prompt = await self._pool.fetch(
            "SELECT prompt_id, sum(replies)::bigint AS replies, sum(reactions)::bigint AS reactions "
            "FROM tally_by_minute WHERE session_id = $1 GROUP BY prompt_id",
            session_id,
        )
        people = await self._pool.fetchval("SELECT count(*) FROM tally_by_author WHERE session_id = $1", session_id)
        counts: dict[int, int] = {row["prompt_id"]: row["replies"] for row in per_prompt}
        return SessionStats(
            replies=sum(counts.values()),
            participants=int(people),
            replies_per_prompt=counts,
            reactions=sum(row["reactions"] for row in per_prompt),
        )

    async def iter_replies(
        self: _WithPrompts, session_id: int, *, prompt_id: int | None = None
    ) -> AsyncIterator[ReplyRecord]:
        prompt_ids: Iterable[int] = [p.id for p in await self.prompts(session_id)] if prompt_id is None else [prompt_id]
        for pid in prompt_ids:
            async with self._pool.acquire() as conn, conn.transaction(readonly=True):
                cursor = await conn.cursor(
                    f"SELECT {REPLY_COLUMNS} FROM replies WHERE session_id = $1 AND prompt_id = $2 "
                    f"AND {STANDING} ORDER BY created_at, id",
                    session_id,
                    pid,
                )
                while rows := await cursor.fetch(_FETCH_BATCH):
                    for row in rows:
                        yield as_reply(row)
