"""Gateway events and back-filled thread messages to the engine, held until stored.

A failed store is never taken as seen (the rule every adapter keeps; see docs/architecture.md).
The gateway cannot be asked to send an event again, so the adapter holds on to it: the event's
handler task hands it to the engine again, with growing pauses, for up to ``store_retry_budget``
seconds (Slack's own redelivery window is about as long). Meanwhile the task counts as in flight,
so a store that keeps failing fills the in-flight bound and reading pauses: later events wait at
Discord instead of in memory. The first failure is logged as a warning with its traceback; an
event still not stored when the budget runs out, or at stop, is logged as an error naming it; the
back-fill (after a restart, or a gateway session that could not resume) reads its thread again,
which recovers replies and edits. During a back-fill a message is handed over once: one that is
not stored is left for the next back-fill, and the thread's error says how many were.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import discord

from adapters.discord.client import PopupClient
from adapters.discord.mapping import PLATFORM, reply_from_message
from adapters.discord.posting import NETWORK_ERRORS, snowflake
from sessions.errors import DeliveryError, NotStored
from sessions.model import MessageEvent, ReplyEdited, ThreadRef
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

KNOWN_THREAD_AGE = timedelta(days=2)  # threads back-filled again after a new gateway session
STOP_GRACE = 10.0  # seconds stop() waits for the engine to finish events already handed to it
STORE_RETRY_FIRST = 0.5  # seconds before an event the engine failed to store is handed over again
STORE_RETRY_MAX = 30.0  # the pause between attempts doubles up to this
STORE_RETRY_BUDGET = 300.0  # seconds an event is held for the engine before it is given up


class DiscordInbound:
    """The inbound side of the adapter: the engine it hands events to, the engine calls in flight
    (commands' too, see :meth:`tracked`) that :meth:`stop` waits for, and the threads it back-fills.

    ``require_client`` returns the started client (else raises :class:`DeliveryError`).
    ``store_retry_first`` and ``store_retry_budget``: how an event the engine failed to store is
    held and handed over again (see the module's docstring).
    """

    def __init__(
        self,
        *,
        require_client: Callable[[], PopupClient],
        backfill_limit: int,
        store_retry_first: float = STORE_RETRY_FIRST,
        store_retry_budget: float = STORE_RETRY_BUDGET,
    ) -> None:
        if not 0 < store_retry_first <= store_retry_budget:
            raise ValueError(
                f"need 0 < store_retry_first <= store_retry_budget, not {store_retry_first}, {store_retry_budget}"
            )
        self._require_client = require_client
        self._backfill_limit = backfill_limit
        self._store_retry_first = store_retry_first
        self._store_retry_budget = store_retry_budget
        self._handler: EventHandler | None = None
        self._stopping = asyncio.Event()  # wakes events held for a retry: stop gives them up
        self._inflight: set[asyncio.Future[None]] = set()  # engine calls not yet returned
        self._background: set[asyncio.Task[None]] = set()  # our own tasks, cancelled on stop
        self._known_threads: dict[str, ThreadRef] = {}  # back-filled again after a fresh READY

    @property
    def handler(self) -> EventHandler | None:
        """The engine while started; None once stopping."""
        return self._handler

    def start(self, handler: EventHandler) -> None:
        self._handler = handler
        self._stopping.clear()

    async def stop(self) -> None:
        """Drop events from now on; let the engine calls in flight finish (for up to ``STOP_GRACE``)."""
        self._handler = None  # from here on new events are dropped; a later start back-fills them
        self._stopping.set()
        for task in list(self._background):
            task.cancel()
        current = asyncio.current_task()
        pending: list[asyncio.Future[Any]] = [*self._inflight, *(t for t in self._background if t is not current)]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            if late:
                _log.warning("%d Discord event handler(s) still running at stop", len(late))

    def tracked(self) -> _Tracked:
        """Marks an engine call as in flight for as long as the ``with`` block runs."""
        return _Tracked(self._inflight)

    def remember(self, thread: ThreadRef) -> None:
        """A thread to back-fill again after a new gateway session (one the poster just opened)."""
        self._known_threads[thread.thread_id] = thread

    async def deliver(self, event: MessageEvent) -> None:
        """Hand a gateway event to the engine; return once it is stored, or given up (and logged)."""
        handler = self._handler
        if handler is None:
            return
        with self.tracked():
            await self._hold_until_stored(handler, event)

    async def _hold_until_stored(self, handler: EventHandler, event: MessageEvent) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._store_retry_budget
        pause = self._store_retry_first
        attempt = 1
        while True:
            try:
                await _store(handler, event)
            except NotStored as error:
                failure = error.__cause__
            else:
                if attempt > 1:
                    _log.info("%s stored on attempt %d", _describe(event), attempt)
                return
            if attempt == 1:
                _log.warning("%s not stored; handing it over again for up to %g s",
                             _describe(event), self._store_retry_budget, exc_info=failure)
            else:
                _log.debug("%s not stored on attempt %d: %r", _describe(event), attempt, failure)
            left = deadline - loop.time()
            if self._handler is handler and left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(pause, left))
            if self._handler is not handler or left <= 0:
                why = "the adapter stopped" if self._handler is not handler else f"{attempt} attempts"
                _log.error("%s was not stored (given up after %s: %r); the next back-fill of its thread "
                           "(after a restart, or a gateway session that could not resume) recovers it if it "
                           "is a reply or an edit; a reaction or a deletion is lost",
                           _describe(event), why, failure)
                return
            pause = min(pause * 2, STORE_RETRY_MAX)
            attempt += 1

    def new_gateway_session(self) -> None:
        """Called on a READY after the first: back-fill the known threads (in the background)."""
        # A READY after the first means a new gateway session (the old one could not resume):
        # Discord does not replay what happened in between, so read it from the threads.
        # Only threads young enough to belong to a running popup day; older ones are forgotten
        # (a thread started from a message carries that message's creation time in its id).
        horizon = discord.utils.utcnow() - KNOWN_THREAD_AGE
        for thread_id in [t for t in self._known_threads if discord.utils.snowflake_time(int(t)) < horizon]:
            del self._known_threads[thread_id]
        threads = list(self._known_threads.values())
        if threads:
            _log.info("new gateway session: back-filling %d thread(s)", len(threads))
            task = asyncio.create_task(self.backfill(threads), name="discord-backfill")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        """Forward every member message in ``threads`` (the engine ignores ones it already has).

        Called by the engine after a fresh start for the open prompt threads on Discord; called by
        the adapter itself after a later READY (a gateway session that could not be resumed).
        """
        for thread in threads:
            if thread.channel.platform == PLATFORM and thread.thread_id.isdigit():
                self._known_threads[thread.thread_id] = thread
        for thread in threads:
            if thread.channel.platform != PLATFORM:
                continue
            try:
                forwarded = await self._backfill_thread(thread)
            except (DeliveryError, *NETWORK_ERRORS) as exc:
                _log.warning("could not back-fill thread %s: %s", thread.thread_id, exc)
            else:
                _log.info("back-filled thread %s: %d message(s) forwarded", thread.thread_id, forwarded)

    async def _backfill_thread(self, thread: ThreadRef) -> int:
        client = self._require_client()
        thread_id = snowflake(thread.thread_id)
        channel = client.get_channel(thread_id) or await client.fetch_channel(thread_id)
        if not isinstance(channel, discord.Thread):
            raise DeliveryError(f"channel {thread_id} is not a thread")
        forwarded = 0
        unstored: list[NotStored] = []
        async for message in channel.history(limit=self._backfill_limit, oldest_first=True):
            event = reply_from_message(message)
            if event is None:
                continue
            handler = self._handler
            if handler is None:
                break  # stopped: the next start back-fills again
            events: list[MessageEvent] = [event]
            if message.edited_at is not None:
                events.append(
                    ReplyEdited(message=event.message, text=event.text, at=message.edited_at, thread=event.thread)
                )
            with self.tracked():
                for each in events:
                    try:
                        await _store(handler, each)
                    except NotStored as error:
                        unstored.append(error)
            forwarded += 1
        if unstored:
            # The messages are still at Discord: the next back-fill of this thread hands them over again.
            _log.error("back-fill of thread %s: %d event(s) not stored (first: %r); the next back-fill "
                       "reads them again", thread.thread_id, len(unstored), unstored[0].__cause__,
                       exc_info=unstored[0].__cause__)
        return forwarded


async def _store(handler: EventHandler, event: MessageEvent) -> None:
    """``handler.on_event``, with any failure as :class:`NotStored` (the engine's error as its cause)."""
    try:
        await handler.on_event(event)
    except Exception as error:
        raise NotStored(event.delivery_id or event.message.message_id) from error


def _describe(event: MessageEvent) -> str:
    message = event.message
    return f"{type(event).__name__} of message {message.message_id} in channel {message.channel.channel_id}"


class _Tracked:
    """Marks one engine call as in flight, so ``stop`` can wait for exactly that call (not for
    the whole task it runs in, which may be the engine's own)."""

    def __init__(self, calls: set[asyncio.Future[None]]) -> None:
        self._calls = calls
        self._done: asyncio.Future[None] | None = None

    def __enter__(self) -> None:
        self._done = asyncio.get_running_loop().create_future()
        self._calls.add(self._done)

    def __exit__(self, *exc_info: object) -> None:
        if self._done is not None:
            self._done.set_result(None)
            self._calls.discard(self._done)
