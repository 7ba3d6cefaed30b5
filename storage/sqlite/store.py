"""The store on SQLite: sessions, prompts, the outbound ledger and replies.

Writes go through :class:`storage.sqlite.writer.Writer` (group commit); reads go to a connection
of their own (:mod:`storage.sqlite.connections`); rows become records in :mod:`storage.sqlite.rows`;
the recap's aggregates are in :mod:`storage.sqlite.recap_queries`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import cast

import aiosqlite

from sessions.model import ChannelRef, MessageRef, Posted
from sessions.records import (
    ACTIVE_STATES,
    ChannelFigures,
    LinkedVoices,
    NewReply,
    NewSession,
    Participation,
    PostRecord,
    PromptRecord,
    PromptState,
    RankedRow,
    ReplyRecord,
    SessionChannel,
    SessionRecord,
    SessionState,
    SessionStats,
    ThreadTarget,
    TimeBin,
)
from storage.sqlite import channels as channel_sql
from storage.sqlite import inbound
from storage.sqlite.checkpoint import Checkpointer
from storage.sqlite.connections import Connections, create_private_file, fetch_all, fetch_one, open_connections
from storage.sqlite.recap_queries import STANDING, SqliteRecapQueries
from storage.sqlite.rows import (
    POST_COLUMNS,
    PROMPT_COLUMNS,
    REPLY_COLUMNS,
    SESSION_COLUMNS_OF_S,
    THREAD_TARGET_QUERY,
    ReplyRow,
    as_post,
    as_prompt,
    as_reply,
    as_session,
    as_thread_target,
    make_rows,
    reply_row,
    ts,
)
from storage.sqlite.writer import Params, Writer

_log = logging.getLogger(__name__)

_FETCH_BATCH = 2000


class SqliteStore:
    """:class:`sessions.store.Store` on one SQLite file. Open with :meth:`open`."""

    def __init__(self, connections: Connections, path: str) -> None:
        self._db = connections.writer
        self._read = connections.reader
        self._path = path
        self._checkpointer = Checkpointer(connections.checkpointer) if connections.checkpointer is not None else None
        self._writer = Writer(self._db, after_work=self._checkpointer.poke if self._checkpointer else None)
        self._recap = SqliteRecapQueries(self._read)

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteStore:
        target = os.fspath(path)
        return cls(await open_connections(target), target)

    async def close(self) -> None:
        await self._writer.close()
        if self._read is not self._db:
            await self._read.close()
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._db.close()

    async def integrity_check(self) -> str:
        row = await self._one("PRAGMA integrity_check", ())
        return str(row["integrity_check"]) if row else "no answer"

    async def backup(self, target: str | os.PathLike[str]) -> None:
        """A consistent copy through SQLite's online backup, while the bot keeps writing."""
        create_private_file(os.fspath(target))
        async with aiosqlite.connect(os.fspath(target)) as copy:
            await self._db.backup(copy)

    # -- reading helpers: on the read-only connection ----------------------------------------

    async def _all(self, sql: str, params: Params) -> list[sqlite3.Row]:
        return await fetch_all(self._read, sql, params)

    async def _one(self, sql: str, params: Params) -> sqlite3.Row | None:
        return await fetch_one(self._read, sql, params)

    # -- sessions and prompts ----------------------------------------------------------------

    async def create_session(self, new: NewSession) -> SessionRecord | None:
        async def create(db: aiosqlite.Connection) -> int | None:
            if await _active_session_id(db, new.channel) is not None:
                return None
            cursor = await db.execute(
                "INSERT INTO sessions (plan_name, title, intro, timezone, state, anonymous, started_by, "
                "started_at, recap_at, join_code, pulse_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.plan_name,
                    new.title,
                    new.intro,
                    new.timezone,
                    SessionState.SCHEDULED.value,
                    int(new.anonymous),
                    new.started_by,
                    ts(new.started_at),
                    ts(new.recap_at),
                    new.join_code,
                    None if new.pulse_at is None else ts(new.pulse_at),
                ),
            )
            session_id = cursor.lastrowid
            assert session_id is not None
            position = 0
            for channel in (new.channel, *new.more_channels):
                if position and await _active_session_id(db, channel) is not None:
                    continue  # a circle's channel busy with another session is left out
                await db.execute(
                    "INSERT INTO session_channels (session_id, position, platform, channel_id, name) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (session_id, position, channel.platform, channel.channel_id, new.channel_names.get(channel)),
                )
                position += 1
            await db.executemany(
                "INSERT INTO prompts (session_id, position, text, due_at, state) VALUES (?, ?, ?, ?, ?)",
                [
                    (session_id, position, prompt.text, ts(prompt.due_at), PromptState.PENDING.value)
                    for position, prompt in enumerate(new.prompts, start=1)
                ],
            )
            return session_id

        session_id = await self._writer.transaction(create)
        return None if session_id is None else await self.get_session(session_id)

    async def get_session(self, session_id: int) -> SessionRecord | None:
        rows = await self._sessions_where("s.id = ?", (session_id,))
        return rows[0] if rows else None

    async def active_session(self, channel: ChannelRef) -> SessionRecord | None:
        session_id = await _active_session_id(self._read, channel)
        return None if session_id is None else await self.get_session(session_id)

    async def latest_session(self, channel: ChannelRef) -> SessionRecord | None:
        row = await self._one(
            "SELECT max(session_id) AS latest FROM session_channels WHERE platform = ? AND channel_id = ?",
            (channel.platform, channel.channel_id),
        )
        return None if row is None or row["latest"] is None else await self.get_session(row["latest"])

    async def list_sessions(self, states: Sequence[SessionState] = ()) -> list[SessionRecord]:
        if not states:
            return await self._sessions_where("1 = 1", ())
        marks = ", ".join("?" for _ in states)
        return await self._sessions_where(f"s.state IN ({marks})", tuple(s.value for s in states))

    async def _sessions_where(self, condition: str, params: Params) -> list[SessionRecord]:
        # ``condition`` is always a literal from this module; values travel as parameters. One
        # query (one trip to the database thread) for the sessions and their channels together.
        rows = await self._all(
            f"SELECT {SESSION_COLUMNS_OF_S}, c.platform AS channel_platform, c.channel_id AS channel_id "
            "FROM sessions AS s "
            f"LEFT JOIN session_channels AS c ON c.session_id = s.id WHERE {condition} ORDER BY s.id, c.position",
            params,
        )
        found: dict[int, tuple[sqlite3.Row, list[ChannelRef]]] = {}
        for row in rows:
            session_id = row["id"]
            entry = found.get(session_id)
            if entry is None:
                entry = found[session_id] = (row, [])
            if row["channel_platform"] is not None:
                entry[1].append(ChannelRef(platform=row["channel_platform"], channel_id=row["channel_id"]))
        return [as_session(row, tuple(channels)) for row, channels in found.values()]

    async def set_session_state(
        self,
        session_id: int,
        expected: Sequence[SessionState],
        new: SessionState,
        *,
        at: datetime | None = None,
    ) -> bool:
        marks = ", ".join("?" for _ in expected)
        closed_at = ts(at) if at is not None and new.is_terminal else None
        sql = f"UPDATE sessions SET state = ?, closed_at = coalesce(?, closed_at) WHERE id = ? AND state IN ({marks})"
        params = (new.value, closed_at, session_id, *(s.value for s in expected))
        return await self._compare_and_set(sql, params)

    async def _compare_and_set(self, sql: str, params: Params) -> bool:
        # One UPDATE in autocommit mode is atomic on its own: no BEGIN/COMMIT trips needed.
        return len(await self._writer.statement(f"{sql} RETURNING id", params)) == 1

    async def prompts(self, session_id: int) -> list[PromptRecord]:
        rows = await self._all(
            f"SELECT {PROMPT_COLUMNS} FROM prompts WHERE session_id = ? ORDER BY position",
            (session_id,),
        )
        return [as_prompt(row) for row in rows]

    async def set_prompt_state(
        self,
        prompt_id: int,
        expected: Sequence[PromptState],
        new: PromptState,
        *,
        at: datetime | None = None,
    ) -> bool:
        marks = ", ".join("?" for _ in expected)
        posted_at = ts(at) if at is not None and new is PromptState.POSTED else None
        sql = f"UPDATE prompts SET state = ?, posted_at = coalesce(?, posted_at) WHERE id = ? AND state IN ({marks})"
        return await self._compare_and_set(sql, (new.value, posted_at, prompt_id, *(s.value for s in expected)))

    # -- the session's channels ----------------------------------------------------------------

    async def session_by_join_code(self, code: str) -> SessionRecord | None:
        open_states = (SessionState.SCHEDULED.value, SessionState.RUNNING.value)
        rows = await self._sessions_where("s.join_code = ? AND s.state IN (?, ?)", (code, *open_states))
        return rows[0] if rows else None

    async def attach_channel(
        self, session_id: int, channel: ChannelRef, *, name: str | None = None, joined_by: str | None = None
    ) -> int | None:
        async def attach(db: aiosqlite.Connection) -> int | None:
            holder = await _active_session_id(db, channel)
            if holder is not None:
                return None if holder == session_id else holder
            await db.execute(
                "INSERT INTO session_channels (session_id, position, platform, channel_id, name, joined_by) "
                "VALUES (?, (SELECT coalesce(max(position), -1) + 1 FROM session_channels WHERE session_id = ?), "
                "?, ?, ?, ?) ON CONFLICT DO UPDATE SET name = excluded.name, joined_by = excluded.joined_by",
                (session_id, session_id, channel.platform, channel.channel_id, name, joined_by),
            )
            return None

        return await self._writer.transaction(attach)

    async def detach_channel(self, session_id: int, channel: ChannelRef) -> bool:
        rows = await self._writer.statement(
            "DELETE FROM session_channels WHERE session_id = ? AND platform = ? AND channel_id = ? RETURNING position",
            (session_id, channel.platform, channel.channel_id),
        )
        return len(rows) == 1

    async def session_channels(self, session_id: int) -> list[SessionChannel]:
        rows = await self._all(
            "SELECT platform, channel_id, name, joined_by FROM session_channels WHERE session_id = ? ORDER BY position",
            (session_id,),
        )
        return [channel_sql.as_session_channel(row) for row in rows]

    async def channel_figures(self, session_id: int) -> list[ChannelFigures]:
        return await channel_sql.channel_figures(self._read, session_id)

    # -- identities linked across platforms ------------------------------------------------------

    async def add_link_code(self, code: str, platform: str, user_id: str, *, at: datetime) -> None:
        await self._writer.statement(
            "INSERT INTO link_codes (code, platform, user_id, created_at) VALUES (?, ?, ?, ?)",
            (code, platform, user_id, ts(at)),
        )

    async def redeem_link_code(
        self, code: str, platform: str, user_id: str, *, at: datetime, not_before: datetime
    ) -> tuple[str, str] | None:
        async def redeem(db: aiosqlite.Connection) -> tuple[str, str] | None:
            return await channel_sql.redeem_link_code(
                db, code, platform, user_id, at=ts(at), not_before=ts(not_before)
            )

        return await self._writer.transaction(redeem)

    async def linked_voices(self, session_id: int) -> list[LinkedVoices]:
        return await channel_sql.linked_voices(self._read, session_id)

    # -- the outbound ledger -----------------------------------------------------------------

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
        rows = await self._all(
            f"SELECT {POST_COLUMNS} FROM posts WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [as_post(row) for row in rows]

    async def thread_target(self, platform: str, thread_id: str) -> ThreadTarget | None:
        row = await self._one(THREAD_TARGET_QUERY, (platform, thread_id))
        return None if row is None else as_thread_target(row)

    # -- replies -----------------------------------------------------------------------------

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
        per_prompt = await self._all(
            "SELECT prompt_id, sum(replies) AS replies, sum(reactions) AS reactions FROM tally_by_minute "
            "WHERE session_id = ? GROUP BY prompt_id",
            (session_id,),
        )
        people = await self._one("SELECT count(*) AS people FROM tally_by_author WHERE session_id = ?", (session_id,))
        counts: dict[int, int] = {row["prompt_id"]: row["replies"] for row in per_prompt}
        return SessionStats(
            replies=sum(counts.values()),
            participants=people["people"] if people else 0,
            replies_per_prompt=counts,
            reactions=sum(row["reactions"] for row in per_prompt),
        )

    async def iter_replies(self, session_id: int, *, prompt_id: int | None = None) -> AsyncIterator[ReplyRecord]:
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

    # -- recap queries (sessions.store.RecapQueries) -----------------------------------------

    async def recap_last_reply_at(self, session_id: int) -> datetime | None:
        return await self._recap.last_reply_at(session_id)

    async def recap_time_bins(self, session_id: int, origin: datetime, width_seconds: float) -> list[TimeBin]:
        return await self._recap.time_bins(session_id, origin, width_seconds)

    async def recap_participants(self, session_id: int) -> Participation:
        return await self._recap.participants(session_id)

    def recap_ranked_rows(
        self, session_id: int, prompt_id: int, *, best: int | None = None
    ) -> AsyncGenerator[list[RankedRow], None]:
        return self._recap.ranked_rows(session_id, prompt_id, best=best)


async def _active_session_id(db: aiosqlite.Connection, channel: ChannelRef) -> int | None:
    marks = ", ".join("?" for _ in ACTIVE_STATES)
    rows = await db.execute_fetchall(
        "SELECT s.id AS id FROM session_channels AS c JOIN sessions AS s ON s.id = c.session_id "
        f"WHERE c.platform = ? AND c.channel_id = ? AND s.state IN ({marks}) ORDER BY s.id DESC LIMIT 1",
        (channel.platform, channel.channel_id, *(s.value for s in ACTIVE_STATES)),
    )
    row = next(iter(rows), None)
    return None if row is None else int(row["id"])
