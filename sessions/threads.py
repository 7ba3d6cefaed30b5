"""Which prompt a thread belongs to: learnt as prompts are posted, else looked up in the store."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sessions.model import ThreadRef
from sessions.records import ThreadTarget
from sessions.store import Store


class ThreadIndex:
    """Finds the prompt behind a reply's thread.

    A member can answer before the post that opened the thread has reported back to us (the
    platform showed it to them first). So while thread posts are under way on a platform, a lookup
    that finds nothing waits for them to settle, and then looks again.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[tuple[str, str], ThreadTarget] = {}
        self._opening: defaultdict[str, int] = defaultdict(int)  # thread posts under way per platform
        self._settled = asyncio.Condition()

    @asynccontextmanager
    async def opening(self, platform: str) -> AsyncIterator[None]:
        """Around a post that opens a thread on ``platform``, until its outcome is recorded."""
        self._opening[platform] += 1
        try:
            yield
        finally:
            async with self._settled:
                self._opening[platform] -= 1
                self._settled.notify_all()

    def learn(self, thread: ThreadRef, target: ThreadTarget) -> None:
        self._known[(thread.channel.platform, thread.thread_id)] = target

    def forget_session(self, session_id: int) -> None:
        for key, target in list(self._known.items()):
            if target.session_id == session_id:
                del self._known[key]

    async def find(self, thread: ThreadRef) -> ThreadTarget | None:
        key = (thread.channel.platform, thread.thread_id)
        target = self._known.get(key)
        if target is not None:
            return target
        target = await self._store.thread_target(*key)
        if target is None and self._opening[key[0]]:
            # Perhaps the reply to a prompt whose post has not reported back yet: wait for it.
            async with self._settled:
                await self._settled.wait_for(lambda: not self._opening[key[0]])
            target = await self._store.thread_target(*key)
        if target is not None:
            self._known[key] = target
        return target
