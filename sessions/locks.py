"""One :class:`asyncio.Lock` per key (a session, a session's channel) that lives only while a task
holds or awaits it: a long-running bot does not keep a lock for every session it ever ran."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """``locks(key)`` is the lock of ``key``: the same object for as long as anyone holds it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[K, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: K) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def __len__(self) -> int:
        """How many keys have a lock now (held or awaited)."""
        return len(self._locks)
