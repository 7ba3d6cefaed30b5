"""Where the bot is installed (:class:`sessions.installs.InstallStore`), on SQLite: installations
with their bots, the one-time states of install flows, and which workspace each channel is in
(migration 0007).

A mixin of :class:`storage.sqlite.SqliteStore`: it writes through the store's one writer (urgent:
an install or a command waits on these, never behind a batch of replies) and reads on its
read-only connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiosqlite

from sessions.installs import InstallRecord, WorkspaceKey
from storage.sqlite.connections import fetch_all, fetch_one
from storage.sqlite.rows import dt, ts
from storage.sqlite.writer import Writer

INSTALL_COLUMNS = (
    "platform, enterprise_id, team_id, org_wide, app_id, bot_id, bot_user_id, bot_token, scopes, installed_by, "
    "installed_at, team_name, enterprise_name"
)
# What a reinstall replaces (both stores' upserts end with it).
REINSTALL = (
    "ON CONFLICT (platform, enterprise_id, team_id) DO UPDATE SET org_wide = excluded.org_wide, "
    "app_id = excluded.app_id, bot_id = excluded.bot_id, bot_user_id = excluded.bot_user_id, "
    "bot_token = excluded.bot_token, scopes = excluded.scopes, installed_by = excluded.installed_by, "
    "installed_at = excluded.installed_at, team_name = excluded.team_name, enterprise_name = excluded.enterprise_name"
)
# A team's own install before its org's org-wide one; an empty id matches nothing.
FIND_INSTALL = (
    f"SELECT {INSTALL_COLUMNS} FROM installs WHERE platform = ?1 AND ((team_id = ?2 AND team_id <> '') "
    "OR (org_wide = 1 AND enterprise_id = ?3 AND enterprise_id <> '')) ORDER BY org_wide LIMIT 1"
)


class InstallStoreMethods:
    """:class:`sessions.installs.InstallStore` for SqliteStore."""

    _writer: Writer
    _read: aiosqlite.Connection

    async def save_install(self, install: InstallRecord) -> None:
        await self._writer.write(
            (
                f"INSERT INTO installs ({INSTALL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {REINSTALL}",
                install_params(install),
            ),
            urgent=True,
        )

    async def find_install(self, platform: str, *, enterprise_id: str, team_id: str) -> InstallRecord | None:
        row = await fetch_one(self._read, FIND_INSTALL, (platform, team_id, enterprise_id))
        return None if row is None else as_install(row)

    async def installs(self, platform: str) -> list[InstallRecord]:
        rows = await fetch_all(
            self._read,
            f"SELECT {INSTALL_COLUMNS} FROM installs WHERE platform = ? ORDER BY installed_at, enterprise_id, team_id",
            (platform,),
        )
        return [as_install(row) for row in rows]

    async def delete_install(self, platform: str, key: WorkspaceKey) -> bool:
        rows = await self._writer.statement(
            "DELETE FROM installs WHERE platform = ? AND enterprise_id = ? AND team_id = ? RETURNING team_id",
            (platform, key.enterprise_id, key.team_id),
        )
        return bool(rows)

    async def issue_install_state(self, state: str, *, now: datetime, expires_at: datetime) -> None:
        await self._writer.write(
            ("DELETE FROM install_states WHERE expires_at <= ?", (ts(now),)),
            ("INSERT INTO install_states (state, expires_at) VALUES (?, ?)", (state, ts(expires_at))),
            urgent=True,
        )

    async def consume_install_state(self, state: str, *, now: datetime) -> bool:
        rows = await self._writer.statement("DELETE FROM install_states WHERE state = ? RETURNING expires_at", (state,))
        return bool(rows) and float(rows[0]["expires_at"]) > ts(now)

    async def note_channel_workspace(self, platform: str, channel_id: str, key: WorkspaceKey) -> None:
        await self._writer.write(
            (
                "INSERT INTO channel_workspaces (platform, channel_id, enterprise_id, team_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (platform, channel_id) DO UPDATE SET enterprise_id = excluded.enterprise_id, "
                "team_id = excluded.team_id",
                (platform, channel_id, key.enterprise_id, key.team_id),
            ),
            urgent=True,
        )

    async def channel_workspace(self, platform: str, channel_id: str) -> WorkspaceKey | None:
        row = await fetch_one(
            self._read,
            "SELECT enterprise_id, team_id FROM channel_workspaces WHERE platform = ? AND channel_id = ?",
            (platform, channel_id),
        )
        return None if row is None else WorkspaceKey(enterprise_id=row["enterprise_id"], team_id=row["team_id"])


def install_params(install: InstallRecord) -> tuple[object, ...]:
    """The values of :data:`INSTALL_COLUMNS`, in order (both stores write them alike)."""
    return (
        install.platform,
        install.enterprise_id,
        install.team_id,
        int(install.org_wide),
        install.app_id,
        install.bot_id,
        install.bot_user_id,
        install.bot_token,
        install.scopes,
        install.installed_by,
        ts(install.installed_at),
        install.team_name,
        install.enterprise_name,
    )


def as_install(row: Any) -> InstallRecord:
    """A row of :data:`INSTALL_COLUMNS` (from either store) as the record."""
    return InstallRecord(
        platform=row["platform"],
        enterprise_id=row["enterprise_id"],
        team_id=row["team_id"],
        org_wide=bool(row["org_wide"]),
        app_id=row["app_id"],
        bot_id=row["bot_id"],
        bot_user_id=row["bot_user_id"],
        bot_token=row["bot_token"],
        scopes=row["scopes"],
        installed_by=row["installed_by"],
        installed_at=dt(row["installed_at"]),
        team_name=row["team_name"],
        enterprise_name=row["enterprise_name"],
    )
