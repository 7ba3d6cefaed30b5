"""The session's channels and identities linked across platforms, on PostgreSQL: attach, detach,
list the channels and their figures; link codes and the voices they join (the SQL is in
:mod:`storage.postgres.channels`).

A mixin of :class:`storage.postgres.PostgresStore`: short transactions on the store's pool, each
taking the channel's lock so that racing processes take turns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions.model import ChannelRef
from sessions.records import ChannelFigures, LinkedVoices, SessionChannel
from storage.postgres import channels as channel_sql
from storage.postgres.rows import ts


class ChannelStoreMethods:
    """The channels and linked identities of :class:`sessions.store.Store`, for PostgresStore."""

    _pool: Any

    async def attach_channel(
        self, session_id: int, channel: ChannelRef, *, name: str | None = None, joined_by: str | None = None
    ) -> int | None:
        async with self._pool.acquire() as conn, conn.transaction():
            await channel_sql.lock_channels(conn, (channel,))
            holder = await channel_sql.active_session_id(conn, channel)
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
