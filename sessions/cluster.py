"""Several ``popup run`` processes on one database: whose turn it is to run a session's next step.

Every process wakes for every session (the wake-ups come from the rows, and each process looks for
sessions started elsewhere), so at a prompt's time several may wake at once. Before the opening, a
prompt or the recap goes out, a process takes the session's lease in the database; the others find
it taken and look again when it runs out. A lease is renewed while its holder works and given back
when it is done, so a process that dies mid-post holds up the session by one lease time at most:
then another takes over, and the outbound ledger finds the post the dead one may have made
(``find_post``) instead of posting again.

One process on its own (SQLite) has no :class:`Cluster`, and the engine runs as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sessions.records import ACTIVE_STATES, SessionRecord
from sessions.store import Store
from sessions.wakeups import Clock, WakeupScheduler

_log = logging.getLogger(__name__)

_LEASE_RETRY_MARGIN = timedelta(seconds=0.5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    held: bool  # whether the asker holds it now
    until: datetime  # when it runs out unless its holder renews it


@runtime_checkable
class SessionLeases(Protocol):
    """What a store shared by several processes offers (storage.postgres)."""

    async def take_lease(self, session_id: int, holder: str, seconds: float) -> Lease:
        """Take the session's lease for ``seconds`` (or renew it, if ``holder`` has it already),
        unless another holder's has not run out; by the database's clock."""
        ...

    async def release_lease(self, session_id: int, holder: str) -> None:
        """Give the lease back, if ``holder`` has it."""
        ...


class Cluster:
    def __init__(
        self, leases: SessionLeases, *, holder: str, lease_seconds: float = 15.0, watch_seconds: float = 2.0
    ) -> None:
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.watch_seconds = watch_seconds  # how often to look for sessions started by other processes
        self._leases = leases
        # Steps of one session in this process may overlap (a catch-up while a prompt goes out): the
        # lease is this process's, renewed by one task, and given back only when the last step is done.
        self._inside: defaultdict[int, int] = defaultdict(int)
        self._guards: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._renewing: dict[int, asyncio.Task[None]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, session_id: int) -> AsyncIterator[Lease]:
        """The session's lease, renewed while the block runs and given back after it, if held."""
        async with self._guards[session_id]:
            lease = await self._leases.take_lease(session_id, self.holder, self.lease_seconds)
            if lease.held:
                self._inside[session_id] += 1
                if session_id not in self._renewing:
                    self._renewing[session_id] = asyncio.create_task(
                        self._renew(session_id), name=f"popup-lease-{session_id}"
                    )
        if not lease.held:
            yield lease
            return
        try:
            yield lease
        finally:
            async with self._guards[session_id]:
                self._inside[session_id] -= 1
                if not self._inside[session_id]:
                    del self._inside[session_id]
                    await self._give_back(session_id)

    async def _give_back(self, session_id: int) -> None:
        renewing = self._renewing.pop(session_id)
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        try:
            await self._leases.release_lease(session_id, self.holder)
        except Exception as exc:  # it runs out on its own
            _log.warning("session %d: giving the lease back failed: %r", session_id, exc)

    async def _renew(self, session_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                lease = await self._leases.take_lease(session_id, self.holder, self.lease_seconds)
            except Exception as exc:  # try again at the next beat, while the lease still runs
                _log.warning("session %d: renewing the lease failed: %r", session_id, exc)
                continue
            if not lease.held:
                _log.error("session %d: lost the lease to another process mid-step", session_id)
                return


class Turns:
    """The engine's side of a :class:`Cluster` (or of none): whether a session's step runs here now."""

    def __init__(self, cluster: Cluster | None, *, wakeups: WakeupScheduler, clock: Clock) -> None:
        self.cluster = cluster  # None: this process is the only one on its database
        self._wakeups = wakeups
        self._clock = clock

    @contextlib.asynccontextmanager
    async def __call__(
        self, session_id: int, job_id: str | None = None, wake: Callable[..., Awaitable[Any]] | None = None, *args: Any
    ) -> AsyncIterator[bool]:
        """Whether this process runs the session's step now: always alone; in a cluster, while it
        holds the session's lease. Every step that posts runs in a turn, so that it posts once
        cluster-wide. Otherwise ``wake`` is woken again when the holder's lease runs out."""
        if self.cluster is None:
            yield True
            return
        async with self.cluster.turn(session_id) as lease:
            if not lease.held and job_id is not None and wake is not None:
                # Never "now": this very wake-up may be job_id, and the scheduler skips a job whose
                # last run has not returned yet.
                again = max(lease.until, self._clock() + _LEASE_RETRY_MARGIN)
                self._wakeups.at(job_id, again, wake, *args)
            yield lease.held


async def watch_for_sessions(
    cluster: Cluster, store: Store, known: set[int], found: Callable[[SessionRecord], None]
) -> None:
    """Wake for the sessions other processes start, as for those found at start-up: ``found`` is
    called once for each active session not in ``known``."""
    while True:
        await asyncio.sleep(cluster.watch_seconds)
        try:
            sessions = await store.list_sessions(ACTIVE_STATES)
        except Exception as exc:  # the database may be back at the next look
            _log.warning("looking for sessions started elsewhere failed: %r", exc)
            continue
        for session in sessions:
            if session.id not in known:
                known.add(session.id)
                found(session)
