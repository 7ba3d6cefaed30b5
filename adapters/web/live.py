"""Live pages: Server-Sent Events from one hub to every open page.

An event is encoded once and the same bytes are queued for each listener of its page, so a new
reply reaches a thousand open pages for the cost of a thousand queue puts. A listener that falls
far behind (its queue full) is dropped; its browser reconnects and reloads what it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

from aiohttp import web

_log = logging.getLogger(__name__)

_QUEUE_SIZE = 256
KEEPALIVE_SECONDS = 15.0
_CLOSED = b""


def encode(event: str, data: Any) -> bytes:
    """One SSE frame; ``data`` as JSON on one line (JSON escapes line breaks)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Hub:
    def __init__(self) -> None:
        self._listeners: defaultdict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._closed = False

    def listeners(self, topic: str) -> int:
        return len(self._listeners.get(topic, ()))

    def publish(self, topic: str, event: str, data: Any) -> None:
        listeners = self._listeners.get(topic)
        if not listeners:
            return
        frame = encode(event, data)
        for queue in list(listeners):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:
                listeners.discard(queue)  # too far behind: its stream ends, the browser reconnects
                _drain_and_close(queue)

    def close(self) -> None:
        """End every stream (shutdown)."""
        self._closed = True
        for listeners in self._listeners.values():
            for queue in listeners:
                _drain_and_close(queue)
        self._listeners.clear()

    async def stream(self, request: web.Request, topic: str, first: bytes = b"") -> web.StreamResponse:
        """Answer ``request`` with the event stream of ``topic`` until the client or the server goes."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a proxy in front must not hold the stream back
            }
        )
        if self._closed:
            response.set_status(503)
            await response.prepare(request)
            return response
        queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE_SIZE)
        self._listeners[topic].add(queue)
        try:
            await response.prepare(request)
            await response.write(b"retry: 3000\n\n" + first)
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    frame = b": keep-alive\n\n"
                if frame == _CLOSED:
                    break
                await response.write(frame)
        except ConnectionResetError:
            pass  # the page was closed
        finally:
            listeners = self._listeners.get(topic)
            if listeners is not None:
                listeners.discard(queue)
                if not listeners:
                    del self._listeners[topic]
        return response


def _drain_and_close(queue: asyncio.Queue[bytes]) -> None:
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(_CLOSED)
