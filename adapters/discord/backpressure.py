"""Backpressure on the gateway: at most ``limit`` inbound events in flight, reading paused meanwhile.

discord.py reads and parses gateway frames without pause and runs every event handler as a task
of its own, so under a burst (a prompt lands, hundreds of members answer) the handlers pile up
faster than the engine makes them durable, each holding its parsed message. :class:`InboundGate`
counts the handler tasks not yet finished and, once ``limit`` are in flight, keeps discord.py from
reading the next frame until the count is back down to ``resume_at``. Frames wait in the socket
(and, further back, at Discord), in order: nothing is dropped or reordered, and an event is only
counted as read once its handler runs, so a RESUME after a drop replays whatever was not read.

While reading is paused, discord.py's keep-alive thread goes on sending heartbeats (it posts them
onto the loop, which is free); their ACKs queue behind the unread frames. discord.py only gives
up on a connection when it has *received* nothing for ``heartbeat_timeout`` seconds (60 by
default), which during a pause says nothing about the connection, so the gate tells the keep-alive
that the link is alive while it holds reading back (:meth:`InboundGate.wait`). Once reading
resumes, the usual checks apply again. An interaction (``/popup``) waits in line like any frame,
so a pause should stay short: with the engine keeping up it lasts milliseconds.

What this leans on inside discord.py (wired in :class:`adapters.discord.client.PopupClient`) is
listed and checked in :mod:`adapters.discord.internals`: a release that moves any of it stops the
adapter at start-up with an error naming the attribute, rather than running on unbounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 500  # ~7 KB per parsed reply waiting for the store: a few MB at most
KEEPALIVE_TICK_MAX = 5.0  # seconds between "still alive" ticks to the keep-alive while paused


class InboundGate:
    """Counts in-flight event tasks; :meth:`wait` returns when another frame may be read."""

    def __init__(
        self, limit: int = DEFAULT_MAX_IN_FLIGHT, *, resume_at: int | None = None, heartbeat_timeout: float = 60.0
    ) -> None:
        """``heartbeat_timeout`` is the client's (seconds without a frame before it reconnects): while
        paused, the keep-alive hears "alive" a few times within it."""
        if limit < 1:
            raise ValueError(f"the in-flight limit must be at least 1, not {limit}")
        if resume_at is None:
            resume_at = limit - max(1, limit // 10)  # a little slack: not one pause per frame
        if not 0 <= resume_at < limit:
            raise ValueError(f"resume_at must be in [0, {limit}), not {resume_at}")
        self.limit = limit
        self.resume_at = resume_at
        self._tick_every = min(KEEPALIVE_TICK_MAX, max(heartbeat_timeout / 4, 0.01))
        self.peak = 0  # the most events in flight at once (diagnostics and tests)
        self.pauses = 0  # how often reading was held back
        self._in_flight = 0
        self._open = asyncio.Event()
        self._open.set()
        self._closed = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def is_open(self) -> bool:
        return self._closed or self._open.is_set()

    def track(self, task: asyncio.Future[Any]) -> None:
        """Count ``task`` (an event handler just scheduled) until it is done, however it ends."""
        self._in_flight += 1
        if self._in_flight > self.peak:
            self.peak = self._in_flight
        if self._in_flight >= self.limit:
            self._open.clear()
        task.add_done_callback(self._finished)

    def _finished(self, _task: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        if self._in_flight <= self.resume_at:
            self._open.set()

    def close(self) -> None:
        """Never hold reading back again (the client is closing: let it see the socket close)."""
        self._closed = True
        self._open.set()

    async def wait(self, alive: Callable[[], None]) -> None:
        """Return once fewer than ``limit`` events are in flight (at once when they are).

        ``alive`` tells the paused connection's keep-alive that the link is alive (see
        :func:`adapters.discord.internals.keep_alive`): while we, not the link, keep frames from
        arriving, it must not take the silence for a dead connection.
        """
        if self.is_open:
            return
        self.pauses += 1
        _log.debug("%d events in flight: gateway reading paused", self._in_flight)
        while not self.is_open:
            alive()
            try:
                await asyncio.wait_for(self._open.wait(), self._tick_every)
            except TimeoutError:
                continue
        alive()
