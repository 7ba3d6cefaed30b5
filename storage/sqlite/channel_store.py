"""The session's channels and identities linked across platforms, on SQLite: attach, detach, list
the channels and their figures; link codes and the voices they join (the SQL is in
:mod:`storage.sqlite.channels`).

A mixin of :class:`storage.sqlite.SqliteStore`: it writes through the store's one writer and reads
on its read-only connection, as the rest of the store does.
"""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from sessions.model import ChannelRef
from sessions.records import ChannelFigures, LinkedVoices, SessionChannel
from storage.sqlite import channels as channel_sql
from storage.sqlite.connections import fetch_all
from storage.sqlite.rows import ts
from storage.sqlite.writer import Writer


class ChannelStoreMethods:
    """The channels and linked identities of :class:`sessions.store.Store`, for SqliteStore."""

    _writer: Writer
    _read: aiosqlite.Connection

    async def attach_channel(
        self, session_id: int, channel: ChannelRef, *, name: str | None = None, joined_by: str | None = None
    ) -> int | None:
        async def attach(db: aiosqlite.Connection) -> int | None:
            holder = await channel_sql.active_session_id(db, channel)
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
        rows = await fetch_all(
            self._read,
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
            return await channel_sql.redeem_link_code(db, code, platform, user_id, at=ts(at), not_before=ts(not_before))

        return await self._writer.transaction(redeem)

    async def linked_voices(self, session_id: int) -> list[LinkedVoices]:
        return await channel_sql.linked_voices(self._read, session_id)
