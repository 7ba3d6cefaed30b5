"""The event loop Popup runs on: uvloop where it is installed (Linux, macOS), else asyncio's own.

Everything Popup does per message (an HTTP request in, a gateway frame, a hand-off to the database
thread) is a few turns of the event loop, and uvloop's turns are cheaper than those of asyncio's
pure-Python selector loop: `python -m bench.slack_ack` acknowledges about 10% more requests a
second on it. Nothing in Popup depends on which loop it is; ``POPUP_EVENT_LOOP=asyncio`` picks
asyncio's own, to rule the loop out when chasing a bug.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_log = logging.getLogger(__name__)

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default loop."""
    if os.environ.get("POPUP_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    factory = loop_factory()
    _log.debug("event loop: %s", "uvloop" if factory else "asyncio")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def settle_heap() -> None:
    """Once started: tune the garbage collector for serving.

    Start-up leaves a few hundred thousand long-lived objects (the SDKs' modules, classes and
    tables). Frozen, they are never scanned again, so the collections that serving triggers look
    at what serving allocates only. And each request allocates a few hundred short-lived objects
    (parsed JSON, events, futures): at the default threshold (700) the young generation is
    collected hundreds of times a second. Measured with ``python -m bench.slack_ack``: the time
    spent collecting went from about 0.25 s to 0.04 s of a 2 s run and the longest pause from
    25-35 ms to 15 ms.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(10_000, middle, oldest)
