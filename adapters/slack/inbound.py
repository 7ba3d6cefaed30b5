"""Slack events to the engine, acknowledged only once stored; replies missed while away, caught up.

Slack wants an event acknowledged within 3 s. An event is acknowledged only once the engine has
made it durable (bolt runs with ``process_before_response=True`` for that). If the engine fails, or
has not finished within ``ack_budget`` seconds, the request fails (500) and Slack delivers the
event again; the work goes on, and the redelivery is answered from it. So "acknowledged" always
means "stored" (the rule every adapter keeps for a failed store, :class:`~sessions.errors.NotStored`;
see docs/architecture.md).

An ``app_uninstalled`` event, or ``tokens_revoked`` naming our bot, ends that installation: it is
forgotten (:meth:`~adapters.slack.workspaces.Workspaces.uninstalled`), and from then on that
workspace's requests are refused like a stranger's and its channels cannot be posted in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

from adapters.slack.client import SlackPoster
from adapters.slack.failures import report_failure
from adapters.slack.installation import origin_of
from adapters.slack.mapping import map_event, map_thread_message
from adapters.slack.names import NameCache
from adapters.slack.workspaces import Workspace, Workspaces
from sessions.errors import DeliveryError, NotStored, PopupError
from sessions.model import MessageEvent, ReplyPosted, ThreadRef
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)


class Spawn(Protocol):
    """Runs a coroutine as a task the adapter owns; ``report`` logs its failure."""

    def __call__(self, coro: Coroutine[Any, Any, None], *, report: bool = ...) -> asyncio.Task[None]: ...


class SlackInbound:
    """bolt's event listener and the HTTP server's fast path (:meth:`on_event`), and the catch-up
    on threads (:meth:`backfill`).

    ``handler`` says the engine to hand events to (None while the adapter is stopped); ``ours``
    the workspace a request is for, or None (logged) for one that is not ours.
    """

    def __init__(
        self,
        *,
        poster: SlackPoster,
        workspaces: Workspaces,
        handler: Callable[[], EventHandler | None],
        ours: Callable[[dict[str, Any]], Awaitable[Workspace | None]],
        spawn: Spawn,
        ack_budget: float,
    ) -> None:
        self._poster = poster
        self._workspaces = workspaces
        self._handler = handler
        self._ours = ours
        self._spawn = spawn
        self._ack_budget = ack_budget
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._delivered: OrderedDict[str, None] = OrderedDict()  # recent event ids, for Slack's retries

    async def on_event(self, body: dict[str, Any]) -> None:
        """Hand an ``event_callback`` body to the engine; return once it is stored, else raise
        :class:`NotStored`. bolt's event listener, and the HTTP server's fast path."""
        workspace = await self._ours(body)
        if workspace is None:
            return  # acknowledged and dropped; the fast path has no bolt middleware to do it
        kind = _event_type(body)
        if kind in _UNINSTALLS:
            await self._uninstalled(kind, body, workspace)
            return
        event = map_event(body, bot_user_id=workspace.identity.user_id)
        if event is None:
            return  # not ours (or not a reply): acknowledged and forgotten
        await self._workspaces.learn(_channel_of(body), origin_of(body), workspace)
        key = event.delivery_id
        if key is not None and key in self._delivered:
            _log.info("slack: event %s delivered again; already stored", key)
            return
        task = self._inflight.get(key) if key is not None else None
        if task is None:
            # Not reported when it fails: the failure fails the request below.
            task = self._spawn(self._deliver(event, workspace.names), report=False)
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

    async def _uninstalled(self, kind: str, body: dict[str, Any], workspace: Workspace) -> None:
        if kind == "tokens_revoked":
            tokens = body["event"].get("tokens")
            bots = tokens.get("bot") if isinstance(tokens, dict) else None
            if not isinstance(bots, list) or workspace.identity.user_id not in bots:
                return  # only user tokens, which Popup does not keep
        _log.warning("slack: %s in %s; its installation is forgotten", kind, workspace.key.describe())
        await self._workspaces.uninstalled(workspace)

    async def _deliver(self, event: MessageEvent, names: NameCache) -> None:
        handler = self._handler()
        if handler is None:
            raise PopupError("slack: event arrived while the adapter is stopped")
        if isinstance(event, ReplyPosted):
            author = event.author
            name = names.cached(author.user_id) or await names.get(author.user_id)
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
        for thread in threads:
            channel_id, _, thread_ts = thread.thread_id.partition(":")
            if not thread_ts or channel_id != thread.channel.channel_id:
                continue  # not an id this adapter made
            try:
                workspace = await self._workspaces.of_channel(channel_id)
            except DeliveryError as error:
                _log.warning("slack: cannot catch up on thread %s (%s)", thread.thread_id, error)
                continue
            count = 0
            for message in await self._poster.thread_messages(thread.channel, thread_ts):
                event = map_thread_message(channel_id, message, bot_user_id=workspace.identity.user_id)
                if event is None:
                    continue
                try:
                    await self._deliver(event, workspace.names)
                except Exception:
                    _log.exception("slack: could not catch up on a reply in thread %s", thread.thread_id)
                    continue
                count += 1
            _log.log(
                logging.INFO if count else logging.DEBUG,
                "slack: caught up on thread %s (%d replies handed on)", thread.thread_id, count,
            )


_UNINSTALLS = frozenset({"app_uninstalled", "tokens_revoked"})


def _event_type(body: dict[str, Any]) -> str:
    event = body.get("event")
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else ""


def _channel_of(body: dict[str, Any]) -> str:
    """The channel an event happened in ("" when it names none)."""
    event = body.get("event")
    if not isinstance(event, dict):
        return ""
    channel = event.get("channel")
    if not isinstance(channel, str):
        item = event.get("item")
        channel = item.get("channel") if isinstance(item, dict) else None
    return channel if isinstance(channel, str) else ""


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
