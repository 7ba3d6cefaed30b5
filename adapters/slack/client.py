"""Talking to the Slack Web API: who we are, posting (paced, split, tagged), finding posts.

Each workspace served has its own token (:mod:`adapters.slack.workspaces`); the poster asks, for
every channel, which workspace's clients speak there. Per workspace, two ``AsyncWebClient``s share
the token and base URL but differ in what they retry:

* the *writer* (chat.postMessage, file uploads) retries only 429s. A POST that died on a
  connection error may still have been posted, and re-sending it blindly could post a prompt
  twice; instead the error reaches the engine, whose outbound ledger asks :meth:`find_post`.
* the *reader* (auth.test, conversations.history, users.info, and bolt's own calls) also retries
  connection errors: reading twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.failures import TRANSPORT_ERRORS, describe
from adapters.slack.installation import Installation
from adapters.slack.mapping import thread_id
from adapters.slack.pacing import ChannelPacer
from adapters.slack.render import render
from sessions.errors import ConfigError, DeliveryError, PopupError
from sessions.installs import WorkspaceKey
from sessions.model import ChannelRef, Message, MessageRef, Posted, ThreadRef

if TYPE_CHECKING:
    from adapters.slack.workspaces import Workspaces

_log = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "popup_post"
_HISTORY_PAGE = 200  # conversations.history's maximum page size
_HISTORY_PAGES = 3  # find_post runs right after a failed post, so the post is recent if it exists
_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BotIdentity:
    """What ``auth.test`` (and ``bots.info``) say about our token: used to ignore our own messages,
    to find our posts, and to tell our installation's requests from others'."""

    user_id: str
    bot_id: str
    team_id: str
    app_id: str = ""
    enterprise_id: str = ""  # the Enterprise Grid org, if any
    org_wide: bool = False  # installed for a whole Grid org rather than one workspace

    @property
    def installation(self) -> Installation:
        return Installation(
            team_id=self.team_id, app_id=self.app_id, enterprise_id=self.enterprise_id, org_wide=self.org_wide
        )

    @property
    def key(self) -> WorkspaceKey:
        """Where the installation is kept: the team, or the org for an org-wide install."""
        return WorkspaceKey(enterprise_id=self.enterprise_id, team_id="" if self.org_wide else self.team_id)


def make_clients(*, token: str, base_url: str, timeout: int = 30) -> tuple[AsyncWebClient, AsyncWebClient]:
    """The (writer, reader) pair described in the module docstring."""
    kwargs: dict[str, Any] = {"token": token, "timeout": timeout}
    if base_url:
        kwargs["base_url"] = base_url
    writer = AsyncWebClient(**kwargs, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])
    reader = AsyncWebClient(
        **kwargs,
        retry_handlers=[AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
    )
    return writer, reader


async def identify(reader: AsyncWebClient) -> BotIdentity:
    """Call ``auth.test`` and ``bots.info`` for ``SLACK_BOT_TOKEN``; a refused token is a
    configuration error.

    ``auth.test`` names our user, bot, team and Grid org; the app is what ``bots.info`` says
    our bot belongs to (which Slack documents as the way to tell a bot of your own app).
    Without it no request could be told to be ours, so not learning it stops the start.
    (An OAuth install needs neither: ``oauth.v2.access`` names them.)
    """
    auth = await _ask("auth.test", reader.auth_test)
    bot_id = str(auth.get("bot_id") or "")
    org_wide = auth.get("is_enterprise_install") is True
    team_id = str(auth.get("team_id") or "")
    extra = {"team_id": team_id} if org_wide and team_id else {}  # an org token must name a team
    bot = (await _ask("bots.info", reader.bots_info, bot=bot_id, **extra)).get("bot")
    app_id = str(bot.get("app_id") or "") if isinstance(bot, dict) else ""
    if not app_id:
        raise PopupError(f"slack: bots.info did not say which app bot {bot_id or '?'} belongs to")
    identity = BotIdentity(
        user_id=str(auth.get("user_id") or ""),
        bot_id=bot_id,
        team_id=team_id,
        app_id=app_id,
        enterprise_id=str(auth.get("enterprise_id") or ""),
        org_wide=org_wide,
    )
    _log.info("slack: connected as bot user %s of app %s in team %s%s", identity.user_id, identity.app_id,
              identity.team_id or "-", f" (enterprise {identity.enterprise_id})" if identity.enterprise_id else "")
    return identity


async def _ask(method: str, call: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
    """One start-up call to the Web API, its failures said in one line."""
    try:
        return await call(**kwargs)
    except SlackApiError as error:
        reason = describe(error)
        if reason in _AUTH_ERRORS:
            raise ConfigError(f"slack: SLACK_BOT_TOKEN was refused by Slack ({reason})") from None
        if reason == "missing_scope":
            raise ConfigError(
                f"slack: {method} was refused (missing_scope); the app needs the scopes in slack-manifest.yml "
                "(reinstall it after adding them)"
            ) from None
        raise PopupError(f"slack: {method} failed ({reason})") from None
    except TRANSPORT_ERRORS as error:
        raise PopupError(f"slack: cannot reach the Slack Web API ({describe(error)})") from None


class SlackPoster:
    """Posts rendered messages and files, and finds earlier posts by their key, each in a channel
    with the token of the workspace it is in."""

    def __init__(self, *, workspaces: Workspaces, pacer: ChannelPacer) -> None:
        self._workspaces = workspaces
        self._pacer = pacer
        self._partial: dict[tuple[str, str], _Partial] = {}  # (channel id, key) → incomplete post

    async def post(self, channel: ChannelRef, content: Message, *, key: str, thread: bool) -> Posted:
        """Post ``content`` as one or more messages, then its attachments as files.

        Every message is tagged with ``key`` and its part number, and the first also with the
        number of parts. A failure of any part raises :class:`DeliveryError`; the engine then asks
        :meth:`find_post`, which reports a complete post as posted, and remembers an incomplete
        one so that the next ``post`` with that key sends only the missing parts. Nothing is ever
        posted twice, and a long recap cut short by a crash or an error is completed.
        """
        channel_id = channel.channel_id
        writer = (await self._workspaces.of_channel(channel_id)).writer
        partial = self._partial.pop((channel_id, key), None)
        present = partial.present if partial else frozenset()
        first_ts = partial.ts if partial else ""
        parts = render(content)
        for index, part in enumerate(parts):
            if index in present:
                continue
            payload: dict[str, Any] = {"key": key, "part": index}
            if index == 0:
                payload["parts"] = len(parts)
                if thread:
                    payload["thread"] = True
            kwargs: dict[str, Any] = {
                "channel": channel_id,
                "text": part.text,
                "blocks": list(part.blocks),
                "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": payload},
                "unfurl_links": False,
                "unfurl_media": False,
            }
            if thread and first_ts:
                kwargs["thread_ts"] = first_ts  # a long prompt continues inside its own thread
            try:
                async with self._pacer.slot(channel_id):
                    response = await writer.chat_postMessage(**kwargs)
            except TRANSPORT_ERRORS as error:
                raise DeliveryError(
                    f"slack: chat.postMessage to {channel_id} failed ({describe(error)}), part {index + 1} "
                    f"of {len(parts)}"
                ) from error
            if index == 0:
                first_ts = str(response.get("ts") or "")
                if not first_ts:
                    raise DeliveryError(f"slack: chat.postMessage to {channel_id} returned no ts")
        if partial is not None:
            _log.info("slack: completed post %r in %s (%d parts were missing)", key, channel_id,
                      len(parts) - len(present))
        # Files last: they carry no metadata, so they cannot be found again; as they follow the
        # last part, a post with a missing part has not uploaded them yet either.
        for attachment in content.attachments:
            try:
                async with self._pacer.slot(channel_id):
                    await writer.files_upload_v2(
                        channel=channel_id,
                        filename=attachment.filename,
                        title=attachment.filename,
                        content=attachment.data,
                        thread_ts=first_ts if thread else None,
                    )
            except TRANSPORT_ERRORS as error:
                _log.error("slack: uploading %r to %s failed (%s)", attachment.filename, channel_id, describe(error))
        return _posted(channel, first_ts, thread=thread)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        """``#name`` as ``conversations.info`` tells it; None if Slack could not be asked."""
        try:
            reader = (await self._workspaces.of_channel(channel.channel_id)).reader
            response = await reader.conversations_info(channel=channel.channel_id)
        except (DeliveryError, *TRANSPORT_ERRORS) as error:
            _log.info("slack: no name for channel %s (%s)", channel.channel_id, describe(error))
            return None
        info = response.get("channel")
        name = info.get("name") if isinstance(info, dict) else None
        return f"#{name}" if isinstance(name, str) and name else None

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        """Our post tagged with ``key`` in the channel's recent history, if it is complete.

        An incomplete one (a part missing) is remembered for the next :meth:`post` with this key,
        and reported as not found, so that the engine calls it.
        """
        try:
            workspace = await self._workspaces.of_channel(channel.channel_id)
            identity = workspace.identity
            found: dict[int, _Tagged] = {}
            cursor: str | None = None
            for _ in range(_HISTORY_PAGES):
                response = await workspace.reader.conversations_history(
                    channel=channel.channel_id, include_all_metadata=True, limit=_HISTORY_PAGE, cursor=cursor
                )
                for message in response.get("messages") or []:
                    tagged = _tagged(message, key, identity)
                    if tagged is not None:
                        found.setdefault(tagged.part, tagged)
                if 0 in found:
                    break  # continuations are newer than the first part: already seen
                meta = response.get("response_metadata")
                cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
                if not cursor:
                    break
            first = found.get(0)
            if first is None:
                return None
            if first.thread and first.parts > 1:
                for message in await self.thread_messages(channel, first.ts):
                    tagged = _tagged(message, key, identity)
                    if tagged is not None:
                        found.setdefault(tagged.part, tagged)
            present = frozenset(found)
            if present >= frozenset(range(first.parts)):
                return _posted(channel, first.ts, thread=first.thread)
            _log.warning("slack: post %r in %s is missing parts; the next attempt completes it", key,
                         channel.channel_id)
            self._partial[(channel.channel_id, key)] = _Partial(ts=first.ts, present=present)
        except (PopupError, *TRANSPORT_ERRORS) as error:
            _log.warning("slack: cannot look for post %r in %s (%s)", key, channel.channel_id, describe(error))
        return None

    async def thread_messages(self, channel: ChannelRef, thread_ts: str) -> list[dict[str, Any]]:
        """Every message of a thread (``conversations.replies``, all pages); [] if unreadable."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            reader = (await self._workspaces.of_channel(channel.channel_id)).reader
            while True:
                response = await reader.conversations_replies(
                    channel=channel.channel_id, ts=thread_ts, limit=_HISTORY_PAGE, cursor=cursor
                )
                messages.extend(m for m in response.get("messages") or [] if isinstance(m, dict))
                meta = response.get("response_metadata")
                cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
                if not cursor:
                    return messages
        except (DeliveryError, *TRANSPORT_ERRORS) as error:
            _log.warning("slack: cannot read thread %s in %s (%s)", thread_ts, channel.channel_id, describe(error))
            return messages


def _posted(channel: ChannelRef, ts: str, *, thread: bool) -> Posted:
    ref = MessageRef(channel=channel, message_id=ts)
    if not thread:
        return Posted(message=ref)
    return Posted(message=ref, thread=ThreadRef(channel=channel, thread_id=thread_id(channel.channel_id, ts)))


@dataclass(frozen=True, slots=True)
class _Tagged:
    """One of our messages carrying a post's key."""

    ts: str
    part: int
    parts: int  # as recorded on the first part (1 elsewhere)
    thread: bool


@dataclass(frozen=True, slots=True)
class _Partial:
    """An incomplete post found by find_post: its first message and the parts present."""

    ts: str
    present: frozenset[int]


def _tagged(message: object, key: str, identity: BotIdentity) -> _Tagged | None:
    if not isinstance(message, dict):
        return None
    ours = (identity.bot_id and message.get("bot_id") == identity.bot_id) or (
        identity.user_id and message.get("user") == identity.user_id
    )
    metadata = message.get("metadata")
    if not ours or not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    ts = message.get("ts")
    if not isinstance(payload, dict) or payload.get("key") != key or not isinstance(ts, str) or not ts:
        return None
    part, parts = payload.get("part", 0), payload.get("parts", 1)
    if not isinstance(part, int) or not isinstance(parts, int) or part < 0:
        return None
    return _Tagged(ts=ts, part=part, parts=max(parts, 1), thread=bool(payload.get("thread")))
