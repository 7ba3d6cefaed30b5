"""Bounding what a client that has not proven itself can hold: time, connections, bytes.

The Events API endpoint must be reachable by Slack, so it is reachable by anyone; until a request's
signature is checked, its sender is a stranger. aiohttp bounds a request head's size but not how
long it may take to arrive, and nothing bounds how many strangers may hold a connection open. So:

* a request head must be complete within ``header_timeout`` of its first byte (or of the
  connection's opening: Slack, and a proxy in front of us, send at once). A periodic sweep closes
  connections that are slower; a kept-alive connection with nothing sent is aiohttp's to close.
* at most ``max_unauthenticated`` connections may be open that have not yet sent a correctly
  signed request; one more closes the *oldest* of them, so strangers holding connections cannot
  lock Slack out (each new one of theirs only displaces another).
* the body (see :class:`~adapters.slack.http_server.EventsServer`) must arrive within
  ``body_timeout`` and be at most ``max_body`` bytes, and an unsigned request is refused before
  its body is read at all.

The guard sits between the listening socket and aiohttp's protocol: :meth:`ConnectionGuard.factory`
wraps each connection's protocol to watch its bytes arrive; the request handler tells the guard
when a request's head is in, when it proved itself, and when it is answered.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web

from adapters.slack.refusals import RefusalLog

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    """How much a client of the HTTP endpoint may take before it proves itself (see the module
    docstring). Slack's requests are a few kB, sent at once, and time out after 3 s on its side."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_body: int = 512 * 1024
    max_unauthenticated: int = 256


class _Phase(enum.Enum):
    WAITING = "waiting for a request head"
    READING = "reading a request body"
    HANDLING = "handling a request"


class Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol for it, with the guard watching its bytes arrive."""

    __slots__ = ("guard", "inner", "peer", "phase", "since", "stray", "transport")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self.inner = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.phase = _Phase.WAITING
        self.since: float | None = None  # when the head being waited for began (None: idle)
        self.stray = False  # bytes of a next request arrived while handling this one

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP listener's (uvloop's is no subclass)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        self.guard.opened(self)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase is _Phase.WAITING:
            if self.since is None:
                self.since = self.guard.now()
        elif self.phase is _Phase.HANDLING:
            self.stray = True
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.lost(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def cut(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # nothing of theirs is worth a graceful close


class ConnectionGuard:
    """Watches the connections of one endpoint (see the module docstring); ``refusals`` logs what
    it cuts off."""

    def __init__(self, limits: HttpLimits, refusals: RefusalLog) -> None:
        self._limits = limits
        self._refusals = refusals
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_protocol: dict[asyncio.BaseProtocol, Connection] = {}
        self._strangers: dict[Connection, None] = {}  # not yet signed; oldest first
        self._sweeper: asyncio.TimerHandle | None = None
        self.now: Callable[[], float] = time.monotonic  # the event loop's clock, once listening

    def factory(self, make: web.Server) -> Callable[[], asyncio.Protocol]:
        """The protocol factory to listen with: aiohttp's protocols, watched."""
        self._loop = asyncio.get_running_loop()
        self.now = self._loop.time
        self._schedule_sweep()
        return lambda: Connection(make(), self)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # -- the request handler's side -----------------------------------------------------------------

    def reading(self, request: web.BaseRequest) -> Connection | None:
        """The request's head is in; its body is being read (under the body timeout). Returns its
        connection, to say :meth:`proved` and :meth:`answered` of (None if it is already gone)."""
        connection = self._by_protocol.get(request.protocol)
        if connection is not None:
            connection.phase, connection.since = _Phase.READING, None
        return connection

    def proved(self, connection: Connection | None) -> None:
        """The request was correctly signed: its connection is no stranger's."""
        if connection is not None:
            self._strangers.pop(connection, None)
            connection.phase = _Phase.HANDLING

    def answered(self, connection: Connection | None) -> None:
        """The answer is on its way; the connection waits for its next request."""
        if connection is not None:
            connection.phase = _Phase.WAITING
            connection.since = self.now() if connection.stray else None
            connection.stray = False

    # -- the connections' side -----------------------------------------------------------------------

    def opened(self, connection: Connection) -> None:
        self._by_protocol[connection.inner] = connection
        connection.since = self.now()
        strangers = self._strangers
        if len(strangers) >= self._limits.max_unauthenticated:
            oldest = next(iter(strangers))
            del strangers[oldest]
            self._refusals.refused(
                "connections",
                "slack: more than %d connections have sent no signed request; closed the oldest (from %s)",
                self._limits.max_unauthenticated, oldest.peer,
            )
            oldest.cut()
        strangers[connection] = None

    def lost(self, connection: Connection) -> None:
        self._by_protocol.pop(connection.inner, None)
        self._strangers.pop(connection, None)

    def _schedule_sweep(self) -> None:
        assert self._loop is not None
        # Often enough that a slow head is cut within 1.5 header timeouts, rarely enough to cost nothing.
        interval = max(self._limits.header_timeout / 2, 0.01)
        self._sweeper = self._loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        deadline = self.now() - self._limits.header_timeout
        for connection in [c for c in self._by_protocol.values() if c.phase is _Phase.WAITING]:
            if connection.since is not None and connection.since < deadline:
                self._refusals.refused(
                    "slow head",
                    "slack: closed a connection from %s: no complete request head within %g s",
                    connection.peer, self._limits.header_timeout,
                )
                connection.cut()
        self._schedule_sweep()
