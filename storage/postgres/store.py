"""The store on PostgreSQL, through asyncpg: connecting and migrating, sessions and prompts,
housekeeping and the recap; the session's channels (:mod:`storage.postgres.channel_store`), the
outbound ledger (:mod:`storage.postgres.ledger`), leases (:mod:`storage.postgres.leases`), replies
(:mod:`storage.postgres.replies`), the web side's store (:mod:`storage.postgres.web_store`) and where
the bot is installed (:mod:`storage.postgres.install_store`) come in mixins.

Inbound writes go through :class:`storage.postgres.writer.Writer` (group commit, one transaction at
a time cluster-wide); control-plane writes are single statements (compare-and-set, the ledger's
upsert) or short transactions, each atomic on its own whichever process runs it; reads go to the
pool. Any number of processes may share the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from sessions.errors import StorageError
from sessions.model import ChannelRef
from sessions.records import (
    NewSession,
    Participation,
    PromptRecord,
    PromptState,
    RankedRow,
    SessionRecord,
    SessionState,
    TimeBin,
)
from sessions.store import Pruned, PruneHorizon, StorageFigures
from storage.postgres import housekeeping
from storage.postgres.channel_store import ChannelStoreMethods
from storage.postgres.channels import active_session_id, lock_channels
from storage.postgres.install_store import InstallStoreMethods
from storage.postgres.leases import LeaseMethods
from storage.postgres.ledger import LedgerMethods
from storage.postgres.migrate import SchemaVersions, migrate, refuse_newer, schema_versions
from storage.postgres.recap_queries import PostgresRecapQueries
from storage.postgres.replies import ReplyMethods
from storage.postgres.rows import PROMPT_COLUMNS, SESSION_COLUMNS_OF_S, as_prompt, as_session, ts
from storage.postgres.web_store import WebStoreMethods
from storage.postgres.writer import Writer

_log = logging.getLogger(__name__)


async def connect_pool(url: str, *, max_size: int = 8) -> Any:
    """A pool on ``url`` (the password, if any, from PGPASSWORD as libpq has it)."""
    try:
        return await asyncpg.create_pool(
            dsn=url, min_size=1, max_size=max_size, server_settings={"application_name": "popup"}
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError(f"storage.url {url!r}: cannot connect: {exc}") from exc


class PostgresStore(
    ChannelStoreMethods, LedgerMethods, LeaseMethods, ReplyMethods, WebStoreMethods, InstallStoreMethods
):
    """:class:`sessions.store.Store` and :class:`sessions.store.RecapQueries` on a PostgreSQL
    database. Open with :meth:`open`.

    The session's channels, the ledger, leases, replies, the web side's store
    (:class:`sessions.web.WebStore`) and the installs (:class:`sessions.installs.InstallStore`) come from
    the mixins named in this module's docstring.
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
            await lock_channels(conn, (new.channel, *new.more_channels))
            if await active_session_id(conn, new.channel) is not None:
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
                if position and await active_session_id(conn, channel) is not None:
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
        session_id = await active_session_id(self._pool, channel)
        return None if session_id is None else await self.get_session(session_id)

    async def latest_session(self, channel: ChannelRef) -> SessionRecord | None:
        latest = await self._pool.fetchval(
            "SELECT max(session_id) FROM session_channels WHERE platform = $1 AND channel_id = $2",
            channel.platform,
            channel.channel_id,
        )
        return None if latest is None else await self.get_session(latest)

    async def list_sessions(
        self, states: Sequence[SessionState] = (), *, closed_since: datetime | None = None
    ) -> list[SessionRecord]:
        conditions: list[str] = []
        params: list[object] = []
        if states:
            params.append([s.value for s in states])
            conditions.append(f"s.state = ANY(${len(params)}::text[])")
        if closed_since is not None:
            params.append(ts(closed_since))
            conditions.append(f"s.closed_at >= ${len(params)}")
        return await self._sessions_where(" AND ".join(conditions) or "true", tuple(params))

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

    async def session_by_join_code(self, code: str) -> SessionRecord | None:
        open_states = [SessionState.SCHEDULED.value, SessionState.RUNNING.value]
        rows = await self._sessions_where("s.join_code = $1 AND s.state = ANY($2::text[])", (code, open_states))
        return rows[0] if rows else None

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
