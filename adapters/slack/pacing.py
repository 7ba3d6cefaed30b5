"""Per-channel pacing of posts: Slack allows about one message a second per channel.

Going faster works for a moment and then earns 429s; spacing our own posts keeps a long recap
(several messages plus a file) from tripping the limit at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class ChannelPacer:
    """Lets one post at a time through per channel, at least ``interval`` seconds apart."""

    def __init__(self, interval: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = max(0.0, interval)
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, channel_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(channel_id, asyncio.Lock())
        async with lock:
            last = self._last.get(channel_id)
            if last is not None:
                wait = last + self._interval - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                yield
            finally:
                # Measured from the end of the call: a slow (or rate-limited and retried) post
                # still leaves a full interval before the next one.
                self._last[channel_id] = self._clock()
