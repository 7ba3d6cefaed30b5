"""slack-bolt's installation and OAuth state stores, kept in Popup's database.

:class:`SlackInstallationStore` is bolt's ``AsyncInstallationStore`` over the store's
:class:`~sessions.installs.InstallStore`: bolt's ``Installation``/``Bot`` become our
:class:`~sessions.installs.InstallRecord` and back, the bot token sealed on the way in and opened on
the way out (:mod:`adapters.slack.tokens`), so the database never sees it otherwise. Only bot
installs are kept: Popup asks for no user scopes, and a user token Slack might hand over is dropped.
:class:`SlackStateStore` is bolt's ``AsyncOAuthStateStore``: a state for each "Add to Slack" page,
taken once by the redirect that brings the installer back, and only before it expires.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from slack_sdk.oauth.installation_store import Bot as SdkBot
from slack_sdk.oauth.installation_store import Installation as SdkInstallation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from adapters.slack.client import BotIdentity
from adapters.slack.mapping import PLATFORM
from adapters.slack.tokens import SealError, TokenSealer
from sessions.installs import InstallRecord, InstallStore, WorkspaceKey
from sessions.wakeups import Clock, utc_now

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledBot:
    """An installation as the adapter uses it: whose bot, and its token (opened)."""

    identity: BotIdentity
    token: str = field(repr=False)


class SlackInstallationStore(AsyncInstallationStore):
    """Installations in Popup's database. ``changed`` hears of every save and delete (the adapter's
    cache of workspaces forgets what it knew of that one)."""

    def __init__(
        self,
        store: InstallStore,
        sealer: TokenSealer,
        *,
        changed: Callable[[WorkspaceKey], None] = lambda key: None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._changed = changed
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return _log

    # -- bolt's side ------------------------------------------------------------------------------

    async def async_save(self, installation: SdkInstallation) -> None:
        await self._save(installation.to_bot(), installed_by=installation.user_id or "")

    async def async_save_bot(self, bot: SdkBot) -> None:
        await self._save(bot, installed_by="")

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> SdkBot | None:
        record = await self._find(enterprise_id or "", "" if is_enterprise_install else team_id or "")
        if record is None:
            return None
        token = self._open(record)
        if token is None:
            return None
        return SdkBot(
            app_id=record.app_id,
            enterprise_id=record.enterprise_id or None,
            enterprise_name=record.enterprise_name or None,
            team_id=record.team_id or None,
            team_name=record.team_name or None,
            bot_token=token,
            bot_id=record.bot_id,
            bot_user_id=record.bot_user_id,
            bot_scopes=record.scopes,
            is_enterprise_install=record.org_wide,
            installed_at=record.installed_at.timestamp(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> SdkInstallation | None:
        if user_id:
            return None  # no user tokens are kept
        bot = await self.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if bot is None:
            return None
        return SdkInstallation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            enterprise_name=bot.enterprise_name,
            team_id=bot.team_id,
            team_name=bot.team_name,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            user_id="",
            is_enterprise_install=bot.is_enterprise_install,
            installed_at=bot.installed_at,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.forget(WorkspaceKey(enterprise_id=enterprise_id or "", team_id=team_id or ""))

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if not user_id:
            await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    # -- the adapter's side -----------------------------------------------------------------------

    async def bot_for(self, *, enterprise_id: str, team_id: str) -> InstalledBot | None:
        """The installation serving ``team_id`` (or its org, org-wide), its token opened; None if none
        is, or if its token cannot be opened (logged)."""
        record = await self._find(enterprise_id, team_id)
        if record is None:
            return None
        token = self._open(record)
        if token is None:
            return None
        identity = BotIdentity(
            user_id=record.bot_user_id,
            bot_id=record.bot_id,
            team_id=record.team_id,
            app_id=record.app_id,
            enterprise_id=record.enterprise_id,
            org_wide=record.org_wide,
        )
        return InstalledBot(identity=identity, token=token)

    async def forget(self, key: WorkspaceKey) -> bool:
        """Delete the installation under ``key`` (uninstalled, or its token revoked)."""
        deleted = await self._store.delete_install(PLATFORM, key)
        self._changed(key)
        if deleted:
            _log.info("slack: forgot the installation of %s", key.describe())
        return deleted

    async def reseal(self) -> int:
        """Seal again every token stored plain while a key is set, or under an older key (after a
        key rotation); how many were."""
        count = 0
        for record in await self._store.installs(PLATFORM):
            if not self._sealer.stale(record.bot_token):
                continue
            token = self._open(record)
            if token is None:
                continue
            await self._store.save_install(replace(record, bot_token=self._sealer.seal(token)))
            count += 1
        if count:
            _log.info("slack: sealed %d stored bot token(s) under the newest key", count)
        return count

    async def _save(self, bot: SdkBot, *, installed_by: str) -> None:
        if not bot.bot_token:
            _log.warning("slack: an install without a bot token was not kept")
            return
        org_wide = bool(bot.is_enterprise_install)
        record = InstallRecord(
            platform=PLATFORM,
            enterprise_id=bot.enterprise_id or "",
            team_id="" if org_wide else bot.team_id or "",
            org_wide=org_wide,
            app_id=bot.app_id or "",
            bot_id=bot.bot_id or "",
            bot_user_id=bot.bot_user_id or "",
            bot_token=self._sealer.seal(bot.bot_token),
            scopes=",".join(bot.bot_scopes or ()),
            installed_by=installed_by,
            installed_at=self._clock(),
            team_name=bot.team_name or "",
            enterprise_name=bot.enterprise_name or "",
        )
        await self._store.save_install(record)
        self._changed(record.key)
        _log.info("slack: installed in %s (app %s)", record.key.describe(), record.app_id)

    async def _find(self, enterprise_id: str, team_id: str) -> InstallRecord | None:
        return await self._store.find_install(PLATFORM, enterprise_id=enterprise_id, team_id=team_id)

    def _open(self, record: InstallRecord) -> str | None:
        try:
            return self._sealer.open(record.bot_token)
        except SealError as error:
            _log.error("slack: cannot use the installation of %s: %s", record.key.describe(), error)
            return None


class SlackStateStore(AsyncOAuthStateStore):
    """One-time states of install flows, in Popup's database (any process may take one)."""

    def __init__(self, store: InstallStore, *, expiration_seconds: int, clock: Clock = utc_now) -> None:
        self._store = store
        self._ttl = timedelta(seconds=expiration_seconds)
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return _log

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(32)
        now = self._clock()
        await self._store.issue_install_state(state, now=now, expires_at=now + self._ttl)
        return state

    async def async_consume(self, state: str) -> bool:
        return await self._store.consume_install_state(state, now=self._clock())
