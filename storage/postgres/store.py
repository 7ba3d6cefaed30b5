"""The store on PostgreSQL, through asyncpg: sessions, prompts, the outbound ledger and replies.

Inbound writes go through :class:`storage.postgres.writer.Writer` (group commit, one transaction at
a time cluster-wide); control-plane writes are single statements (compare-and-set, the ledger's
upsert) or short transactions, each atomic on its own whichever process runs it; reads go to the
pool. Any number of processes may share the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from sessions.cluster import Lease
from sessions.errors import StorageError
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
from sessions.store import Pruned, PruneHorizon, StorageFigures
from storage.postgres import channels as channel_sql
from storage.postgres import housekeeping, inbound
from storage.postgres.migrate import INBOUND_LOCK, SchemaVersions, migrate, refuse_newer, schema_versions
from storage.postgres.recap_queries import STANDING, PostgresRecapQueries
from storage.postgres.rows import (
    POST_COLUMNS,
    PROMPT_COLUMNS,
    REPLY_COLUMNS,
    SESSION_COLUMNS_OF_S,
    THREAD_TARGET_QUERY,
    as_post,
    as_prompt,
    as_reply,
    as_session,
    as_thread_target,
    dt,
    ts,
)
from storage.postgres.web_store import WebStoreMethods
from storage.postgres.writer import Writer

_log = logging.getLogger(__name__)

_FETCH_BATCH = 2000
_ACTIVE = [s.value for s in ACTIVE_STATES]


async def connect_pool(url: str, *, max_size: int = 8) -> Any:
    """A pool on ``url`` (the password, if any, from PGPASSWORD as libpq has it)."""
    try:
        return await asyncpg.create_pool(
            dsn=url, min_size=1, max_size=max_size, server_settings={"application_name": "popup"}
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError(f"storage.url {url!r}: cannot connect: {exc}") from exc


class PostgresStore(WebStoreMethods):
    """:class:`sessions.store.Store` and :class:`sessions.store.RecapQueries` on a PostgreSQL
    database. Open with :meth:`open`.

    The web side's store (:class:`sessions.web.WebStore`) comes from :mod:`storage.postgres.web_store`.
    """

    def __init__(self, pool: Any, url: str) -> None:
        self._pool = pool
        self.url = url
        self._writer = Writer(pool)
        self._recap = PostgresRecapQueries(pool)

    @classmethod
    async def open(cls, url: str, *, migrate_schema: bool = True) -> PostgresStore:
        """Open the database at ``url``, migrated to the newest schema (or, without
        ``migrate_schema``, refused unless it already is)."""
        pool = await connect_pool(url)
        try:
            async with pool.acquire() as conn:
                if migrate_schema:
                    await migrate(conn, f"storage.url {url!r}")
                else:
                    versions = await schema_versions(conn)
                    refuse_newer(versions, f"storage.url {url!r}")
                    if versions.current < versions.latest:
                        raise StorageError(
                            f"storage.url {url!r}: database schema version {versions.current} is older than "
                            f"this Popup's ({versions.latest}); run popup migrate"
                        )
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    @staticmethod
    async def migrate(url: str) -> SchemaVersions:
        """Apply every migration the database at ``url`` lacks; its versions after."""
        pool = await connect_pool(url, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await migrate(conn, f"storage.url {url!r}")
        finally:
            await pool.close()

    async def close(self) -> None:
        await self._writer.close()
        await self._pool.close()

    # -- sessions and prompts ----------------------------------------------------------------

    async def create_session(self, new: NewSession) -> SessionRecord | None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Two racing starts (or a start and a join) in one channel, from any processes, take turns.
            await _lock_channels(conn, (new.channel, *new.more_channels))
            if await _active_session_id(conn, new.channel) is not None:
                return None
            session_id = await conn.fetchval(
                "INSERT INTO sessions (plan_name, title, intro, timezone, state, anonymous, started_by, "
                "started_at, recap_at, join_code, pulse_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "RETURNING id",
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
            )
            position = 0
            for channel in (new.channel, *new.more_channels):
                if position and await _active_session_id(conn, channel) is not None:
                    continue  # a circle's channel busy with another session is left out
                await conn.execute(
                    "INSERT INTO session_channels (session_id, position, platform, channel_id, name) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    session_id,
                    position,
                    channel.platform,
                    channel.channel_id,
                    new.channel_names.get(channel),
                )
                position += 1
            await conn.executemany(
                "INSERT INTO prompts (session_id, position, text, due_at, state) VALUES ($1, $2, $3, $4, $5)",
                [
                    (session_id, position, prompt.text, ts(prompt.due_at), PromptState.PENDING.value)
                    for position, prompt in enumerate(new.prompts, start=1)
                ],
            )
        return await self.get_session(session_id)

    async def get_session(self, session_id: int) -> SessionRecord | None:
        rows = await self._sessions_where("s.id = $1", (session_id,))
        return rows[0] if rows else None

    async def active_session(self, channel: ChannelRef) -> SessionRecord | None:
        session_id = await _active_session_id(self._pool, channel)
        return None if session_id is None else await self.get_session(session_id)

    async def latest_session(self, channel: ChannelRef) -> SessionRecord | None:
        latest = await self._pool.fetchval(
            "SELECT max(session_id) FROM session_channels WHERE platform = $1 AND channel_id = $2",
            channel.platform,
            channel.channel_id,
        )
        return None if latest is None else await self.get_session(latest)

    async def list_sessions(self, states: Sequence[SessionState] = ()) -> list[SessionRecord]:
        if not states:
            return await self._sessions_where("true", ())
        return await self._sessions_where("s.state = ANY($1::text[])", ([s.value for s in states],))

    async def _sessions_where(self, condition: str, params: tuple[object, ...]) -> list[SessionRecord]:
        # ``condition`` is always a literal from this module; values travel as parameters.
        rows = await self._pool.fetch(
            f"SELECT {SESSION_COLUMNS_OF_S}, c.platform AS channel_platform, c.channel_id AS channel_id "
            "FROM sessions AS s "
            f"LEFT JOIN session_channels AS c ON c.session_id = s.id WHERE {condition} ORDER BY s.id, c.position",
            *params,
        )
        found: dict[int, tuple[Any, list[ChannelRef]]] = {}
        for row in rows:
            entry = found.get(row["id"])
            if entry is None:
                entry = found[row["id"]] = (row, [])
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
        closed_at = ts(at) if at is not None and new.is_terminal else None
        moved = await self._pool.fetchval(
            "UPDATE sessions SET state = $1, closed_at = coalesce($2, closed_at) "
            "WHERE id = $3 AND state = ANY($4::text[]) RETURNING id",
            new.value,
            closed_at,
            session_id,
            [s.value for s in expected],
        )
        return moved is not None

    async def prompts(self, session_id: int) -> list[PromptRecord]:
        rows = await self._pool.fetch(
            f"SELECT {PROMPT_COLUMNS} FROM prompts WHERE session_id = $1 ORDER BY position", session_id
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
        posted_at = ts(at) if at is not None and new is PromptState.POSTED else None
        moved = await self._pool.fetchval(
            "UPDATE prompts SET state = $1, posted_at = coalesce($2, posted_at) "
            "WHERE id = $3 AND state = ANY($4::text[]) RETURNING id",
            new.value,
            posted_at,
            prompt_id,
            [s.value for s in expected],
        )
        return moved is not None

    # -- the session's channels ----------------------------------------------------------------

    async def session_by_join_code(self, code: str) -> SessionRecord | None:
        open_states = [SessionState.SCHEDULED.value, SessionState.RUNNING.value]
        rows = await self._sessions_where("s.join_code = $1 AND s.state = ANY($2::text[])", (code, open_states))
        return rows[0] if rows else None

    async def attach_channel(
        self, session_id: int, channel: ChannelRef, *, name: str | None = None, joined_by: str | None = None
    ) -> int | None:
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_channels(conn, (channel,))
            holder = await _active_session_id(conn, channel)
            if holder is not None:
                return None if holder == session_id else holder
            # The session's row lock keeps two joins of different channels from taking one position.
            await conn.execute("SELECT id FROM sessions WHERE id = $1 FOR UPDATE", session_id)
            await conn.execute(
                "INSERT INTO session_channels (session_id, position, platform, channel_id, name, joined_by) "
                "VALUES ($1, (SELECT coalesce(max(position), -1) + 1 FROM session_channels WHERE session_id = $1), "
                "$2, $3, $4, $5) ON CONFLICT (session_id, platform, channel_id) "
                "DO UPDATE SET name = excluded.name, joined_by = excluded.joined_by",
                session_id,
                channel.platform,
                channel.channel_id,
                name,
                joined_by,
            )
        return None

    async def detach_channel(self, session_id: int, channel: ChannelRef) -> bool:
        gone = await self._pool.fetch(
            "DELETE FROM session_channels WHERE session_id = $1 AND platform = $2 AND channel_id = $3 "
            "RETURNING position",
            session_id,
            channel.platform,
            channel.channel_id,
        )
        return len(gone) == 1

    async def session_channels(self, session_id: int) -> list[SessionChannel]:
        rows = await self._pool.fetch(
            "SELECT platform, channel_id, name, joined_by FROM session_channels WHERE session_id = $1 "
            "ORDER BY position",
            session_id,
        )
        return [channel_sql.as_session_channel(row) for row in rows]

    async def channel_figures(self, session_id: int) -> list[ChannelFigures]:
        return await channel_sql.channel_figures(self._pool, session_id)

    # -- identities linked across platforms ------------------------------------------------------

    async def add_link_code(self, code: str, platform: str, user_id: str, *, at: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO link_codes (code, platform, user_id, created_at) VALUES ($1, $2, $3, $4)",
            code,
            platform,
            user_id,
            ts(at),
        )

    async def redeem_link_code(
        self, code: str, platform: str, user_id: str, *, at: datetime, not_before: datetime
    ) -> tuple[str, str] | None:
        async with self._pool.acquire() as conn, conn.transaction():
            return await channel_sql.redeem_link_code(
                conn, code, platform, user_id, at=ts(at), not_before=ts(not_before)
            )

    async def linked_voices(self, session_id: int) -> list[LinkedVoices]:
        return await channel_sql.linked_voices(self._pool, session_id)

    # -- the outbound ledger -----------------------------------------------------------------

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

    # -- leases (sessions.cluster.SessionLeases): one process at a time runs a session's step --

    async def take_lease(self, session_id: int, holder: str, seconds: float) -> Lease:
        # One statement, by the database's clock: takes a free or run-out lease, renews our own,
        # and otherwise (the conditional update does nothing) returns no row.
        row = await self._pool.fetchrow(
            "INSERT INTO session_leases AS l (session_id, holder, expires_at) "
            "VALUES ($1, $2, extract(epoch FROM clock_timestamp()) + $3) "
            "ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE l.holder = excluded.holder OR l.expires_at <= extract(epoch FROM clock_timestamp()) "
            "RETURNING expires_at",
            session_id,
            holder,
            float(seconds),
        )
        if row is not None:
            return Lease(held=True, until=dt(row["expires_at"]))
        until = await self._pool.fetchval("SELECT expires_at FROM session_leases WHERE session_id = $1", session_id)
        # Gone meanwhile (given back): free now, the caller tries again at once.
        return Lease(held=False, until=dt(until) if until is not None else datetime.now(UTC))

    async def release_lease(self, session_id: int, holder: str) -> None:
        await self._pool.execute("DELETE FROM session_leases WHERE session_id = $1 AND holder = $2", session_id, holder)

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

    async def iter_replies(self, session_id: int, *, prompt_id: int | None = None) -> AsyncIterator[ReplyRecord]:
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

    # -- housekeeping (policy: sessions.retention; SQL: storage.postgres.housekeeping) ------------

    async def prune(self, horizon: PruneHorizon, *, limit: int) -> Pruned:
        async with self._pool.acquire() as conn, conn.transaction():
            return await housekeeping.prune(conn, horizon, limit)

    async def storage_figures(self) -> StorageFigures:
        return await housekeeping.figures(self._pool)

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


async def _lock_channels(conn: Any, channels: Sequence[ChannelRef]) -> None:
    """Take the channels' transaction-scoped locks, in one order for every process (no deadlock)."""
    keys = sorted({f"popup:channel:{c.platform}:{c.channel_id}" for c in channels})
    for key in keys:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def _active_session_id(db: Any, channel: ChannelRef) -> int | None:
    """``db``: a connection or the pool (both answer fetchval)."""
    found = await db.fetchval(
        "SELECT s.id FROM session_channels AS c JOIN sessions AS s ON s.id = c.session_id "
        "WHERE c.platform = $1 AND c.channel_id = $2 AND s.state = ANY($3::text[]) ORDER BY s.id DESC LIMIT 1",
        channel.platform,
        channel.channel_id,
        _ACTIVE,
    )
    return None if found is None else int(found)
