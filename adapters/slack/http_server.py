"""The HTTP Events API endpoint: an aiohttp server on our own event loop in front of bolt.

bolt's ``app.start()`` runs its own loop and blocks, so we serve with aiohttp's low-level server
instead. We also check each request before bolt parses it: bolt parses the body *before* verifying
the signature and answers a malformed body with a 500 and a traceback. Here an unsigned or stale
request is refused (401) before its body is even read, a wrongly signed one before it is parsed,
and a signed but malformed one (however deeply nested) gets a 400; the server keeps serving, and
refusals are logged at most once per reason a minute (:mod:`adapters.slack.refusals`). What a
client may hold before it proves itself (time, connections, body size) is bounded by
:mod:`adapters.slack.connections`, and a signed request sent again is refused as a replay
(:mod:`adapters.slack.replay`), except for event callbacks, which are deduplicated by event id.

Events API callbacks (nearly all of the traffic) then take a fast path: the body parsed for the
checks goes straight to the adapter's event sink, which answers only once the event is stored
(200), or fails with :class:`NotStored` (500, so Slack delivers it again). bolt's middleware and
listener machinery would do nothing more for them than find that same sink, at several times the
cost. Slash commands, ``url_verification`` and anything else still go through bolt.

Beside the events path, the server may serve a few pages to browsers (``pages``: the OAuth install
flow's, when no web server runs): GET only, unsigned by nature, so they take no body.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.connections import Connection, ConnectionGuard, HttpLimits
from adapters.slack.refusals import RefusalLog
from adapters.slack.replay import RecentSignatures
from sessions.errors import NotStored as NotStored  # re-exported: the sink contract names it

_log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 5 * 60  # Slack's rule: refuse requests signed more than five minutes ago

EventSink = Callable[[dict[str, Any]], Awaitable[None]]
"""Takes an ``event_callback`` body; returns once it is durable, or raises :class:`NotStored`."""
Page = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def parse_payload(body: str, content_type: str) -> object:
    """The request body the way bolt reads it (JSON, or a form, or a form's JSON ``payload``)."""
    if not body:
        return {}
    if content_type == "application/json" or body.lstrip().startswith("{"):
        return json.loads(body)
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in form:
        return json.loads(form["payload"])
    return form


# Fields bolt reads while routing (building its context, matching listeners) and the types it
# assumes there; anything else in them makes bolt fail with a 500, which Slack would retry.
_ID_FIELDS = ("user", "channel", "team", "enterprise")
_STR_FIELDS = ("type", "command", "text", "response_url", "user_id", "channel_id", "team_id", "event_id")


def shape_problem(payload: object) -> str:
    """Why bolt could not route ``payload`` ("" if it can): a signed request may still be garbage."""
    if not isinstance(payload, dict):
        return f"expected a JSON object or a form, got {type(payload).__name__}"
    for where, data in (("body", payload), ("event", payload.get("event", {}))):
        if not isinstance(data, dict):
            return f"{where} is a {type(data).__name__}, not an object"
        for key in _STR_FIELDS:
            if key in data and not isinstance(data[key], str | None):
                return f"{where}.{key} is a {type(data[key]).__name__}"
        for key in _ID_FIELDS:
            if key in data and not isinstance(data[key], str | dict | None):
                return f"{where}.{key} is a {type(data[key]).__name__}"
    if "event" in payload and not isinstance(payload["event"].get("type"), str):
        return "event.type is missing"
    authorizations = payload.get("authorizations")
    if authorizations is not None and (
        not isinstance(authorizations, list) or not all(isinstance(a, dict) for a in authorizations)
    ):
        return "authorizations is not a list of objects"
    return ""


class EventsServer:
    """Serves ``app`` at ``http://host:port/path``; ``port=0`` picks a free port (see :attr:`port`).

    With ``events`` given, signed ``event_callback`` bodies go to it directly (see the module
    docstring) instead of through ``app``; ``pages`` maps other paths to GET handlers. ``limits``
    bounds unproven clients (tests shorten its timeouts); ``clock`` is the wall clock signatures
    are dated by, ``monotonic`` the one the refusal log counts minutes with.
    """

    def __init__(
        self,
        app: AsyncApp,
        *,
        signing_secret: str,
        host: str,
        port: int,
        path: str,
        events: EventSink | None = None,
        limits: HttpLimits = HttpLimits(),  # noqa: B008 - frozen, so one shared default is safe
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        pages: Mapping[str, Page] | None = None,
    ) -> None:
        self._app = app
        self._events = events
        self._pages = dict(pages or {})
        self._secret = signing_secret.encode()
        self._host = host
        self._port = port
        self._path = path
        self._limits = limits
        self._clock = clock
        self._refusals = RefusalLog(_log, clock=monotonic)
        self._guard = ConnectionGuard(limits, self._refusals)
        self._recent = RecentSignatures(window=MAX_AGE_SECONDS, clock=clock)
        self._server: web.Server | None = None
        self._listener: asyncio.Server | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int | None:
        return self._bound_port

    async def start(self) -> None:
        # aiohttp's low-level server: one endpoint needs no application, router or middlewares,
        # and no access log (a line per request would cost more than the request). No lingering
        # after an early answer: the only requests answered before their body is read are refused.
        server = web.Server(self._serve, access_log=None, lingering_time=0, logger=_ProtocolLog(self._refusals))
        try:
            listener = await asyncio.get_running_loop().create_server(
                self._guard.factory(server), self._host, self._port, backlog=128
            )
        except OSError:
            self._guard.close()
            raise
        self._server, self._listener = server, listener
        self._bound_port = int(listener.sockets[0].getsockname()[1]) if listener.sockets else self._port
        _log.info("slack: listening for events on http://%s:%s%s", self._host, self._bound_port, self._path)

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        server, self._server = self._server, None
        self._guard.close()
        if listener is not None:
            listener.close()
        if server is not None:
            await asyncio.sleep(0)  # let requests already accepted begin, as aiohttp's runner does
            server.pre_shutdown()
            await server.shutdown(60.0)
        if listener is not None:
            await listener.wait_closed()

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        connection = self._guard.reading(request)
        try:
            if request.path != self._path:
                page = self._pages.get(request.path)
                if page is None:
                    return _closing(web.Response(status=404, text="404: Not Found"))
                if request.method not in ("GET", "HEAD") or request.body_exists:
                    return _closing(web.Response(status=405, text="405: Method Not Allowed", headers={"Allow": "GET"}))
                return await page(request)
            if request.method != "POST":
                return _closing(web.Response(status=405, text="405: Method Not Allowed", headers={"Allow": "POST"}))
            return await self._handle(request, connection)
        finally:
            self._guard.answered(connection)

    async def _handle(self, request: web.BaseRequest, connection: Connection | None) -> web.StreamResponse:
        headers = request.headers
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        # Always first: nothing unsigned or stale is read, let alone parsed.
        refusal = self._stamp_refusal(timestamp, signature) or self._size_refusal(request)
        if refusal:
            return self._refuse(request, refusal)
        raw = await self._read(request)
        if not isinstance(raw, bytes):
            return raw
        refusal = self._signature_refusal(raw, timestamp, signature)
        if refusal:
            return self._refuse(request, refusal)
        self._guard.proved(connection)
        try:
            body = raw.decode("utf-8")
            payload = parse_payload(body, request.content_type)
            problem = shape_problem(payload)
            if problem:
                raise ValueError(problem)
        # RecursionError: JSON nested deeper than the parser goes is malformed like any other.
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
            self._refusals.refused(
                "malformed", "slack: refused a malformed request from %s (%s)", _peer(request), _brief(error)
            )
            return web.json_response({"error": "malformed request"}, status=400)
        sink = self._events
        if sink is not None and isinstance(payload, dict) and payload.get("type") == "event_callback":
            return await _event(sink, payload, request)
        if not self._recent.first_time(signature, int(timestamp)):
            return self._refuse(request, ("replayed", " (this exact signed request was already taken)"))
        return await self._dispatch(body, request)

    async def _read(self, request: web.BaseRequest) -> bytes | web.StreamResponse:
        """The body, or the answer to a client that did not deliver it in time (or went away)."""
        try:
            if request.content.is_eof():
                return await request.read()  # all here already (nearly always): no timer needed
            async with asyncio.timeout(self._limits.body_timeout):
                return await request.read()
        except TimeoutError:
            return self._refuse(request, ("slow body", f" (not complete within {self._limits.body_timeout:g} s)"))
        except ConnectionError:
            self._refusals.refused("aborted", "slack: a client (%s) went away while sending a request", _peer(request))
            return _closing(web.Response(status=400))  # nobody is left to read it

    async def _dispatch(self, body: str, request: web.BaseRequest) -> web.StreamResponse:
        """Everything else (slash commands, url_verification, …) through bolt."""
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
            self._refusals.refused(
                "malformed", "slack: refused a malformed request from %s (%s)", _peer(request), _brief(error)
            )
            return web.json_response({"error": "malformed request"}, status=400)
        try:
            bolt_response = await self._app.async_dispatch(bolt_request)
        except Exception:
            # bolt catches its listeners' errors; what reaches us is a payload its routing could
            # not digest. Log it and answer, so one odd request never takes the endpoint down.
            _log.exception("slack: could not dispatch a request from %s", _peer(request))
            return web.json_response({"error": "malformed request"}, status=400)
        if bolt_response.status >= 400:
            _log.warning("slack: answered %s to a request from %s", bolt_response.status, _peer(request))
        return await to_aiohttp_response(bolt_response)

    def _refuse(self, request: web.BaseRequest, refusal: tuple[str, str]) -> web.StreamResponse:
        """Answer a request refused before it proved itself, and close its connection."""
        reason, detail = refusal
        self._refusals.refused(reason, "slack: refused a request from %s: %s%s", _peer(request), reason, detail)
        status, error = _STATUS.get(reason, (401, "invalid request"))
        return _closing(web.json_response({"error": error}, status=status))

    def _stamp_refusal(self, timestamp: str, signature: str) -> tuple[str, str] | None:
        """Why the request is refused before its body is read, judging by its headers alone."""
        if not timestamp or not signature:
            return ("no signature", "")
        try:
            age = abs(self._clock() - int(timestamp))
        except ValueError:
            return ("unreadable timestamp", f" {timestamp[:20]!r}")
        if age > MAX_AGE_SECONDS:
            return ("stale timestamp", f" ({int(age)} s old)")
        return None

    def _size_refusal(self, request: web.BaseRequest) -> tuple[str, str] | None:
        length = request.content_length
        if length is None:
            if request.body_exists:  # chunked: its size known only once it is all in
                return ("no length", " (Slack always sends Content-Length)")
        elif length > self._limits.max_body:
            return ("too large", f" ({length} bytes; at most {self._limits.max_body})")
        return None

    def _signature_refusal(self, raw: bytes, timestamp: str, signature: str) -> tuple[str, str] | None:
        # Over the raw bytes, as Slack signs them (a body that is not UTF-8 is still just refused).
        digest = hmac.digest(self._secret, b"v0:" + timestamp.encode() + b":" + raw, "sha256").hex()
        if not hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace")):
            return ("bad signature", "")
        return None


_STATUS: Mapping[str, tuple[int, str]] = {
    "too large": (413, "request too large"),
    "no length": (411, "length required"),
    "slow body": (408, "request timeout"),
}


class _ProtocolLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's own log for this endpoint. A client's broken HTTP, or one that went away, is
    logged as a refusal (once a minute, one line) rather than as an error with a traceback:
    anyone can send those, as often as they like."""

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__(logging.getLogger(f"{__name__}.protocol"), {})
        self._refusals = refusals

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1] if exc_info else None
        if isinstance(error, HttpProcessingError):
            self._refusals.refused("bad HTTP", "slack: refused a request that is not valid HTTP (%s)",
                                   type(error).__name__)
        elif isinstance(error, ConnectionError):
            self._refusals.refused("aborted", "slack: a client went away mid-request (%s)", type(error).__name__)
        else:
            super().log(level, msg, *args, **kwargs)


def _closing(response: web.StreamResponse) -> web.StreamResponse:
    response.force_close()
    return response


def _brief(error: BaseException) -> str:
    return str(error)[:200] or type(error).__name__


def _peer(request: web.BaseRequest) -> str:
    return request.remote or "?"


async def _event(sink: EventSink, payload: dict[str, Any], request: web.BaseRequest) -> web.StreamResponse:
    """The fast path: acknowledged (200) once the sink has stored the event, else a 500."""
    try:
        await sink(payload)
    except NotStored as error:
        _log.warning("slack: event %s not stored (%r); answering 500 to %s so Slack sends it again",
                     error.key, error.__cause__, _peer(request))
        return web.Response(status=500)
    except Exception:
        _log.exception("slack: could not handle an event from %s; answering 500", _peer(request))
        return web.Response(status=500)
    return web.Response()
