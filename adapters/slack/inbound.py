"""Slack events to the engine, acknowledged only once stored; replies missed while away, caught up.

Slack wants an event acknowledged within 3 s. An event is acknowledged only once the engine has
made it durable (bolt runs with ``process_before_response=True`` for that). If the engine fails, or
has not finished within ``ack_budget`` seconds, the request fails (500) and Slack delivers the
event again; the work goes on, and the redelivery is answered from it. So "acknowledged" always
means "stored" (the rule every adapter keeps for a failed store, :class:`~sessions.errors.NotStored`;
see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from adapters.slack.client import SlackPoster
from adapters.slack.failures import report_failure
from adapters.slack.mapping import map_event, map_thread_message
from adapters.slack.names import NameCache
from sessions.errors import NotStored, PopupError
from sessions.model import MessageEvent, ReplyPosted, ThreadRef
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)


class Spawn(Protocol):
    """Runs a coroutine as a task the adapter owns; ``report`` logs its failure."""

    def __call__(self, coro: Coroutine[Any, Any, None], *, report: bool = ...) -> asyncio.Task[None]: ...


class SlackInbound:
    """bolt's event listener and the HTTP server's fast path (:meth:`on_event`), and the catch-up
    on threads (:meth:`backfill`).

    ``handler`` says the engine to hand events to (None while the adapter is stopped); ``foreign``
    tells (and logs) a request for another installation than ours.
    """

    def __init__(
        self,
        *,
        poster: SlackPoster,
        names: NameCache,
        handler: Callable[[], EventHandler | None],
        foreign: Callable[[dict[str, Any]], bool],
        spawn: Spawn,
        ack_budget: float,
    ) -> None:
        self._poster = poster
        self._names = names
        self._handler = handler
        self._foreign = foreign
        self._spawn = spawn
        self._ack_budget = ack_budget
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._delivered: OrderedDict[str, None] = OrderedDict()  # recent event ids, for Slack's retries

    async def on_event(self, body: dict[str, Any]) -> None:
        """Hand an ``event_callback`` body to the engine; return once it is stored, else raise
        :class:`NotStored`. bolt's event listener, and the HTTP server's fast path."""
        if self._foreign(body):
            return  # acknowledged and dropped; the fast path has no bolt middleware to do it
        identity = self._poster.identity
        event = map_event(body, bot_user_id=identity.user_id if identity else None)
        if event is None:
            return  # not ours (or not a reply): acknowledged and forgotten
        key = event.delivery_id
        if key is not None and key in self._delivered:
            _log.info("slack: event %s delivered again; already stored", key)
            return
        task = self._inflight.get(key) if key is not None else None
        if task is None:
            # Not reported when it fails: the failure fails the request below.
            task = self._spawn(self._deliver(event), report=False)
            if key is not None:
                self._inflight[key] = task
                task.add_done_callback(functools.partial(self._settle, key))
        if await _finished_within(task, self._ack_budget):
            if not task.cancelled() and (error := task.exception()) is not None:
                raise NotStored(key) from error  # fails the request: Slack delivers the event again
        else:
            # Never acknowledge what is not yet durable: a crash now would lose it. Slack sends
            # it again, and the redelivery waits on (or finds done) the work already under way.
            task.add_done_callback(report_failure)
            raise NotStored(key) from TimeoutError(f"not stored within {self._ack_budget:.1f} s")

    async def _deliver(self, event: MessageEvent) -> None:
        handler = self._handler()
        if handler is None:
            raise PopupError("slack: event arrived while the adapter is stopped")
        if isinstance(event, ReplyPosted):
            author = event.author
            name = self._names.cached(author.user_id) or await self._names.get(author.user_id)
            if name != author.display_name:
                event = dataclasses.replace(event, author=dataclasses.replace(author, display_name=name))
        await handler.on_event(event)

    def _settle(self, key: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._delivered[key] = None
            if len(self._delivered) > 4096:
                self._delivered.popitem(last=False)


    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        """Hand the engine every reply in ``threads``: those posted while we were away are then
        stored too (the engine calls this when it resumes a session; the store dedupes)."""
        handler = self._handler()
        if handler is None:
            return
        identity = self._poster.identity
        for thread in threads:
            channel_id, _, thread_ts = thread.thread_id.partition(":")
            if not thread_ts or channel_id != thread.channel.channel_id:
                continue  # not an id this adapter made
            count = 0
            for message in await self._poster.thread_messages(thread.channel, thread_ts):
                event = map_thread_message(channel_id, message, bot_user_id=identity.user_id if identity else None)
                if event is None:
                    continue
                try:
                    await self._deliver(event)
                except Exception:
                    _log.exception("slack: could not catch up on a reply in thread %s", thread.thread_id)
                    continue
                count += 1
            _log.log(
                logging.INFO if count else logging.DEBUG,
                "slack: caught up on thread %s (%d replies handed on)", thread.thread_id, count,
            )


async def _finished_within(task: asyncio.Task[None], budget: float) -> bool:
    """Whether ``task`` is done within ``budget`` seconds (it goes on either way): what
    ``asyncio.wait({task}, timeout=budget)`` does, without its sets and per-call closures."""
    if task.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    timer = loop.call_later(budget, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()
