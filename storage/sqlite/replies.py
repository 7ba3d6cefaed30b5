"""Replies on SQLite: the inbound writes (their idempotent statements are in
:mod:`storage.sqlite.inbound`), forgetting an author, the live counts of `/popup status`, and
reading a session's standing replies in batches.

A mixin of :class:`storage.sqlite.SqliteStore`: it writes through the store's one writer and reads
on its read-only connection, as the rest of the store does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Protocol, cast

import aiosqlite

from sessions.model import MessageRef
from sessions.records import NewReply, PromptRecord, ReplyRecord, SessionStats
from storage.sqlite import inbound
from storage.sqlite.connections import fetch_all, fetch_one
from storage.sqlite.recap_queries import STANDING
from storage.sqlite.rows import REPLY_COLUMNS, ReplyRow, as_reply, make_rows, reply_row
from storage.sqlite.writer import Writer

_FETCH_BATCH = 2000


class _WithPrompts(Protocol):
    """What :meth:`ReplyMethods.iter_replies` needs of the store it is mixed into."""

    _read: aiosqlite.Connection

    async def prompts(self, session_id: int) -> list[PromptRecord]: ...


class ReplyMethods:
    """Replies of :class:`sessions.store.Store`, for SqliteStore."""

    _writer: Writer
    _read: aiosqlite.Connection

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
            "WHERE session_id = ? AND platform = ? AND author_id = ?"
        )
        session_messages = "SELECT platform, channel_id, message_id FROM replies WHERE session_id = ?"
        key = (session_id, platform, author_id)
        # Transactions go ahead of queued inbound writes; a reply sent just before the "forget"
        # must not land after it, so let everything queued so far commit first.
        await self._writer.write()

        async def forget(db: aiosqlite.Connection) -> int:
            for table in ("reply_edits", "reactions", "deletions"):
                await db.execute(
                    f"DELETE FROM {table} WHERE (platform, channel_id, message_id) IN ({mine})",
                    key,
                )
            # Their reactions on other people's replies go too; the trigger keeps counts right.
            await db.execute(
                "UPDATE reactions SET present = 0 WHERE platform = ? AND user_id = ? "
                f"AND (platform, channel_id, message_id) IN ({session_messages})",
                (platform, author_id, session_id),
            )
            await db.execute(
                "DELETE FROM reactions WHERE platform = ? AND user_id = ? "
                f"AND (platform, channel_id, message_id) IN ({session_messages})",
                (platform, author_id, session_id),
            )
            cursor = await db.execute(
                "DELETE FROM replies WHERE session_id = ? AND platform = ? AND author_id = ?", key
            )
            return cursor.rowcount

        return await self._writer.transaction(forget)

    async def session_stats(self, session_id: int) -> SessionStats:
        # From the recap tallies (migration 0003): `/popup status` reads a row per prompt and
        # minute and one per person, not every reply, however busy the session.
        per_prompt = await fetch_all(
            self._read,
            "SELECT prompt_id, sum(replies) AS replies, sum(reactions) AS reactions FROM tally_by_minute "
            "WHERE session_id = ? GROUP BY prompt_id",
            (session_id,),
        )
        people = await fetch_one(
            self._read, "SELECT count(*) AS people FROM tally_by_author WHERE session_id = ?", (session_id,)
        )
        counts: dict[int, int] = {row["prompt_id"]: row["replies"] for row in per_prompt}
        return SessionStats(
            replies=sum(counts.values()),
            participants=people["people"] if people else 0,
            replies_per_prompt=counts,
            reactions=sum(row["reactions"] for row in per_prompt),
        )

    async def iter_replies(
        self: _WithPrompts, session_id: int, *, prompt_id: int | None = None
    ) -> AsyncIterator[ReplyRecord]:
        prompt_ids: Iterable[int] = [p.id for p in await self.prompts(session_id)] if prompt_id is None else [prompt_id]
        for pid in prompt_ids:
            async with self._read.execute(
                f"SELECT {REPLY_COLUMNS} FROM replies WHERE session_id = ? AND prompt_id = ? "
                f"AND {STANDING} ORDER BY created_at, id",
                (session_id, pid),
            ) as cursor:
                make_rows(cursor, reply_row)
                while rows := cast("list[ReplyRow]", await cursor.fetchmany(_FETCH_BATCH)):
                    for row in rows:
                        yield as_reply(row)
