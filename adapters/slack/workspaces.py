"""Which workspace: whose a payload is, and which token speaks in a channel.

One Popup may serve the workspace of ``SLACK_BOT_TOKEN`` (learned at start-up with ``auth.test`` and
``bots.info``) and any number installed through Slack's OAuth flow (kept in the database,
:mod:`adapters.slack.install_store`). Each is a :class:`Workspace`: its installation (whose payloads
are ours: :class:`~adapters.slack.installation.Installation`), our bot there, and Web API clients
and a ``users.info`` cache with its token.

* Inbound, a payload is ours when it names an installed team (or org, org-wide) of our app. What
  was looked up is remembered briefly (:class:`Workspaces` ``remember``/``miss`` seconds), so a
  burst costs one query, and an install or uninstall done by another process sharing the database
  is seen within those seconds (at once when done by this one).
* Outbound, a channel id alone does not say its workspace; commands and events do (they name the
  team and the channel), so each channel's workspace is remembered, in the database too, and any
  process posts there with that workspace's token. A channel never heard of is the
  ``SLACK_BOT_TOKEN`` workspace's, if there is one; otherwise it cannot be posted in
  (:class:`~sessions.errors.DeliveryError`: the engine treats it as that channel's outage), as is a
  channel of a workspace that uninstalled the app.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import BotIdentity, make_clients
from adapters.slack.install_store import SlackInstallationStore
from adapters.slack.installation import Installation, Origin, origin_of
from adapters.slack.mapping import PLATFORM
from adapters.slack.names import NameCache
from sessions.errors import DeliveryError
from sessions.installs import InstallStore, WorkspaceKey

_log = logging.getLogger(__name__)

_CHANNELS_KEPT = 8192  # channels whose workspace is remembered in memory (all of them in the database)


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """One installation of the app, ready to use: our bot there and clients with its token."""

    identity: BotIdentity
    writer: AsyncWebClient
    reader: AsyncWebClient
    names: NameCache
    token: str = field(repr=False)

    @property
    def installation(self) -> Installation:
        return self.identity.installation

    @property
    def key(self) -> WorkspaceKey:
        return self.identity.key


@dataclass(slots=True)
class _Seen:
    workspace: Workspace | None
    until: float


class Workspaces:
    """The workspaces this Popup serves (see the module docstring).

    ``installs`` and ``store`` are None when only ``SLACK_BOT_TOKEN`` is used: then nothing is
    looked up and every channel is that workspace's, as before there were installs.
    """

    def __init__(
        self,
        *,
        base_url: str,
        installs: SlackInstallationStore | None = None,
        store: InstallStore | None = None,
        remember: float = 60.0,
        miss: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url
        self._installs = installs
        self._store = store
        self._remember = remember
        self._miss = miss
        self._clock = clock
        self.single: Workspace | None = None  # SLACK_BOT_TOKEN's, once identified
        self._seen: dict[tuple[str, str], _Seen] = {}  # (enterprise, team) asked → what was found
        self._built: dict[WorkspaceKey, Workspace] = {}  # one set of clients per installation and token
        self._channels: OrderedDict[str, WorkspaceKey] = OrderedDict()

    def build(
        self, identity: BotIdentity, token: str, *, clients: tuple[AsyncWebClient, AsyncWebClient] | None = None
    ) -> Workspace:
        """A workspace for ``identity`` with clients on ``token`` (or the ``clients`` given)."""
        writer, reader = clients or make_clients(token=token, base_url=self._base_url)
        return Workspace(identity=identity, writer=writer, reader=reader, names=NameCache(reader), token=token)

    # -- inbound: whose is it --------------------------------------------------------------------

    async def of_payload(self, payload: dict[str, Any]) -> tuple[Workspace | None, Origin]:
        """The workspace ``payload`` is for, if ours (with the origin it names, for the log)."""
        origin = origin_of(payload)
        return await self.of_origin(origin), origin

    async def of_origin(self, origin: Origin) -> Workspace | None:
        workspace = await self.find(enterprise_id=origin.enterprise_id, team_id=origin.team_id)
        if workspace is None or not workspace.installation.is_ours(
            team_id=origin.team_id, enterprise_id=origin.enterprise_id, app_id=origin.app_id
        ):
            return None
        return workspace

    async def find(self, *, enterprise_id: str, team_id: str) -> Workspace | None:
        """The installation serving ``team_id`` (or its org, org-wide), whatever the app."""
        single = self.single
        if single is not None and _serves(single.installation, enterprise_id=enterprise_id, team_id=team_id):
            return single
        if self._installs is None:
            return None
        asked = (enterprise_id, team_id)
        now = self._clock()
        seen = self._seen.get(asked)
        if seen is not None and seen.until > now:
            return seen.workspace
        bot = await self._installs.bot_for(enterprise_id=enterprise_id, team_id=team_id)
        workspace = None
        if bot is not None:
            workspace = self._built.get(bot.identity.key)
            if workspace is None or workspace.token != bot.token or workspace.identity != bot.identity:
                workspace = self._built[bot.identity.key] = self.build(bot.identity, bot.token)
        if len(self._seen) > 4 * _CHANNELS_KEPT:
            self._seen = {k: v for k, v in self._seen.items() if v.until > now}
        self._seen[asked] = _Seen(workspace, now + (self._remember if workspace else self._miss))
        return workspace

    async def uninstalled(self, workspace: Workspace) -> None:
        """``workspace`` removed the app (or revoked our bot's token): forget it, everywhere."""
        if self._installs is not None:
            await self._installs.forget(workspace.key)
        self.changed(workspace.key)
        if workspace is self.single:
            _log.error("slack: the SLACK_BOT_TOKEN workspace removed the app; its requests are refused from now on")
            self.single = None

    def changed(self, key: WorkspaceKey) -> None:
        """An installation was saved or deleted here: what was remembered of it is looked up again."""
        self._seen.clear()
        self._built.pop(key, None)

    # -- outbound: which token speaks in a channel ------------------------------------------------

    async def learn(self, channel_id: str, origin: Origin, workspace: Workspace) -> None:
        """``channel_id`` is in the team ``origin`` names (a command or event came from it there)."""
        if self._store is None or not channel_id or not origin.team_id:
            return
        enterprise_id = origin.enterprise_id or workspace.identity.enterprise_id  # a command may not name it
        key = WorkspaceKey(enterprise_id=enterprise_id, team_id=origin.team_id)
        if self._channels.get(channel_id) == key:
            self._channels.move_to_end(channel_id)
            return
        await self._store.note_channel_workspace(PLATFORM, channel_id, key)
        self._remember_channel(channel_id, key)

    async def of_channel(self, channel_id: str) -> Workspace:
        """The workspace whose token speaks in ``channel_id``; DeliveryError when none can."""
        key = self._channels.get(channel_id)
        if key is None and self._store is not None:
            key = await self._store.channel_workspace(PLATFORM, channel_id)
            if key is not None:
                self._remember_channel(channel_id, key)
        if key is None:
            if self.single is not None:
                return self.single
            raise DeliveryError(f"slack: channel {channel_id} is in no workspace Popup has heard from")
        workspace = await self.find(enterprise_id=key.enterprise_id, team_id=key.team_id)
        if workspace is None:
            raise DeliveryError(f"slack: channel {channel_id} is in team {key.team_id}, where Popup is not installed")
        return workspace

    def _remember_channel(self, channel_id: str, key: WorkspaceKey) -> None:
        self._channels[channel_id] = key
        self._channels.move_to_end(channel_id)
        if len(self._channels) > _CHANNELS_KEPT:
            self._channels.popitem(last=False)


def _serves(installation: Installation, *, enterprise_id: str, team_id: str) -> bool:
    """Whether ``installation`` is the one serving that team, whichever app a payload names."""
    return installation.is_ours(team_id=team_id, enterprise_id=enterprise_id, app_id=installation.app_id)
