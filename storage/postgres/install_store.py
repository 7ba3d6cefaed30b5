"""Where the bot is installed (:class:`sessions.installs.InstallStore`), on PostgreSQL: installations
with their bots, the one-time states of install flows, and which workspace each channel is in
(migration 0006, as the SQLite store's 0007).

A mixin of :class:`storage.postgres.PostgresStore`: every statement is atomic on its own, whichever
process runs it, so an install made by one process is found by all, and a state is taken once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions.installs import InstallRecord, WorkspaceKey
from storage.postgres.rows import ts
from storage.sqlite.install_store import INSTALL_COLUMNS, REINSTALL, as_install, install_params

_FIND_INSTALL = (
    f"SELECT {INSTALL_COLUMNS} FROM installs WHERE platform = $1 AND ((team_id = $2 AND team_id <> '') "
    "OR (org_wide = 1 AND enterprise_id = $3 AND enterprise_id <> '')) ORDER BY org_wide LIMIT 1"
)


class InstallStoreMethods:
    """:class:`sessions.installs.InstallStore` for PostgresStore."""

    _pool: Any

    async def save_install(self, install: InstallRecord) -> None:
        await self._pool.execute(
            f"INSERT INTO installs ({INSTALL_COLUMNS}) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) {REINSTALL}",
            *install_params(install),
        )

    async def find_install(self, platform: str, *, enterprise_id: str, team_id: str) -> InstallRecord | None:
        row = await self._pool.fetchrow(_FIND_INSTALL, platform, team_id, enterprise_id)
        return None if row is None else as_install(row)

    async def installs(self, platform: str) -> list[InstallRecord]:
        rows = await self._pool.fetch(
            f"SELECT {INSTALL_COLUMNS} FROM installs WHERE platform = $1 "
            'ORDER BY installed_at, enterprise_id COLLATE "C", team_id COLLATE "C"',
            platform,
        )
        return [as_install(row) for row in rows]

    async def delete_install(self, platform: str, key: WorkspaceKey) -> bool:
        deleted = await self._pool.fetchval(
            "DELETE FROM installs WHERE platform = $1 AND enterprise_id = $2 AND team_id = $3 RETURNING team_id",
            platform,
            key.enterprise_id,
            key.team_id,
        )
        return deleted is not None

    async def issue_install_state(self, state: str, *, now: datetime, expires_at: datetime) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM install_states WHERE expires_at <= $1", ts(now))
            await conn.execute("INSERT INTO install_states (state, expires_at) VALUES ($1, $2)", state, ts(expires_at))

    async def consume_install_state(self, state: str, *, now: datetime) -> bool:
        expires_at = await self._pool.fetchval(
            "DELETE FROM install_states WHERE state = $1 RETURNING expires_at", state
        )
        return expires_at is not None and float(expires_at) > ts(now)

    async def note_channel_workspace(self, platform: str, channel_id: str, key: WorkspaceKey) -> None:
        await self._pool.execute(
            "INSERT INTO channel_workspaces (platform, channel_id, enterprise_id, team_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (platform, channel_id) DO UPDATE SET enterprise_id = excluded.enterprise_id, "
            "team_id = excluded.team_id",
            platform,
            channel_id,
            key.enterprise_id,
            key.team_id,
        )

    async def channel_workspace(self, platform: str, channel_id: str) -> WorkspaceKey | None:
        row = await self._pool.fetchrow(
            "SELECT enterprise_id, team_id FROM channel_workspaces WHERE platform = $1 AND channel_id = $2",
            platform,
            channel_id,
        )
        return None if row is None else WorkspaceKey(enterprise_id=row["enterprise_id"], team_id=row["team_id"])
