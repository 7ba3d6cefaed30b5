"""The Slack adapter: slack-bolt's ``AsyncApp`` over Socket Mode or the HTTP Events API.

It shares the engine's event loop. Inbound, bolt routes slash commands and events to two
listeners here, which map payloads to neutral events (:mod:`adapters.slack.mapping`) and hand them
to the engine. Over HTTP, event callbacks reach the event listener straight from the
:class:`~adapters.slack.http_server.EventsServer` once their signature is checked, without bolt's
routing (the same code, a fraction of the cost). Outbound, the engine's :class:`~sessions.ports.ChatPort` calls go to
:class:`~adapters.slack.client.SlackPoster`.

Acknowledgement, which Slack wants within 3 s:

* events are acknowledged only once the engine has made them durable (bolt runs with
  ``process_before_response=True`` for that). If the engine fails, or has not finished within
  ``ack_budget`` seconds, the request fails (500) and Slack delivers the event again; the work
  goes on, and the redelivery is answered from it. So "acknowledged" always means "stored"
  (the rule every adapter keeps for a failed store, :class:`~sessions.errors.NotStored`; see
  docs/architecture.md).
* slash commands are acknowledged at once; the engine's answer follows through ``response_url``.

Only our installation is served (:mod:`adapters.slack.installation`): a request for another
workspace or app, however well signed, is acknowledged (so Slack neither retries it nor counts it
as our endpoint failing) and dropped, with a log line at most once a minute. Bolt checks it for
everything it routes (commands, interactive payloads, and events in Socket Mode) in a global
middleware; the event listener checks it too, for the HTTP fast path that skips bolt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from adapters.slack.client import NameCache, Responder, SlackPoster, make_clients
from adapters.slack.connections import HttpLimits
from adapters.slack.http_server import EventsServer
from adapters.slack.installation import Installation
from adapters.slack.mapping import PLATFORM, map_command, map_event, map_thread_message
from adapters.slack.pacing import ChannelPacer
from adapters.slack.refusals import RefusalLog
from adapters.slack.render import escape
from adapters.slack.settings import SlackSettings
from sessions.errors import CommandError, ConfigError, NotStored, PopupError
from sessions.model import (
    ChannelRef,
    CommandInvoked,
    CommandReply,
    Message,
    MessageEvent,
    Posted,
    ReplyPosted,
    ThreadRef,
)
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

_ANY = re.compile(".*")
_SORRY = "Sorry, something went wrong while handling that command. Please try again in a moment."
_NOT_HERE = "This Popup serves another Slack workspace; it takes no commands from this one."


class SlackAdapter:
    """The Slack :class:`~adapters.base.Adapter`.

    ``post_interval`` paces posts per channel (Slack allows about one a second; tests pass 0).
    ``ack_budget`` bounds how long an event request waits for the engine before it is answered
    with a 500 (Slack then sends it again). ``connect_timeout`` bounds the Socket Mode connect, which bolt would
    otherwise retry forever. ``http_limits`` bounds what unproven HTTP clients may hold.
    """

    def __init__(
        self,
        settings: SlackSettings,
        *,
        post_interval: float = 1.0,
        ack_budget: float = 2.5,
        connect_timeout: float = 20.0,
        socket_ping_interval: float = 10.0,
        http_limits: HttpLimits = HttpLimits(),  # noqa: B008 - frozen, so one shared default is safe
    ) -> None:
        _check(settings)
        self._settings = settings
        self._ack_budget = ack_budget
        self._connect_timeout = connect_timeout
        self._ping_interval = socket_ping_interval
        self._http_limits = http_limits
        self._writer, self._reader = make_clients(token=settings.bot_token, base_url=settings.api_base_url)
        self._poster = SlackPoster(writer=self._writer, reader=self._reader, pacer=ChannelPacer(post_interval))
        self._names = NameCache(self._reader)
        self._responder = Responder()
        self._handler: EventHandler | None = None
        self._app: AsyncApp | None = None
        self._server: EventsServer | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._delivered: OrderedDict[str, None] = OrderedDict()  # recent event ids, for Slack's retries
        self._installation: Installation | None = None  # ours, once auth.test and bots.info said
        self._refusals = RefusalLog(_log)

    # -- ChatPort -------------------------------------------------------------------------------

    @property
    def platform(self) -> str:
        return PLATFORM

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return await self._poster.post(channel, content, key=key, thread=False)

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return await self._poster.post(channel, content, key=key, thread=True)

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        return await self._poster.find_post(channel, key)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        return await self._poster.channel_name(channel)

    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        """Hand the engine every reply in ``threads``: those posted while we were away are then
        stored too (the engine calls this when it resumes a session; the store dedupes)."""
        handler = self._handler
        if handler is None:
            return
        identity = self._poster.identity
        for thread in threads:
            channel_id, _, thread_ts = thread.thread_id.partition(":")
            if not thread_ts or channel_id != thread.channel.channel_id:
                continue  # not an id this adapter made
            count = 0
            for message in await self._poster.thread_messages(thread.channel, thread_ts):
                event = map_thread_message(channel_id, message, bot_user_id=identity.user_id if identity else None)
                if event is None:
                    continue
                try:
                    await self._deliver(event)
                except Exception:
                    _log.exception("slack: could not catch up on a reply in thread %s", thread.thread_id)
                    continue
                count += 1
            _log.log(
                logging.INFO if count else logging.DEBUG,
                "slack: caught up on thread %s (%d replies handed on)", thread.thread_id, count,
            )

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def http_port(self) -> int | None:
        """The port the HTTP endpoint listens on (useful with ``port = 0``); None in Socket Mode."""
        return self._server.port if self._server is not None else None

    async def start(self, handler: EventHandler) -> None:
        if self._app is not None:
            raise PopupError("slack: the adapter is already started")
        identity = await self._poster.identify()
        self._installation = identity.installation
        self._handler = handler
        http = self._settings.mode == "http"
        app = AsyncApp(
            client=self._reader,
            signing_secret=self._settings.signing_secret if http else "unused-in-socket-mode",
            # Socket Mode traffic is authenticated by the app token; no signatures to check.
            request_verification_enabled=http,
            # Run listeners before answering, so an event is acknowledged only once stored.
            process_before_response=True,
            logger=_bolt_logger(),
            name="popup",
        )
        app.use(self._only_ours)
        app.command(_ANY)(self._on_command)
        app.event(_ANY)(self._on_event)
        app.error(self._on_bolt_error)
        self._app = app
        try:
            if http:
                self._server = EventsServer(
                    app,
                    signing_secret=self._settings.signing_secret,
                    host=self._settings.host,
                    port=self._settings.port,
                    path=self._settings.path,
                    events=self._on_event,  # event callbacks skip bolt (see EventsServer)
                    limits=self._http_limits,
                )
                try:
                    await self._server.start()
                except OSError as error:
                    raise ConfigError(
                        f"slack: cannot listen on {self._settings.host}:{self._settings.port} "
                        f"({error.strerror or error}); check [slack] host and port"
                    ) from None
            else:
                await self._connect_socket(app)
        except BaseException:
            await self.stop()
            raise
        _log.info("slack: adapter started in %s mode as %s", self._settings.mode, identity.user_id)

    async def stop(self) -> None:
        """Stop taking events, then let the ones already taken finish (or cancel them after 10 s)."""
        server, self._server = self._server, None
        socket, self._socket = self._socket, None
        if socket is not None:
            close: Callable[[], Awaitable[None]] = socket.close_async  # untyped in bolt
            with contextlib.suppress(Exception):
                await close()
        if server is not None:
            await server.stop()
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._responder.close()
        self._app = None
        self._handler = None

    async def _connect_socket(self, app: AsyncApp) -> None:
        # Open the connection URL ourselves: a refused app token is then one clear error instead
        # of bolt's endless "Failed to connect; Retrying…".
        try:
            response = await asyncio.wait_for(
                self._reader.apps_connections_open(app_token=self._settings.app_token), self._connect_timeout
            )
        except SlackApiError as error:
            reason = error.response.get("error") or error.response.status_code
            raise ConfigError(f"slack: SLACK_APP_TOKEN was refused by Slack ({reason})") from None
        except (TimeoutError, OSError) as error:
            raise PopupError(f"slack: cannot open a Socket Mode connection ({type(error).__name__})") from None
        socket = AsyncSocketModeHandler(
            app, app_token=self._settings.app_token, web_client=self._reader, ping_interval=self._ping_interval
        )
        socket.client.wss_uri = response["url"]
        self._socket = socket
        connect: Callable[[], Awaitable[None]] = socket.connect_async  # untyped in bolt
        try:
            await asyncio.wait_for(connect(), self._connect_timeout)
        except TimeoutError:
            raise PopupError(
                f"slack: the Socket Mode websocket did not connect within {self._connect_timeout:g} s"
            ) from None

    # -- inbound ----------------------------------------------------------------------------------

    def _foreign(self, body: dict[str, Any]) -> bool:
        """Whether ``body`` is for another installation than ours (then it is logged, once a minute)."""
        installation = self._installation
        refusal = installation.refusal(body) if installation is not None else "the adapter is not started"
        if refusal:
            self._refusals.refused("not ours", "slack: refused a request (%s): %s", _kind(body), refusal)
        return bool(refusal)

    async def _only_ours(self, body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """bolt's global middleware: nothing for another installation reaches a listener."""
        if not self._foreign(body):
            await next_()
            return None
        if isinstance(body.get("command"), str):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": _NOT_HERE})
        return BoltResponse(status=200, body="")

    async def _on_command(self, body: dict[str, Any], ack: Callable[..., Awaitable[Any]], respond: Any) -> None:
        await ack()  # first, always: Slack shows the user an error after 3 s without it
        command = map_command(body, at=datetime.now(UTC))
        if command is None:
            _log.warning("slack: ignored a slash command without channel or user")
            return
        url = body.get("response_url")
        if isinstance(url, str) and url:
            respond = functools.partial(self._responder.send, url)  # one kept-alive session for all
        self._spawn(self._run_command(command, respond))

    async def _run_command(self, command: CommandInvoked, respond: Any) -> None:
        handler = self._handler
        if handler is None:
            return
        command = dataclasses.replace(command, member=await self._names.member(command.member))
        try:
            reply = await handler.on_command(command)
        except CommandError as error:
            reply = CommandReply(text=str(error), ephemeral=True)
        except Exception:
            _log.exception("slack: /popup %s failed", command.name)
            reply = CommandReply(text=_SORRY, ephemeral=True)
        try:
            await respond(
                text=escape(reply.text), response_type="ephemeral" if reply.ephemeral else "in_channel"
            )
        except Exception as error:
            _log.warning("slack: could not answer /popup %s (%s: %s)", command.name, type(error).__name__, error)

    async def _on_event(self, body: dict[str, Any]) -> None:
        """Hand an ``event_callback`` body to the engine; return once it is stored, else raise
        :class:`NotStored`. bolt's event listener, and the HTTP server's fast path."""
        if self._foreign(body):
            return  # acknowledged and dropped; the fast path has no bolt middleware to do it
        identity = self._poster.identity
        event = map_event(body, bot_user_id=identity.user_id if identity else None)
        if event is None:
            return  # not ours (or not a reply): acknowledged and forgotten
        key = event.delivery_id
        if key is not None and key in self._delivered:
            _log.info("slack: event %s delivered again; already stored", key)
            return
        task = self._inflight.get(key) if key is not None else None
        if task is None:
            # Not reported when it fails: the failure fails the request below.
            task = self._spawn(self._deliver(event), report=False)
            if key is not None:
                self._inflight[key] = task
                task.add_done_callback(functools.partial(self._settle, key))
        if await _finished_within(task, self._ack_budget):
            if not task.cancelled() and (error := task.exception()) is not None:
                raise NotStored(key) from error  # fails the request: Slack delivers the event again
        else:
            # Never acknowledge what is not yet durable: a crash now would lose it. Slack sends
            # it again, and the redelivery waits on (or finds done) the work already under way.
            task.add_done_callback(_report_failure)
            raise NotStored(key) from TimeoutError(f"not stored within {self._ack_budget:.1f} s")

    async def _on_bolt_error(self, error: Exception) -> BoltResponse:
        """bolt's error handler, for its routing and our listeners alike."""
        if isinstance(error, NotStored):
            _log.warning("slack: event %s not stored (%r); answering 500 so Slack sends it again", error.key,
                         error.__cause__)
            return BoltResponse(status=500, body="")
        # What bolt could not route is a payload of a shape it does not expect: the sender's
        # fault, so a 4xx (which Slack does not retry), logged without a traceback.
        _log.warning("slack: refused a malformed request (%s: %s)", type(error).__name__, error)
        return BoltResponse(status=400, body={"error": "malformed request"})

    async def _deliver(self, event: MessageEvent) -> None:
        handler = self._handler
        if handler is None:
            raise PopupError("slack: event arrived while the adapter is stopped")
        if isinstance(event, ReplyPosted):
            author = event.author
            name = self._names.cached(author.user_id) or await self._names.get(author.user_id)
            if name != author.display_name:
                event = dataclasses.replace(event, author=dataclasses.replace(author, display_name=name))
        await handler.on_event(event)

    def _settle(self, key: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._delivered[key] = None
            if len(self._delivered) > 4096:
                self._delivered.popitem(last=False)

    def _spawn(self, coro: Coroutine[Any, Any, None], *, report: bool = True) -> asyncio.Task[None]:
        """Run ``coro`` as a task the adapter owns (awaited or cancelled by :meth:`stop`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if report:
            task.add_done_callback(_report_failure)
        return task


class _QuietClientWarning(logging.Filter):
    """bolt warns that the token is unused whenever SLACK_BOT_TOKEN is in the environment and a
    client is given; we give the client on purpose (see :func:`make_clients`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _QuietClientWarning) for f in logger.filters):
        logger.addFilter(_QuietClientWarning())
    return logger


def _kind(body: dict[str, Any]) -> str:
    """What a request is, for the log: "slash command '/popup'", "event_callback", "block_actions"."""
    if isinstance(body.get("command"), str):
        return f"slash command {body['command'][:40]!r}"
    kind = body.get("type")
    return kind[:40] if isinstance(kind, str) else "of no type"


async def _finished_within(task: asyncio.Task[None], budget: float) -> bool:
    """Whether ``task`` is done within ``budget`` seconds (it goes on either way): what
    ``asyncio.wait({task}, timeout=budget)`` does, without its sets and per-call closures."""
    if task.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    timer = loop.call_later(budget, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def _report_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        _log.error("slack: background work failed", exc_info=error)


def _check(settings: SlackSettings) -> None:
    """One clear line for a missing or malformed secret (never the secret itself)."""
    if not settings.bot_token:
        raise ConfigError("slack: SLACK_BOT_TOKEN is not set")
    if not settings.bot_token.startswith("xoxb-"):
        raise ConfigError("slack: SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
    if settings.mode == "http" and not settings.signing_secret.strip():
        raise ConfigError("slack: SLACK_SIGNING_SECRET is not set (needed for mode = \"http\")")
    if settings.mode == "socket":
        if not settings.app_token:
            raise ConfigError("slack: SLACK_APP_TOKEN is not set (needed for mode = \"socket\")")
        if not settings.app_token.startswith("xapp-"):
            raise ConfigError("slack: SLACK_APP_TOKEN does not look like an app token (it should start with xapp-)")
