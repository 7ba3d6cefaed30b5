"""Wake-ups: what the engine needs of a scheduler, and the real one on APScheduler 3.

The database is the source of truth (due times and states live in rows); a job only says "look
now". So jobs are never persisted here: at boot the engine re-creates them from the rows.
The engine is handed its scheduler and its clock, so tests can run a day on fake time
(``tests/fakes/clock.py``); the composition root hands it :class:`Wakeups` and :func:`utc_now`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real time: the clock the composition root hands the engine."""
    return datetime.now(UTC)


class WakeupScheduler(Protocol):
    """Calls the engine back at due times. A job only wakes; it carries no state of its own."""

    def start(self) -> None: ...

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop waking; wake-ups under way get ``grace`` seconds to finish, then are cancelled."""
        ...

    def at(self, job_id: str, when: datetime, wake: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Call ``wake(*args)`` at ``when`` (at once if it has passed); replaces a job of that id."""
        ...

    def cancel(self, job_id: str) -> None:
        """Forget the job of that id, if there is one."""
        ...

    def pending(self) -> list[str]:
        """The ids of the jobs not yet woken."""
        ...


class Wakeups:
    """:class:`WakeupScheduler` on APScheduler 3's AsyncIOScheduler, with an in-memory job store."""

    def __init__(self) -> None:
        # misfire_grace_time=None: APScheduler must never drop a late job on its own (its default
        # grace of 1 s would, whenever the loop is busy). Lateness is judged by the engine against
        # the due time in the database. coalesce: a job that is late many times runs once.
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._running: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        if not self._scheduler.running:
            self._scheduler.start()

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop waking; let running wake-ups finish within ``grace`` seconds, then cancel them.

        Cancelling is always safe (every step is a compare-and-set over durable rows and resumes
        at the next start), but a post or a close that is nearly done is better finished.
        """
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        await finish_or_cancel(self._running, grace)

    def at(self, job_id: str, when: datetime, wake: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Call ``wake(*args)`` at ``when`` (at once if it has passed); replaces a job of that id."""
        self._scheduler.add_job(
            self._owned(job_id, wake),
            trigger=DateTrigger(run_date=when.astimezone(UTC), timezone=UTC),
            id=job_id,
            args=args,
            replace_existing=True,
        )

    def cancel(self, job_id: str) -> None:
        job = self._scheduler.get_job(job_id)
        if job is not None:
            job.remove()

    def pending(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]

    def _owned(self, job_id: str, wake: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
        """Wrap a wake-up so that it is logged, and owned: shutdown cancels it and waits."""

        async def run(*args: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await wake(*args)
            except asyncio.CancelledError:
                _log.debug("wake-up %s cancelled by shutdown", job_id)
            except Exception:
                _log.exception("wake-up %s failed", job_id)
            finally:
                if task is not None:
                    self._running.discard(task)

        return run


async def finish_or_cancel(tasks: Iterable[asyncio.Task[Any]], grace: float) -> None:
    """Give ``tasks`` up to ``grace`` seconds to finish, then cancel what is left and wait for it."""
    pending = set(tasks)
    if pending:
        _done, pending = await asyncio.wait(pending, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
