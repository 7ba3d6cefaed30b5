"""Where the bot is installed: one Popup serving many workspaces of a platform (Slack's OAuth installs).

:class:`InstallStore` is what the database keeps for that (storage/sqlite/install_store.py implements
it on SQLite, storage/postgres/install_store.py on PostgreSQL): each installation with its bot and
its token, the one-time states of install flows under way, and which workspace each channel is in
(learned from what arrives, so any process sharing the database can post there). The records are
the store's own; the adapter maps them to and from its SDK's types and seals the token before it
gets here (the store keeps it as the opaque text it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceKey:
    """A workspace (``team_id``), or a whole org (``enterprise_id`` with ``team_id`` "") where the
    platform has org-wide installs. "" stands for what does not apply."""

    enterprise_id: str = ""
    team_id: str = ""

    def describe(self) -> str:
        """For the log: "team T1", "team T1 (enterprise E1)", "enterprise E1 (org-wide)"."""
        if not self.team_id:
            return f"enterprise {self.enterprise_id or '?'} (org-wide)"
        return f"team {self.team_id}" + (f" (enterprise {self.enterprise_id})" if self.enterprise_id else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallRecord:
    """One installation of the app: in a workspace, or (``org_wide``) in every workspace of an org."""

    platform: str
    enterprise_id: str  # "" when not on an org
    team_id: str  # "" for an org-wide install
    org_wide: bool
    app_id: str
    bot_id: str
    bot_user_id: str
    bot_token: str = field(repr=False)  # as the adapter sealed it; never shown
    scopes: str  # comma-separated, as granted
    installed_by: str  # the installing user's id
    installed_at: datetime
    team_name: str = ""
    enterprise_name: str = ""

    @property
    def key(self) -> WorkspaceKey:
        return WorkspaceKey(enterprise_id=self.enterprise_id, team_id=self.team_id)


@runtime_checkable
class InstallStore(Protocol):
    # -- installations ---------------------------------------------------------------------------
    async def save_install(self, install: InstallRecord) -> None:
        """Keep ``install``, replacing the one of the same (platform, enterprise, team)."""
        ...

    async def find_install(self, platform: str, *, enterprise_id: str, team_id: str) -> InstallRecord | None:
        """The installation serving ``team_id`` (its own install first), else the org-wide install of
        ``enterprise_id``; None when neither is installed. An empty id matches nothing."""
        ...

    async def installs(self, platform: str) -> list[InstallRecord]:
        """Every installation on ``platform`` (oldest first)."""
        ...

    async def delete_install(self, platform: str, key: WorkspaceKey) -> bool:
        """Forget the installation stored under exactly ``key``; whether there was one."""
        ...

    # -- install flows under way -------------------------------------------------------------------
    async def issue_install_state(self, state: str, *, now: datetime, expires_at: datetime) -> None:
        """Remember a one-time state handed to a browser starting an install (and drop those expired by ``now``)."""
        ...

    async def consume_install_state(self, state: str, *, now: datetime) -> bool:
        """Whether ``state`` was issued and has not expired; it is gone afterwards either way, so it
        is taken once (of two racing consumers, from any processes, one gets True)."""
        ...

    # -- which workspace a channel is in ----------------------------------------------------------
    async def note_channel_workspace(self, platform: str, channel_id: str, key: WorkspaceKey) -> None:
        """Remember (or correct) the workspace ``channel_id`` is in."""
        ...

    async def channel_workspace(self, platform: str, channel_id: str) -> WorkspaceKey | None: ...
