"""The Slack adapter: slack-bolt's ``AsyncApp`` over Socket Mode or the HTTP Events API.

It shares the engine's event loop. Inbound, bolt routes slash commands and events to two
listeners, which map payloads to neutral events (:mod:`adapters.slack.mapping`) and hand them
to the engine: :class:`~adapters.slack.commands.SlackCommands` and
:class:`~adapters.slack.inbound.SlackInbound`. Over HTTP, event callbacks reach the event listener
straight from the :class:`~adapters.slack.http_server.EventsServer` once their signature is
checked, without bolt's routing (the same code, a fraction of the cost). Outbound, the engine's
:class:`~sessions.ports.ChatPort` calls go to :class:`~adapters.slack.client.SlackPoster`.

Acknowledgement, which Slack wants within 3 s:

* events are acknowledged only once the engine has made them durable (see
  :mod:`adapters.slack.inbound`): "acknowledged" always means "stored".
* slash commands are acknowledged at once; the engine's answer follows through ``response_url``
  (see :mod:`adapters.slack.commands`).

Only our installations are served (:mod:`adapters.slack.workspaces`): the workspace of
``SLACK_BOT_TOKEN``, and with ``[slack] client_id`` those installed through Slack's OAuth flow
(:mod:`adapters.slack.oauth`, kept in Popup's database). A request for another workspace or app,
however well signed, is acknowledged (so Slack neither retries it nor counts it as our endpoint
failing) and dropped, with a log line at most once a minute. Bolt checks it for everything it
routes (commands, interactive payloads, and events in Socket Mode) in a middleware before its own
authorization; the event listener checks it too, for the HTTP fast path that skips bolt. Each
workspace's requests and posts use its own token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import SlackPoster, identify, make_clients
from adapters.slack.commands import SlackCommands
from adapters.slack.connections import HttpLimits
from adapters.slack.failures import report_failure
from adapters.slack.http_server import EventsServer
from adapters.slack.inbound import SlackInbound
from adapters.slack.install_store import SlackInstallationStore, SlackStateStore
from adapters.slack.mapping import PLATFORM
from adapters.slack.oauth import STATE_SECONDS, InstallPages, PageHandler
from adapters.slack.pacing import ChannelPacer
from adapters.slack.refusals import RefusalLog
from adapters.slack.settings import SlackSettings
from adapters.slack.tokens import TokenSealer
from adapters.slack.workspaces import Workspace, Workspaces
from sessions.errors import ConfigError, NotStored, PopupError
from sessions.installs import InstallStore
from sessions.model import ChannelRef, Message, Posted, ThreadRef
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

_ANY = re.compile(".*")
_NO_INSTALLATION = frozenset({"url_verification", "ssl_check"})  # Slack checking the endpoint: for no workspace
_NOT_HERE = "This Popup serves another Slack workspace; it takes no commands from this one."


class SlackAdapter:
    """The Slack :class:`~adapters.base.Adapter`.

    ``installs`` is the database's :class:`~sessions.installs.InstallStore`, needed with
    ``[slack] client_id`` (OAuth installs); ``install_pages_here`` serves the install flow's pages
    on the Slack HTTP endpoint (``bot/app.py`` passes False when the web server serves them,
    from :meth:`install_pages`).
    ``post_interval`` paces posts per channel (Slack allows about one a second; tests pass 0).
    ``ack_budget`` bounds how long an event request waits for the engine before it is answered
    with a 500 (Slack then sends it again). ``connect_timeout`` bounds the Socket Mode connect, which bolt would
    otherwise retry forever. ``http_limits`` bounds what unproven HTTP clients may hold.
    """

    def __init__(
        self,
        settings: SlackSettings,
        *,
        installs: InstallStore | None = None,
        install_pages_here: bool = True,
        post_interval: float = 1.0,
        ack_budget: float = 2.5,
        connect_timeout: float = 20.0,
        socket_ping_interval: float = 10.0,
        http_limits: HttpLimits = HttpLimits(),  # noqa: B008 - frozen, so one shared default is safe
    ) -> None:
        _check(settings, installs=installs, install_pages_here=install_pages_here)
        self._settings = settings
        self._connect_timeout = connect_timeout
        self._ping_interval = socket_ping_interval
        self._http_limits = http_limits
        # No token of its own: bolt's routing, the Socket Mode connection and the install flow's
        # oauth.v2.access name theirs (an app token, a client secret, a workspace's bot token).
        self._api = AsyncWebClient(base_url=settings.api_base_url) if settings.api_base_url else AsyncWebClient()
        self._installations: SlackInstallationStore | None = None
        self._pages: InstallPages | None = None
        if settings.installs and installs is not None:
            try:
                sealer = TokenSealer.from_setting(settings.store_tokens, settings.token_key)
            except ValueError as error:
                raise ConfigError(f"slack: {error}") from None
            self._installations = SlackInstallationStore(
                installs, sealer, changed=lambda key: self._workspaces.changed(key)
            )
            states = SlackStateStore(installs, expiration_seconds=STATE_SECONDS)
            self._pages = InstallPages(settings, installations=self._installations, states=states, client=self._api)
        self._workspaces = Workspaces(
            base_url=settings.api_base_url,
            installs=self._installations,
            store=installs if self._installations is not None else None,
        )
        self._pages_here = install_pages_here
        self._poster = SlackPoster(workspaces=self._workspaces, pacer=ChannelPacer(post_interval))
        self._handler: EventHandler | None = None
        self._commands = SlackCommands(
            workspaces=self._workspaces, ours=self._ours, handler=lambda: self._handler, spawn=self._spawn
        )
        self._inbound = SlackInbound(
            poster=self._poster,
            workspaces=self._workspaces,
            handler=lambda: self._handler,
            ours=self._ours,
            spawn=self._spawn,
            ack_budget=ack_budget,
        )
        self._app: AsyncApp | None = None
        self._server: EventsServer | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
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
        await self._inbound.backfill(threads)

    # -- life cycle -----------------------------------------------------------------------------

    def install_pages(self) -> dict[str, PageHandler]:
        """The install flow's GET routes (path → handler), for the web server to serve; {} without
        OAuth installs."""
        return self._pages.routes() if self._pages is not None else {}

    @property
    def http_port(self) -> int | None:
        """The port the HTTP endpoint listens on (useful with ``port = 0``); None in Socket Mode."""
        return self._server.port if self._server is not None else None

    async def start(self, handler: EventHandler) -> None:
        if self._app is not None:
            raise PopupError("slack: the adapter is already started")
        settings = self._settings
        if settings.bot_token:
            clients = make_clients(token=settings.bot_token, base_url=settings.api_base_url)
            identity = await identify(clients[1])
            self._workspaces.single = self._workspaces.build(identity, settings.bot_token, clients=clients)
        if self._installations is not None:
            await self._installations.reseal()
        self._started = True
        self._handler = handler
        http = settings.mode == "http"
        workspaces = self._workspaces

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult | None:
            # bolt's per-request token: the workspace's (our listeners answer by response_url and
            # post through SlackPoster, but bolt's own middleware reads who our bot is there).
            workspace = await workspaces.find(enterprise_id=enterprise_id or "", team_id=team_id or "")
            if workspace is None:
                return None
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                bot_token=workspace.token,
                bot_user_id=workspace.identity.user_id,
                bot_id=workspace.identity.bot_id,
            )

        app = AsyncApp(
            client=self._api,
            signing_secret=settings.signing_secret if http else "unused-in-socket-mode",
            # Socket Mode traffic is authenticated by the app token; no signatures to check.
            request_verification_enabled=http,
            # Run listeners before answering, so an event is acknowledged only once stored.
            process_before_response=True,
            logger=_bolt_logger(),
            name="popup",
            before_authorize=self._only_ours,  # strangers are dropped before any look-up of theirs
            authorize=authorize,  # type: ignore[arg-type]  # bolt's hint omits the None it handles
        )
        app.command(_ANY)(self._commands.on_command)
        app.event(_ANY)(self._inbound.on_event)
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
                    events=self._inbound.on_event,  # event callbacks skip bolt (see EventsServer)
                    limits=self._http_limits,
                    pages=self.install_pages() if self._pages_here else {},
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
        single = self._workspaces.single
        _log.info(
            "slack: adapter started in %s mode%s%s", settings.mode,
            f" as {single.identity.user_id}" if single is not None else "",
            "; workspaces may install it (OAuth)" if self._installations is not None else "",
        )

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
        await self._commands.close()
        self._app = None
        self._handler = None
        self._started = False

    async def _connect_socket(self, app: AsyncApp) -> None:
        # Open the connection URL ourselves: a refused app token is then one clear error instead
        # of bolt's endless "Failed to connect; Retrying…".
        try:
            response = await asyncio.wait_for(
                self._api.apps_connections_open(app_token=self._settings.app_token), self._connect_timeout
            )
        except SlackApiError as error:
            reason = error.response.get("error") or error.response.status_code
            raise ConfigError(f"slack: SLACK_APP_TOKEN was refused by Slack ({reason})") from None
        except (TimeoutError, OSError) as error:
            raise PopupError(f"slack: cannot open a Socket Mode connection ({type(error).__name__})") from None
        socket = AsyncSocketModeHandler(
            app, app_token=self._settings.app_token, web_client=self._api, ping_interval=self._ping_interval
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

    async def _ours(self, body: dict[str, Any]) -> Workspace | None:
        """The workspace ``body`` is for; None for another installation than ours (then it is
        logged, once a minute)."""
        if not self._started:
            refusal = "the adapter is not started"
        else:
            workspace, origin = await self._workspaces.of_payload(body)
            if workspace is not None:
                return workspace
            refusal = f"not this installation ({origin.describe()})"
        self._refusals.refused("not ours", "slack: refused a request (%s): %s", _kind(body), refusal)
        return None

    async def _only_ours(self, body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """bolt's middleware before its authorization: nothing for another installation reaches a listener."""
        if body.get("type") in _NO_INSTALLATION or await self._ours(body) is not None:
            await next_()
            return None
        if isinstance(body.get("command"), str):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": _NOT_HERE})
        return BoltResponse(status=200, body="")

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

    def _spawn(self, coro: Coroutine[Any, Any, None], *, report: bool = True) -> asyncio.Task[None]:
        """Run ``coro`` as a task the adapter owns (awaited or cancelled by :meth:`stop`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if report:
            task.add_done_callback(report_failure)
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


def _check(settings: SlackSettings, *, installs: InstallStore | None, install_pages_here: bool) -> None:
    """One clear line for a missing or malformed secret (never the secret itself)."""
    if settings.installs:
        if installs is None:
            raise PopupError("slack: [slack] client_id is set but no database was given for the installs")
        if not settings.client_secret:
            raise ConfigError("slack: SLACK_CLIENT_SECRET is not set (needed with [slack] client_id)")
        if settings.store_tokens == "encrypted" and not settings.token_key:
            raise ConfigError(
                'slack: POPUP_TOKEN_KEY is not set; installs\' bot tokens are encrypted with it (or set [slack] '
                'store_tokens = "plain" to keep them unencrypted in the database)'
            )
        if install_pages_here and settings.mode != "http":
            raise ConfigError(
                'slack: the install pages need a web server: [web] enabled = true, or [slack] mode = "http"'
            )
    elif not settings.bot_token:
        raise ConfigError("slack: SLACK_BOT_TOKEN is not set")
    if settings.bot_token and not settings.bot_token.startswith("xoxb-"):
        raise ConfigError("slack: SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
    if settings.mode == "http" and not settings.signing_secret.strip():
        raise ConfigError("slack: SLACK_SIGNING_SECRET is not set (needed for mode = \"http\")")
    if settings.mode == "socket":
        if not settings.app_token:
            raise ConfigError("slack: SLACK_APP_TOKEN is not set (needed for mode = \"socket\")")
        if not settings.app_token.startswith("xapp-"):
            raise ConfigError("slack: SLACK_APP_TOKEN does not look like an app token (it should start with xapp-)")
