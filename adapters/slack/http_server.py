"""The HTTP Events API endpoint: an aiohttp server on our own event loop in front of bolt.

bolt's ``app.start()`` runs its own loop and blocks, so we serve through an ``AppRunner`` instead.
We also check each request before bolt parses it: bolt parses the body *before* verifying the
signature and answers a malformed body with a 500 and a traceback. Here an unsigned or stale
request is refused (401) without its body ever being parsed, and a signed but malformed one gets
a 400; both are logged, and the server keeps serving.

Events API callbacks (nearly all of the traffic) then take a fast path: the body parsed for the
checks goes straight to the adapter's event sink, which answers only once the event is stored
(200), or fails with :class:`NotStored` (500, so Slack delivers it again). bolt's middleware and
listener machinery would do nothing more for them than find that same sink, at several times the
cost. Slash commands, ``url_verification`` and anything else still go through bolt.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from sessions.errors import NotStored as NotStored  # re-exported: the sink contract names it

_log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 5 * 60  # Slack's rule: refuse requests signed more than five minutes ago

EventSink = Callable[[dict[str, Any]], Awaitable[None]]
"""Takes an ``event_callback`` body; returns once it is durable, or raises :class:`NotStored`."""


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
    docstring) instead of through ``app``.
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._events = events
        self._secret = signing_secret.encode()
        self._host = host
        self._port = port
        self._path = path
        self._clock = clock
        self._runner: web.BaseRunner | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int | None:
        return self._bound_port

    async def start(self) -> None:
        # aiohttp's low-level server: one endpoint needs no application, router or middlewares,
        # and no access log (a line per request would cost more than the request).
        server = web.Server(self._serve, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self._bound_port = int(addresses[0][1]) if addresses else self._port
        _log.info("slack: listening for events on http://%s:%s%s", self._host, self._bound_port, self._path)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path != self._path:
            return web.Response(status=404, text="404: Not Found")
        if request.method != "POST":
            return web.Response(status=405, text="405: Method Not Allowed", headers={"Allow": "POST"})
        return await self._handle(request)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        headers = request.headers
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        refusal = self._refusal(raw, timestamp, signature)  # always first: nothing unsigned is parsed
        if refusal:
            _log.warning("slack: refused a request from %s: %s", _peer(request), refusal)
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            body = raw.decode("utf-8")
            payload = parse_payload(body, request.content_type)
            problem = shape_problem(payload)
            if problem:
                raise ValueError(problem)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            _log.warning("slack: refused a malformed request from %s (%s)", _peer(request), error)
            return web.json_response({"error": "malformed request"}, status=400)
        sink = self._events
        if sink is not None and isinstance(payload, dict) and payload.get("type") == "event_callback":
            return await _event(sink, payload, request)
        return await self._dispatch(body, request)

    async def _dispatch(self, body: str, request: web.BaseRequest) -> web.StreamResponse:
        """Everything else (slash commands, url_verification, …) through bolt."""
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            _log.warning("slack: refused a malformed request from %s (%s)", _peer(request), error)
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

    def _refusal(self, raw: bytes, timestamp: str, signature: str) -> str:
        """Why the request is refused ("" when its signature is good and recent)."""
        if not timestamp or not signature:
            return "no signature"
        try:
            age = abs(self._clock() - int(timestamp))
        except ValueError:
            return f"unreadable timestamp {timestamp[:20]!r}"
        if age > MAX_AGE_SECONDS:
            return f"stale timestamp ({int(age)} s old)"
        # Over the raw bytes, as Slack signs them (a body that is not UTF-8 is still just refused).
        digest = hmac.digest(self._secret, b"v0:" + timestamp.encode() + b":" + raw, "sha256").hex()
        if not hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace")):
            return "bad signature"
        return ""


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
