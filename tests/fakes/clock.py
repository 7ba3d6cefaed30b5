"""Fake time for engine tests: a clock that moves only when told, and wake-ups that follow it.

``FakeClock.advance`` walks time forward wake-up by wake-up, in due order, and awaits each one
before looking for the next, so a whole session (and its retries, and a restart) runs in the time
its I/O takes, and a test knows exactly what has happened when ``advance`` returns.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_log = logging.getLogger(__name__)

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    when: datetime
    order: int  # among jobs due at the same time, the one scheduled first wakes first
    wake: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]


class FakeClock:
    """The time, for every engine of a test (a restarted engine lives on in the same time)."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._schedulers: list[FakeWakeups] = []
        self._order = itertools.count()
        self.failures: list[str] = []  # wake-ups that raised (the real scheduler logs and goes on)

    def now(self) -> datetime:
        return self._now

    def wakeups(self) -> FakeWakeups:
        """A new scheduler on this clock, for one engine (:class:`sessions.wakeups.WakeupScheduler`)."""
        scheduler = FakeWakeups(self._order)
        self._schedulers.append(scheduler)
        return scheduler

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self._now + timedelta(seconds=seconds))

    async def advance_to(self, moment: datetime) -> None:
        """Fire every wake-up due by ``moment`` in due order, each awaited (and those they schedule
        that fall due by then too), then stand at ``moment``. Time never goes back."""
        while (due := self._next_due(moment)) is not None:
            scheduler, job_id, job = due
            self._now = max(self._now, job.when)
            del scheduler.jobs[job_id]
            try:
                await job.wake(*job.args)
            except Exception:
                _log.exception("wake-up %s failed", job_id)
                self.failures.append(job_id)
        self._now = max(self._now, moment)

    def _next_due(self, moment: datetime) -> tuple[FakeWakeups, str, _Job] | None:
        due = [
            (job.when, job.order, scheduler, job_id, job)
            for scheduler in self._schedulers
            if scheduler.running
            for job_id, job in scheduler.jobs.items()
            if job.when <= moment
        ]
        if not due:
            return None
        *_, scheduler, job_id, job = min(due, key=lambda item: (item[0], item[1]))
        return scheduler, job_id, job


class FakeWakeups:
    """Wake-ups that fire only as the :class:`FakeClock` is advanced; none after shutdown."""

    def __init__(self, order: itertools.count[int]) -> None:
        self._order = order  # shared by the clock's schedulers
        self.jobs: dict[str, _Job] = {}
        self.running = False

    def start(self) -> None:
        self.running = True

    async def shutdown(self, grace: float = 5.0) -> None:
        # Wake-ups run inside FakeClock.advance, awaited there: none is left running to wait for.
        self.running = False
        self.jobs.clear()

    def at(self, job_id: str, when: datetime, wake: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self.jobs[job_id] = _Job(when=when, order=next(self._order), wake=wake, args=args)

    def cancel(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def pending(self) -> list[str]:
        return list(self.jobs)
