"""Pacing of REST requests against Discord's global rate limit: 50 requests a second per bot.

discord.py learns the per-route buckets from response headers and waits them out, but it does not
know the global limit until Discord answers 429 with ``global: true``; a fan-out to a hundred
channels (a message and a thread in each, every channel's bucket full) then goes out all at once
and most of it is refused, retried and refused again. :class:`GlobalPacer` lets the adapter's
requests out first come, first served, never more than ``limit`` in any ``period`` seconds, so the
fan-out runs at the limit instead of bouncing off it.

The default leaves Discord's limit some headroom: discord.py resends a refused request on its own
(past the pacer), and the slash-command and gateway start-up calls also count against the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

DISCORD_GLOBAL_LIMIT = 50  # requests a second for the whole bot, documented by Discord
DEFAULT_LIMIT = DISCORD_GLOBAL_LIMIT
# Channels of one fan-out served at once. Many, so that a prompt's message goes out in every
# channel before the first thread is opened: were only some channels in flight, messages and
# threads would take turns at the pacer and a channel whose message went out in the fan-out's last
# second would wait another second for its thread. A waiting channel costs a task, not a request.
FAN_OUT_CHANNELS = 250


class GlobalPacer:
    """At most ``limit`` requests in any ``period`` seconds, for all channels together, in order."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        period: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError(f"the pacer's limit must be at least 1, not {limit}")
        if period <= 0:
            raise ValueError(f"the pacer's period must be positive, not {period}")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque(maxlen=limit)  # when each of the last ``limit`` went out
        self._turn = asyncio.Lock()  # FIFO: the waiting requests go out in the order they came

    async def wait(self) -> None:
        """Return when one more request may go out now (at once while under the limit)."""
        async with self._turn:
            if len(self._sent) == self.limit:
                # A sliding window, not a refilling bucket: however Discord counts its second,
                # ``limit`` requests never fall inside one.
                delay = self._sent[0] + self.period - self._clock()
                if delay > 0:
                    await self._sleep(delay)
            self._sent.append(self._clock())
