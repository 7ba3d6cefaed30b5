"""Refusing a captured signed request sent again while its signature is still fresh.

Slack signs ``v0:{timestamp}:{body}`` and we accept a timestamp for five minutes; within those,
whoever captured a request (a log, a proxy, a shared capture) could send it again, and a replayed
``/popup start`` would start a second session. Slack itself never sends one request twice with
one signature except as a retry of an *event*, and events are deduplicated by their event id
(see :mod:`adapters.slack.adapter`); so for everything else an exact repeat of a signature is a
replay.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable


class RecentSignatures:
    """The signatures seen within the last ``window`` seconds (at most ``capacity`` of them).

    Each is remembered until its timestamp is too old to be accepted anyway, so memory follows
    the rate of signed requests, never the age of the process. Past ``capacity`` the signature
    closest to expiring is forgotten first: only Slack can produce new signatures, and 10,000
    slash commands in five minutes is far beyond any workspace.
    """

    def __init__(self, *, window: float, capacity: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._window = window
        self._capacity = capacity
        self._clock = clock
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []  # a heap: soonest to expire first

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, signature: str, timestamp: int) -> bool:
        """Remember ``signature`` (of a request stamped ``timestamp``); False if already seen."""
        now = self._clock()
        expiry, seen = self._expiry, self._seen
        while expiry and expiry[0][0] < now:
            seen.discard(heapq.heappop(expiry)[1])
        if signature in seen:
            return False
        if len(seen) >= self._capacity:
            seen.discard(heapq.heappop(expiry)[1])
        seen.add(signature)
        heapq.heappush(expiry, (timestamp + self._window, signature))
        return True
