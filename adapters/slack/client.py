"""Talking to the Slack Web API: who we are, posting (paced, split, tagged), finding posts, names.

Two ``AsyncWebClient``s share one token and base URL but differ in what they retry:

* the *writer* (chat.postMessage, file uploads) retries only 429s. A POST that died on a
  connection error may still have been posted, and re-sending it blindly could post a prompt
  twice; instead the error reaches the engine, whose outbound ledger asks :meth:`find_post`.
* the *reader* (auth.test, conversations.history, users.info, and bolt's own calls) also retries
  connection errors: reading twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.proxy_env_variable_loader import load_http_proxy_from_env
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.installation import Installation
from adapters.slack.mapping import SlackUser, command_member, thread_id, user_from_info
from adapters.slack.pacing import ChannelPacer
from adapters.slack.render import render
from sessions.errors import ConfigError, DeliveryError, PopupError
from sessions.model import ChannelRef, Member, Message, MessageRef, Posted, ThreadRef

_log = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "popup_post"
_HISTORY_PAGE = 200  # conversations.history's maximum page size
_HISTORY_PAGES = 3  # find_post runs right after a failed post, so the post is recent if it exists
_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})
_TRANSPORT_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)


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


def _reason(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error.response.status_code)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@dataclass(frozen=True, slots=True)
class _Known:
    user: SlackUser
    at: float  # when Slack said so (on the cache's clock)


class NameCache:
    """Who Slack users are, from ``users.info``: display names and admin flags, remembered
    (bounded, least recently used evicted).

    A name is used however old it is. The admin flags grant rights, so a command trusts them for
    ``rights_max_age`` seconds only and otherwise asks again (the one call refreshes the name too):
    a demoted admin loses the rights within that time. Concurrent misses for one user (a burst of
    their replies, or a reply and Slack's retry of it) share one ``users.info`` call.
    """

    def __init__(
        self,
        reader: AsyncWebClient,
        *,
        size: int = 2048,
        rights_max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._size = size
        self._rights_max_age = rights_max_age
        self._clock = clock
        self._users: OrderedDict[str, _Known] = OrderedDict()
        self._pending: dict[str, asyncio.Future[_Known | None]] = {}

    def cached(self, user_id: str) -> str | None:
        """The remembered name ("" if Slack has none for the user), or None: then :meth:`get` asks."""
        known = self._remembered(user_id)
        return known.user.name if known is not None else None

    async def get(self, user_id: str, *, fallback: str = "") -> str:
        known = self._remembered(user_id) or await self._ask(user_id)
        name = known.user.name if known is not None else ""
        return name or fallback or user_id

    async def member(self, member: Member) -> Member:
        """``member`` (who typed a command) with their name and admin flag from ``users.info``;
        not an admin when Slack cannot be asked."""
        known = self._remembered(member.user_id)
        if known is None or self._clock() - known.at > self._rights_max_age:
            known = await self._ask(member.user_id)
        return command_member(member, known.user if known is not None else None)

    def _remembered(self, user_id: str) -> _Known | None:
        known = self._users.get(user_id)
        if known is not None:
            self._users.move_to_end(user_id)
        return known

    async def _ask(self, user_id: str) -> _Known | None:
        pending = self._pending.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)  # shielded: one waiter giving up is not all
        pending = self._pending[user_id] = asyncio.get_running_loop().create_future()
        known: _Known | None = None
        try:
            known = await self._look_up(user_id)
        finally:
            del self._pending[user_id]
            pending.set_result(known)  # None if this failed or was cancelled: ask again later
        return known

    async def _look_up(self, user_id: str) -> _Known | None:
        """What ``users.info`` says, remembered; None if Slack could not be asked."""
        try:
            response = await self._reader.users_info(user=user_id)
        except _TRANSPORT_ERRORS as error:
            # Not cached: the next event tries again; meanwhile the id (or handle) stands in.
            _log.warning(
                "slack: users.info for %s failed (%s); using the id or handle, and no admin rights",
                user_id, _reason(error),
            )
            return None
        known = self._users[user_id] = _Known(user=user_from_info(response.get("user")), at=self._clock())
        self._users.move_to_end(user_id)  # a refreshed entry is the newest
        if len(self._users) > self._size:
            self._users.popitem(last=False)
        return known


class Responder:
    """Answers slash commands through their ``response_url`` over one kept-alive HTTP session.

    bolt's ``respond`` builds a webhook client, an HTTP session and a TCP (and TLS) connection for
    every answer; under load that costs more than the command itself. The message is the same
    (``text`` and ``response_type`` as JSON), and so is the proxy: the SDK's, read from the
    environment once (aiohttp's ``trust_env`` would read it, and ``~/.netrc``, on every request).
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._proxy = load_http_proxy_from_env(_log)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, response_url: str, *, text: str, response_type: str) -> None:
        """Post the answer; raises :class:`DeliveryError` if it was not taken."""
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(timeout=self._timeout)
        message = {"text": text, "response_type": response_type}
        try:
            async with session.post(response_url, json=message, proxy=self._proxy) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            raise DeliveryError(f"response_url unreachable ({_reason(error)})") from error
        if status >= 400:
            raise DeliveryError(f"response_url answered {status}")

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class SlackPoster:
    """Posts rendered messages and files, and finds earlier posts by their key."""

    def __init__(self, *, writer: AsyncWebClient, reader: AsyncWebClient, pacer: ChannelPacer) -> None:
        self._writer = writer
        self._reader = reader
        self._pacer = pacer
        self._identity: BotIdentity | None = None
        self._partial: dict[tuple[str, str], _Partial] = {}  # (channel id, key) → incomplete post

    @property
    def identity(self) -> BotIdentity | None:
        return self._identity

    async def identify(self) -> BotIdentity:
        """Call ``auth.test`` and ``bots.info`` once; a refused token is a configuration error.

        ``auth.test`` names our user, bot, team and Grid org; the app is what ``bots.info`` says
        our bot belongs to (which Slack documents as the way to tell a bot of your own app).
        Without it no request could be told to be ours, so not learning it stops the start.
        """
        if self._identity is not None:
            return self._identity
        auth = await self._ask("auth.test", self._reader.auth_test)
        bot_id = str(auth.get("bot_id") or "")
        org_wide = auth.get("is_enterprise_install") is True
        team_id = str(auth.get("team_id") or "")
        extra = {"team_id": team_id} if org_wide and team_id else {}  # an org token must name a team
        bot = (await self._ask("bots.info", self._reader.bots_info, bot=bot_id, **extra)).get("bot")
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
        self._identity = identity
        _log.info("slack: connected as bot user %s of app %s in team %s%s", identity.user_id, identity.app_id,
                  identity.team_id or "-", f" (enterprise {identity.enterprise_id})" if identity.enterprise_id else "")
        return identity

    async def _ask(self, method: str, call: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        """One start-up call to the Web API, its failures said in one line."""
        try:
            return await call(**kwargs)
        except SlackApiError as error:
            reason = _reason(error)
            if reason in _AUTH_ERRORS:
                raise ConfigError(f"slack: SLACK_BOT_TOKEN was refused by Slack ({reason})") from None
            if reason == "missing_scope":
                raise ConfigError(
                    f"slack: {method} was refused (missing_scope); the app needs the scopes in slack-manifest.yml "
                    "(reinstall it after adding them)"
                ) from None
            raise PopupError(f"slack: {method} failed ({reason})") from None
        except _TRANSPORT_ERRORS as error:
            raise PopupError(f"slack: cannot reach the Slack Web API ({_reason(error)})") from None

    async def post(self, channel: ChannelRef, content: Message, *, key: str, thread: bool) -> Posted:
        """Post ``content`` as one or more messages, then its attachments as files.

        Every message is tagged with ``key`` and its part number, and the first also with the
        number of parts. A failure of any part raises :class:`DeliveryError`; the engine then asks
        :meth:`find_post`, which reports a complete post as posted, and remembers an incomplete
        one so that the next ``post`` with that key sends only the missing parts. Nothing is ever
        posted twice, and a long recap cut short by a crash or an error is completed.
        """
        channel_id = channel.channel_id
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
                    response = await self._writer.chat_postMessage(**kwargs)
            except _TRANSPORT_ERRORS as error:
                raise DeliveryError(
                    f"slack: chat.postMessage to {channel_id} failed ({_reason(error)}), part {index + 1} "
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
                    await self._writer.files_upload_v2(
                        channel=channel_id,
                        filename=attachment.filename,
                        title=attachment.filename,
                        content=attachment.data,
                        thread_ts=first_ts if thread else None,
                    )
            except _TRANSPORT_ERRORS as error:
                _log.error("slack: uploading %r to %s failed (%s)", attachment.filename, channel_id, _reason(error))
        return _posted(channel, first_ts, thread=thread)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        """``#name`` as ``conversations.info`` tells it; None if Slack could not be asked."""
        try:
            response = await self._reader.conversations_info(channel=channel.channel_id)
        except _TRANSPORT_ERRORS as error:
            _log.info("slack: no name for channel %s (%s)", channel.channel_id, _reason(error))
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
            identity = await self.identify()
            found: dict[int, _Tagged] = {}
            cursor: str | None = None
            for _ in range(_HISTORY_PAGES):
                response = await self._reader.conversations_history(
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
        except (PopupError, *_TRANSPORT_ERRORS) as error:
            _log.warning("slack: cannot look for post %r in %s (%s)", key, channel.channel_id, _reason(error))
        return None

    async def thread_messages(self, channel: ChannelRef, thread_ts: str) -> list[dict[str, Any]]:
        """Every message of a thread (``conversations.replies``, all pages); [] if unreadable."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            while True:
                response = await self._reader.conversations_replies(
                    channel=channel.channel_id, ts=thread_ts, limit=_HISTORY_PAGE, cursor=cursor
                )
                messages.extend(m for m in response.get("messages") or [] if isinstance(m, dict))
                meta = response.get("response_metadata")
                cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
                if not cursor:
                    return messages
        except _TRANSPORT_ERRORS as error:
            _log.warning("slack: cannot read thread %s in %s (%s)", thread_ts, channel.channel_id, _reason(error))
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
