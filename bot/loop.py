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
import sys
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


SWITCH_INTERVAL = 0.0005  # seconds; CPython's default is 0.005


def tune_for_serving() -> None:
    """Once started: tune the interpreter for serving many small requests.

    The garbage collector: start-up leaves a few hundred thousand long-lived objects (the SDKs'
    modules, classes and tables). Frozen, they are never scanned again, so the collections that
    serving triggers look at what serving allocates only. And each request allocates a few hundred
    short-lived objects (parsed JSON, events, futures): at the default threshold (700) the young
    generation is collected hundreds of times a second. With ``python -m bench.slack_ack``, time
    spent collecting went from about 0.25 s to 0.04 s of a 2 s run.

    The GIL's switch interval: the database threads release the GIL while SQLite works and need it
    back for every row they bind or fetch, while a busy event loop holds it for up to the whole
    interval. A shorter one lets them finish a commit sooner, and the acknowledgements waiting on
    it go out sooner: the same benchmark's p99 ranged 69-97 ms over seven runs at 5 ms, 70-79 ms at
    0.5 ms, for the same throughput.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(10_000, middle, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL)
