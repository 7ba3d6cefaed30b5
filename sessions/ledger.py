"""The outbound ledger: the only way a post leaves Popup, and it leaves exactly once.

Intent (a row per post and channel), attempt counted *before* it is made, the platform looked at
when an earlier attempt may have landed (``find_post``), post, platform id recorded. A crash or a
lost response anywhere in between is reconciled from the rows, never blindly re-posted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from sessions.model import ChannelRef, Message, Posted
from sessions.ports import Backfills, ChatPort
from sessions.records import PostRecord, SessionRecord, SessionState, ThreadTarget
from sessions.store import Store
from sessions.threads import ThreadIndex
from sessions.wakeups import Clock

_log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


class Ledger:
    def __init__(
        self,
        *,
        store: Store,
        ports: Mapping[str, ChatPort],
        threads: ThreadIndex,
        clock: Clock,
        spawn: Spawn,
    ) -> None:
        self._store = store
        self._ports = ports
        self._threads = threads
        self._clock = clock
        self._spawn = spawn  # for follow-up work the engine owns (and cancels on shutdown)

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
        delivered = True
        marker = f"popup:{session.id}:{int(session.started_at.timestamp())}:{key}"
        for channel in session.channels:
            port = self._ports.get(channel.platform)
            if port is None:
                _log.error("session %d: no adapter for %s is running", session.id, channel.platform)
                delivered = False
                continue
            record = await self._store.claim_post(session.id, key, channel, prompt_id=prompt_id)
            if record.posted:
                continue
            opening: contextlib.AbstractAsyncContextManager[None] = (
                self._threads.opening(channel.platform) if thread else contextlib.nullcontext()
            )
            try:
                async with opening:
                    posted, found_again = await self._post_once(port, channel, record, marker, content, thread=thread)
            except Exception as exc:
                _log.warning("session %d: posting %s in %s failed: %r", session.id, key, channel.channel_id, exc)
                delivered = False
                continue
            if posted.thread is not None and prompt_id is not None:
                self._threads.learn(
                    posted.thread,
                    ThreadTarget(session_id=session.id, prompt_id=prompt_id, session_state=SessionState.RUNNING),
                )
                if found_again and isinstance(port, Backfills):
                    # Members may have answered while we did not know this thread was ours.
                    self._spawn(port.backfill([posted.thread]), f"backfill-{session.id}-{key}")
        return delivered

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

    async def posted_everywhere(self, session: SessionRecord, key: str) -> bool:
        """Whether every channel of the session has the post ``key`` (recorded with its id)."""
        posted = {p.channel for p in await self._store.posts(session.id) if p.key == key and p.posted}
        return all(channel in posted for channel in session.channels)
