"""The store on SQLite: opening and closing it, sessions and prompts, housekeeping and the recap.

Writes go through :class:`storage.sqlite.writer.Writer` (group commit); reads go to a connection
of their own (:mod:`storage.sqlite.connections`); rows become records in :mod:`storage.sqlite.rows`;
the recap's aggregates are in :mod:`storage.sqlite.recap_queries`. The rest of the store comes in
mixins: the session's channels (:mod:`storage.sqlite.channel_store`), the outbound ledger
(:mod:`storage.sqlite.ledger`), replies (:mod:`storage.sqlite.replies`), the web side's store
(:mod:`storage.sqlite.web_store`) and where the bot is installed (:mod:`storage.sqlite.install_store`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime

import aiosqlite

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
from storage.batching import Params
from storage.sqlite import housekeeping
from storage.sqlite.channel_store import ChannelStoreMethods
from storage.sqlite.channels import active_session_id
from storage.sqlite.checkpoint import Checkpointer
from storage.sqlite.connections import Connections, create_private_file, fetch_all, fetch_one, open_connections
from storage.sqlite.install_store import InstallStoreMethods
from storage.sqlite.ledger import LedgerMethods
from storage.sqlite.recap_queries import SqliteRecapQueries
from storage.sqlite.replies import ReplyMethods
from storage.sqlite.rows import PROMPT_COLUMNS, SESSION_COLUMNS_OF_S, as_prompt, as_session, ts
from storage.sqlite.web_store import WebStoreMethods
from storage.sqlite.writer import Writer

_log = logging.getLogger(__name__)


class SqliteStore(ChannelStoreMethods, LedgerMethods, ReplyMethods, WebStoreMethods, InstallStoreMethods):
    """:class:`sessions.store.Store` on one SQLite file. Open with :meth:`open`.

    The session's channels, the ledger, replies, the web side's store
    (:class:`sessions.web.WebStore`) and the installs (:class:`sessions.installs.InstallStore`) come from
    the mixins named in this module's docstring.
    """

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
            if await active_session_id(db, new.channel) is not None:
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
                if position and await active_session_id(db, channel) is not None:
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
        session_id = await active_session_id(self._read, channel)
        return None if session_id is None else await self.get_session(session_id)

    async def latest_session(self, channel: ChannelRef) -> SessionRecord | None:
        row = await self._one(
            "SELECT max(session_id) AS latest FROM session_channels WHERE platform = ? AND channel_id = ?",
            (channel.platform, channel.channel_id),
        )
        return None if row is None or row["latest"] is None else await self.get_session(row["latest"])

    async def list_sessions(
        self, states: Sequence[SessionState] = (), *, closed_since: datetime | None = None
    ) -> list[SessionRecord]:
        conditions: list[str] = []
        params: list[object] = []
        if states:
            conditions.append(f"s.state IN ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        if closed_since is not None:
            conditions.append("s.closed_at >= ?")
            params.append(ts(closed_since))
        return await self._sessions_where(" AND ".join(conditions) or "1 = 1", tuple(params))

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

    async def session_by_join_code(self, code: str) -> SessionRecord | None:
        open_states = (SessionState.SCHEDULED.value, SessionState.RUNNING.value)
        rows = await self._sessions_where("s.join_code = ? AND s.state IN (?, ?)", (code, *open_states))
        return rows[0] if rows else None

    # -- housekeeping (policy: sessions.retention; SQL: storage.sqlite.housekeeping) --------------

    async def prune(self, horizon: PruneHorizon, *, limit: int) -> Pruned:
        async def prune(db: aiosqlite.Connection) -> Pruned:
            return await housekeeping.prune(db, horizon, limit)

        return await self._writer.transaction(prune)

    async def storage_figures(self) -> StorageFigures:
        return await housekeeping.figures(self._read, self._path)

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
