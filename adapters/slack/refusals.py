"""Logging refused and aborted requests without letting the refused fill the log.

Anyone who can reach the HTTP endpoint can make it refuse requests, as fast as they can send
them; a line (or a traceback) per refusal would let them flood the log and bury what matters. So
each reason is logged at most once per ``period``: the first time in full, then, the next time
the period has passed, together with how many more there were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    opened: float
    unlogged: int = 0


class RefusalLog:
    """``refused(reason, message, *args)`` logs ``message`` (a %-format, with ``args``) at WARNING
    unless ``reason`` was already logged within the last ``period`` seconds; then it only counts."""

    def __init__(
        self, logger: logging.Logger, *, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._period = period
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def refused(self, reason: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        now = self._clock()
        window = self._windows.get(reason)
        if window is not None and now - window.opened < self._period:
            window.unlogged += 1
            return
        if window is not None and window.unlogged:
            message += " (and %d more like it in the last %d s)"
            args = (*args, window.unlogged, round(now - window.opened))
        if len(self._windows) > 64:  # reasons are a fixed handful; this only bounds a mistake
            self._windows.clear()
        self._windows[reason] = _Window(opened=now)
        self._logger.log(level, message, *args)
