"""Per-client rate limits: a token bucket per client address."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``rate_per_minute`` actions a minute per key, with bursts of up to ``burst``."""

    def __init__(
        self, *, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000
    ) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def allow(self, key: str) -> bool:
        now = self._clock()
        tokens, at = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _prune(self, now: float) -> None:
        # Buckets that have refilled hold nothing a new bucket would not: forget them.
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self._rate >= self._burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()
