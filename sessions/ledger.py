"""The outbound ledger: the only way a post leaves Popup, and it leaves exactly once per channel.

Intent (a row per post and channel), attempt counted *before* it is made, the platform looked at
when an earlier attempt may have landed (``find_post``), post, platform id recorded. A crash or a
lost response anywhere in between is reconciled from the rows, never blindly re-posted.

A session's channels are served independently and at the same time (a bounded number per
platform at once): each channel is brought up to date through an ordered *outbox* (the opening,
then the prompts, then the recap), so a channel that fell behind (its platform was down, it joined
late) gets every post in the order the others got them, and a slow or failing channel holds no
other. Two deliveries to the same channel never overlap (a lock per channel), so a post cannot be
attempted twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sessions.locks import KeyedLocks
from sessions.model import ChannelRef, Message, Posted
from sessions.ports import Backfills, ChatPort, PacesFanOut
from sessions.records import PostRecord, SessionRecord, SessionState, ThreadTarget
from sessions.store import Store
from sessions.threads import ThreadIndex
from sessions.wakeups import Clock

_log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], None]

# Channels of one platform served at once, unless its port says otherwise (PacesFanOut). The
# adapters' clients pace each request against the platform's rate limits (and wait out a 429's
# Retry-After); this only keeps a fan-out to hundreds of channels from opening hundreds of
# requests at the same moment.
PER_PLATFORM = 25


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One post of a session's day: the same ``key`` in every channel. ``content`` is a Message, or
    a function of the channel for posts that differ per channel (the pulse)."""

    key: str
    content: Message | Callable[[ChannelRef], Message]
    prompt_id: int | None = None
    thread: bool = False

    def for_channel(self, channel: ChannelRef) -> Message:
        return self.content if isinstance(self.content, Message) else self.content(channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """Where a fan-out got to: the channels that have every post of the outbox, and the others."""

    complete: tuple[ChannelRef, ...]
    behind: tuple[ChannelRef, ...]


class Ledger:
    def __init__(
        self,
        *,
        store: Store,
        ports: Mapping[str, ChatPort],
        threads: ThreadIndex,
        clock: Clock,
        spawn: Spawn,
        per_platform: int = PER_PLATFORM,
    ) -> None:
        self._store = store
        self._ports = ports
        self._threads = threads
        self._clock = clock
        self._spawn = spawn  # for follow-up work the engine owns (and cancels on shutdown)
        self._per_platform = per_platform
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._channel_lock = KeyedLocks[tuple[int, ChannelRef]]()  # one delivery to a channel at a time

    async def deliver(
        self,
        session: SessionRecord,
        key: str,
        content: Message,
        *,
        prompt_id: int | None = None,
        thread: bool = False,
    ) -> bool:
        """Post ``content`` exactly once in each of the session's channels; True when all have it.

        A channel whose post failed is left for the caller to try again later; the channels that
        have it are not posted to again.
        """
        outgoing = Outgoing(key=key, content=content, prompt_id=prompt_id, thread=thread)
        delivery = await self.fan_out(session, [outgoing])
        return not delivery.behind

    async def fan_out(
        self, session: SessionRecord, outbox: Sequence[Outgoing], channels: Sequence[ChannelRef] | None = None
    ) -> Delivery:
        """Bring each of ``channels`` (default: the session's) up to date with ``outbox``, in its
        order, all channels at once; returns which channels have all of it."""
        targets = tuple(session.channels if channels is None else channels)
        if not targets or not outbox:
            return Delivery(complete=targets, behind=())
        done = {(p.key, p.channel) for p in await self._store.posts(session.id) if p.posted}
        marker = f"popup:{session.id}:{int(session.started_at.timestamp())}:"
        results = await asyncio.gather(
            *(self._catch_up(session, channel, outbox, done, marker) for channel in targets)
        )
        return Delivery(
            complete=tuple(c for c, ok in zip(targets, results, strict=True) if ok),
            behind=tuple(c for c, ok in zip(targets, results, strict=True) if not ok),
        )

    async def _catch_up(
        self,
        session: SessionRecord,
        channel: ChannelRef,
        outbox: Sequence[Outgoing],
        done: set[tuple[str, ChannelRef]],
        marker: str,
    ) -> bool:
        missing = [item for item in outbox if (item.key, channel) not in done]
        if not missing:
            return True
        port = self._ports.get(channel.platform)
        if port is None:
            _log.error("session %d: no adapter for %s is running", session.id, channel.platform)
            return False
        slots = self._slots.get(channel.platform)
        if slots is None:
            width = port.parallel_channels if isinstance(port, PacesFanOut) else self._per_platform
            slots = self._slots[channel.platform] = asyncio.Semaphore(width)
        async with self._channel_lock((session.id, channel)), slots:
            for item in missing:
                if not await self._post(session, port, channel, item, marker + item.key):
                    return False
        return True

    async def _post(
        self, session: SessionRecord, port: ChatPort, channel: ChannelRef, item: Outgoing, marker: str
    ) -> bool:
        record = await self._store.claim_post(session.id, item.key, channel, prompt_id=item.prompt_id)
        if record.posted:
            return True
        opening: contextlib.AbstractAsyncContextManager[None] = (
            self._threads.opening(channel.platform) if item.thread else contextlib.nullcontext()
        )
        try:
            async with opening:
                content = item.for_channel(channel)
                posted, found_again = await self._post_once(port, channel, record, marker, content, thread=item.thread)
        except Exception as exc:
            _log.warning("session %d: posting %s in %s failed: %r", session.id, item.key, channel.channel_id, exc)
            return False
        if posted.thread is not None and item.prompt_id is not None:
            self._threads.learn(
                posted.thread,
                ThreadTarget(session_id=session.id, prompt_id=item.prompt_id, session_state=SessionState.RUNNING),
            )
            if found_again and isinstance(port, Backfills):
                # Members may have answered while we did not know this thread was ours.
                self._spawn(port.backfill([posted.thread]), f"backfill-{session.id}-{item.key}")
        return True

    async def _post_once(
        self, port: ChatPort, channel: ChannelRef, record: PostRecord, marker: str, content: Message, *, thread: bool
    ) -> tuple[Posted, bool]:
        """The post, found on the platform or made now, and recorded; and whether it was found."""
        # An earlier attempt may have reached the platform before we heard back.
        posted = await port.find_post(channel, marker) if record.attempts else None
        found_again = posted is not None
        if posted is None:
            await self._store.note_attempt(record.id)
            send = port.open_thread if thread else port.post
            posted = await send(channel, content, key=marker)
        await self._store.record_posted(record.id, posted, at=self._clock())
        return posted, found_again

    async def posted_in(self, session: SessionRecord, key: str) -> set[ChannelRef]:
        """The session's channels that have the post ``key`` (recorded with its id)."""
        posted = {p.channel for p in await self._store.posts(session.id) if p.key == key and p.posted}
        return {channel for channel in session.channels if channel in posted}

    async def posted_everywhere(self, session: SessionRecord, key: str) -> bool:
        """Whether every channel of the session has the post ``key`` (recorded with its id)."""
        return len(await self.posted_in(session, key)) == len(set(session.channels))
