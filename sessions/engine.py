"""The session engine: each session's life cycle and the day's timetable.

Durable-timer shape (as in RoboDanny): the database holds every due time and state; the
scheduler only wakes the engine, which re-reads the rows and moves states through the table in
:mod:`sessions.states`, by compare-and-set, so a wake-up that fires twice, or after a restart, does
nothing the second time. Posts go out through the ledger (:mod:`sessions.ledger`), replies come in
through :mod:`sessions.inbound`, and ``/popup`` is answered by :mod:`sessions.commands.handlers`.
Each step reaches every channel through :mod:`sessions.fanout` (which also catches up a channel that
fell behind or joined late); the pulse is :class:`sessions.pulse.PulseStep`; whose turn a step is,
with several processes on one database, is :mod:`sessions.cluster`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sessions import compose
from sessions.cluster import Cluster, Turns, watch_for_sessions
from sessions.commands.handlers import CommandHandlers
from sessions.fanout import RECAP_CATCH_UP, ChannelFanOut
from sessions.fanout import RecapBuilder as RecapBuilder
from sessions.inbound import Inbound
from sessions.ledger import Ledger
from sessions.locks import KeyedLocks
from sessions.model import ChannelRef, CommandInvoked, CommandReply, MessageEvent
from sessions.plans import Plan
from sessions.ports import ChatPort, ConfiguredChannels, NamesChannels
from sessions.pulse import PulseStep
from sessions.records import ACTIVE_STATES, PromptRecord, PromptState, SessionRecord, SessionState
from sessions.retention import DEFAULT_RETENTION, RetentionPolicy, prune
from sessions.settings import EngineSettings as EngineSettings
from sessions.states import PromptEvent, SessionEvent, move_prompt, move_session
from sessions.store import Store
from sessions.threads import ThreadIndex
from sessions.wakeups import Clock, WakeupScheduler, finish_or_cancel
from sessions.web import WebOutlet

if TYPE_CHECKING:
    # The recap pulls in jinja2 and Pillow (~0.1 s): loaded on the first recap, not at start-up.
    from sessions.recap import Recap

_log = logging.getLogger(__name__)


async def build_recap(store: Store, session: SessionRecord) -> Recap:
    """:func:`sessions.recap.build_recap`, imported on first use to keep ``popup run`` start-up quick."""
    from sessions.recap import build_recap as build

    return await build(store, session)


class Engine:
    """Implements :class:`sessions.ports.EventHandler`; drives sessions through ``ports``.

    ``wakeups`` and ``clock`` are handed in (the real ones by the composition root, fake time in
    tests); the engine starts the scheduler and shuts it down with itself.
    """

    def __init__(
        self,
        *,
        store: Store,
        ports: Mapping[str, ChatPort],
        plans: Sequence[Plan] | Mapping[str, Plan],
        settings: EngineSettings,
        wakeups: WakeupScheduler,
        clock: Clock,
        recap: RecapBuilder = build_recap,
        retention: RetentionPolicy = DEFAULT_RETENTION,
        web: WebOutlet | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self._store = store
        self._ports = dict(ports)
        self._settings = settings
        self._clock = clock
        self._wakeups = wakeups
        self._retention = retention
        self._web = web
        self._cluster = cluster  # None: this process is the only one on its database
        self._watching: asyncio.Task[None] | None = None
        self._lock = KeyedLocks[int]()  # one step of a session at a time
        self._ended: dict[int, asyncio.Event] = {}  # for wait_closed's waiters, dropped as the session ends
        self._tasks: set[asyncio.Task[None]] = set()
        self._commands_running: set[asyncio.Task[CommandReply]] = set()
        self._threads = ThreadIndex(store)
        self._ledger = Ledger(store=store, ports=self._ports, threads=self._threads, clock=clock, spawn=self._spawn)
        self._inbound = Inbound(store=store, threads=self._threads, shared_database=cluster is not None)
        self._turn = Turns(cluster, wakeups=wakeups, clock=clock)
        self._fanout = ChannelFanOut(
            store=store, ledger=self._ledger, settings=settings, wakeups=wakeups, clock=clock,
            turns=self._turn, lock=self._lock, recap=recap, channel_name=self.channel_name,
        )
        self._pulse = PulseStep(
            store=store, ledger=self._ledger, settings=settings, clock=clock, lock=self._lock,
            turns=self._turn, fanout=self._fanout, retry_later=self._retry_later,
        )
        # A mapping is taken as it is, so plans added later (made on the web) can be started too.
        book = plans if isinstance(plans, Mapping) else {plan.name: plan for plan in plans}
        self._commands = CommandHandlers(store=store, plans=book, settings=settings, clock=clock, control=self, web=web)

    # -- the two doors of EventHandler ---------------------------------------------------------

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        # A command's work is owned like a wake-up's (a stop posts the recap and closes the
        # session): stop() lets it finish within its grace rather than leave it half done.
        task = asyncio.create_task(self._commands.handle(command), name=f"command-{command.name}")
        self._commands_running.add(task)
        task.add_done_callback(self._commands_running.discard)
        return await asyncio.shield(task)

    async def on_event(self, event: MessageEvent) -> None:
        await self._inbound.on_event(event)

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start waking up, and pick up every unfinished session where the database left it."""
        self._wakeups.start()
        now = self._clock()
        sessions = await self._store.list_sessions(ACTIVE_STATES)
        for session in sessions:
            self._wakeups.at(f"resume:{session.id}", now, self._resume, session)
        self._wakeups.at("prune", now + self._retention.first_after, self._prune)
        backfill_since = now - self._settings.backfill_closed_within
        closed = await self._store.list_sessions(
            [SessionState.CLOSED], closed_since=min(now - RECAP_CATCH_UP, backfill_since)
        )
        for session in closed:
            # A channel that never got the recap goes on catching up: its retries outlive a restart.
            self._wakeups.at(f"recap-behind:{session.id}", now, self._catch_up_recap, session)
        if self._cluster is not None:
            known = {session.id for session in sessions}
            watch = watch_for_sessions(self._cluster, self._store, known, self._resume_now)
            self._watching = asyncio.create_task(watch, name="popup-cluster-watch")
            # A lone process is up whenever its sessions end; in a cluster, another may have
            # closed one while this one was down, and what was said meanwhile in channels only
            # this process hears (its Discord shard) reached nobody.
            for session in closed:
                if session.closed_at is not None and session.closed_at >= backfill_since:
                    self._wakeups.at(f"backfill:{session.id}", now, self._inbound.backfill, session, self._ports)

    def _resume_now(self, session: SessionRecord) -> None:
        self._wakeups.at(f"resume:{session.id}", self._clock(), self._resume, session)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop waking; work under way (a post, a close) gets ``grace`` seconds, then is cancelled.

        Cancelling loses nothing: every step resumes from the database at the next start.
        """
        await finish_or_cancel(self._commands_running, grace)
        if self._watching is not None:
            self._watching.cancel()
            await asyncio.gather(self._watching, return_exceptions=True)
        await self._wakeups.shutdown(grace)
        await finish_or_cancel(self._tasks, grace)

    async def wait_closed(self, session_id: int) -> SessionRecord:
        """Wait until the session is closed or cancelled (for tests, the demo and benchmarks)."""
        while True:
            # The event first: an end between reading the row and waiting still wakes us.
            ended = self._ended.setdefault(session_id, asyncio.Event())
            session = await self._store.get_session(session_id)
            if session is None:
                raise LookupError(f"no session {session_id}")
            if session.state.is_terminal:
                return session
            await ended.wait()

    def _session_ended(self, session_id: int) -> None:
        ended = self._ended.pop(session_id, None)
        if ended is not None:
            ended.set()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def _resume(self, session: SessionRecord) -> None:
        _log.info("resuming session %d (%s)", session.id, session.state.value)
        await self._attach_web(session.id)  # also for a session that began before the web was on
        if session.state is SessionState.SCHEDULED:
            await self.open_session(session.id)
            return
        # Replies posted while we were away first, so that a recap due now tells of them too.
        await self._inbound.backfill(session, self._ports)
        if session.state is SessionState.CLOSING:
            await self.close_session(session.id)
            return
        now = self._clock()
        if session.recap_at <= now:
            await self.close_session(session.id)  # posts what fell due first, in order
            return
        # Channels that fell behind before the restart get what they missed first (that moves no
        # prompt's state, so the one read serves what follows too). In a cluster, while another
        # process has the session's turn, its step brings every channel up to date.
        prompts = await self._store.prompts(session.id)
        async with self._turn(session.id) as mine:
            if mine:
                await self._fanout.fan_out(session, await self._fanout.issued(session, prompts))
        # What fell due while we were down, in timetable order, before anything new.
        due = [p for p in prompts if p.state in (PromptState.PENDING, PromptState.POSTING) and p.due_at <= now]
        for prompt in due:
            await self.post_prompt(session.id, prompt.id)
        # Read again only if that moved something: with many sessions resuming, each read waits
        # behind every other session's (bench/many_sessions.py).
        self._schedule(session, await self._store.prompts(session.id) if due else prompts)

    async def _prune(self) -> None:
        """Forget what can no longer matter (sessions/retention.py), then wake again later."""
        try:
            await prune(self._store, self._retention, self._clock())
        finally:
            self._wakeups.at("prune", self._clock() + self._retention.every, self._prune)

    def _schedule(self, session: SessionRecord, prompts: Iterable[PromptRecord]) -> None:
        for prompt in prompts:
            if prompt.state in (PromptState.PENDING, PromptState.POSTING):
                self._wakeups.at(f"prompt:{prompt.id}", prompt.due_at, self.post_prompt, session.id, prompt.id)
        if session.pulse_at is not None:
            self._wakeups.at(f"pulse:{session.id}", session.pulse_at, self._pulse.post_pulse, session.id)
        self._wakeups.at(f"recap:{session.id}", session.recap_at, self.close_session, session.id)

    def _retry_later(self, job_id: str, attempt: int, wake: Callable[..., Awaitable[None]], *args: Any) -> None:
        delays = self._settings.retry_delays
        delay = delays[min(attempt, len(delays) - 1)]
        _log.info("will retry %s in %.0f s", job_id, delay)
        self._wakeups.at(job_id, self._clock() + timedelta(seconds=delay), wake, *args)

    # -- the day's steps (each is also a wake-up: safe to run twice, or after a restart) ---------

    async def open_session(self, session_id: int, attempt: int = 0) -> None:
        """Post the opening message; the session runs once every channel has it."""
        await self._attach_web(session_id)
        wake = (f"open:{session_id}", self.open_session, session_id, attempt)
        async with self._lock(session_id), self._turn(session_id, *wake) as mine:
            session = await self._store.get_session(session_id) if mine else None
            if session is not None and session.state is SessionState.RUNNING and self._cluster is not None:
                # Another process opened it meanwhile: wake for its timetable here as well.
                self._schedule(session, await self._store.prompts(session_id))
                return
            if session is None or session.state is not SessionState.SCHEDULED:
                return
            prompts = await self._store.prompts(session_id)
            if await self._fanout.fan_out(session, self._fanout.opening(session, prompts)):
                await move_session(self._store, session_id, session.state, SessionEvent.OPENING_POSTED)
                self._schedule(session, prompts)
                return
        self._retry_later(f"open:{session_id}", attempt, self.open_session, session_id, attempt + 1)

    async def post_prompt(self, session_id: int, prompt_id: int, attempt: int = 0, on_demand: bool = False) -> None:
        """Post a prompt that is due (or asked for ``on_demand``) while its session runs."""
        wake = (f"prompt:{prompt_id}", self.post_prompt, session_id, prompt_id, attempt, on_demand)
        async with self._lock(session_id), self._turn(session_id, *wake) as mine:
            session = await self._store.get_session(session_id) if mine else None
            if session is None or session.state is not SessionState.RUNNING:
                return
            prompts = await self._store.prompts(session_id)
            prompt = next((p for p in prompts if p.id == prompt_id), None)
            if prompt is None or await self._send_prompt(session, prompt, len(prompts), on_demand=on_demand):
                return
        self._retry_later(f"prompt:{prompt_id}", attempt, self.post_prompt, session_id, prompt_id, attempt + 1)

    async def post_prompt_now(self, session_id: int, prompt_id: int) -> None:
        """``/popup next``: the prompt goes out now, whatever its time, and is not woken for later."""
        self._wakeups.cancel(f"prompt:{prompt_id}")
        await self.post_prompt(session_id, prompt_id, on_demand=True)

    async def _send_prompt(
        self, session: SessionRecord, prompt: PromptRecord, total: int, *, on_demand: bool = False
    ) -> bool:
        """Move a due prompt out: missed past the grace, else posting, then posted.

        Returns False when the platform could not take it yet (the caller tries again later).
        """
        if prompt.state is PromptState.PENDING:
            late = self._clock() - prompt.due_at
            if not on_demand and late > self._settings.late_grace:
                if await move_prompt(self._store, prompt.id, prompt.state, PromptEvent.MISS):
                    _log.warning("session %d: prompt %d missed (%s late)", session.id, prompt.position, late)
                return True
            if not await move_prompt(self._store, prompt.id, prompt.state, PromptEvent.POST):
                return True  # another wake-up has it
        elif prompt.state is not PromptState.POSTING:
            return True  # already posted (a duplicate wake-up) or no longer wanted
        prompts = await self._store.prompts(session.id)
        if not await self._fanout.fan_out(session, await self._fanout.issued(session, prompts, upto=prompt)):
            return False
        await move_prompt(self._store, prompt.id, PromptState.POSTING, PromptEvent.POSTED, at=self._clock())
        return True

    async def close_session(self, session_id: int, attempt: int = 0) -> None:
        """Close: the due prompts, then the recap, in every channel; retried until all are out."""
        async with (
            self._lock(session_id),
            self._turn(session_id, f"recap:{session_id}", self.close_session, session_id, attempt) as mine,
        ):
            session = await self._store.get_session(session_id) if mine else None
            if session is None or session.state.is_terminal:
                return
            closing = session.state is SessionState.CLOSING
            if not closing and not await move_session(self._store, session_id, session.state, SessionEvent.CLOSE):
                return
            if await self._post_due_prompts(session):
                await self._drop_pending(session_id)
                if await self._post_recap(session):
                    await move_session(
                        self._store, session_id, SessionState.CLOSING, SessionEvent.RECAP_POSTED, at=self._clock()
                    )
                    self._session_ended(session_id)
                    _log.info("session %d closed", session_id)
                    return
        self._retry_later(f"recap:{session_id}", attempt, self.close_session, session_id, attempt + 1)

    async def cancel_session(self, session: SessionRecord) -> bool:
        """End without a recap (a notice instead); False when the session had already ended."""
        async with self._lock(session.id):
            moved = await move_session(self._store, session.id, ACTIVE_STATES, SessionEvent.CANCEL, at=self._clock())
            if not moved:
                return False
            await self._drop_pending(session.id)
            self._wakeups.cancel(f"open:{session.id}")
            self._threads.forget_session(session.id)
            await self._post_cancelled(session, locked=True)
        self._session_ended(session.id)
        return True

    # -- a channel added by the engine itself (the web page) ---------------------------------------

    async def attach_channel(self, session_id: int, channel: ChannelRef) -> bool:
        return await self._fanout.attach_channel(session_id, channel)

    async def _attach_web(self, session_id: int) -> None:
        if self._web is not None:
            await self.attach_channel(session_id, self._web.channel_for(session_id))

    async def _post_cancelled(self, session: SessionRecord, *, locked: bool = False) -> None:
        """The notice that the session ended without a recap (in a cluster, when this process has
        the session's turn; woken again otherwise)."""
        lock = contextlib.nullcontext() if locked else self._lock(session.id)
        async with lock, self._turn(session.id, f"cancelled:{session.id}", self._post_cancelled, session) as mine:
            if mine:
                await self._ledger.deliver(session, "notice:cancelled", compose.cancelled(session))

    async def _post_due_prompts(self, session: SessionRecord) -> bool:
        """The day's due prompts go out before its recap, also when an outage held them back."""
        prompts = await self._store.prompts(session.id)
        now = self._clock()
        for prompt in prompts:
            due = prompt.state is PromptState.POSTING or (prompt.state is PromptState.PENDING and prompt.due_at <= now)
            if due and not await self._send_prompt(session, prompt, len(prompts)):
                return False
        return True

    async def _post_recap(self, session: SessionRecord) -> bool:
        if await self._catch_up_recap(session):
            return True  # a restart between posting the recap and recording the close
        recap = await self._fanout.recap_message(session)
        prompts = await self._store.prompts(session.id)
        return await self._fanout.fan_out(session, await self._fanout.issued(session, prompts, recap=recap))

    async def _catch_up_recap(self, session: SessionRecord) -> bool:
        """Whether some channel of ``session`` has its recap; if so, the channels still without it
        catch up on their own."""
        has_it = await self._ledger.posted_in(session, "recap")
        if not has_it:
            return False
        for channel in set(session.channels) - has_it:
            self._fanout.catch_up_later(session.id, channel, 0)
        return True

    # -- the session's channels (sessions/fanout.py does the posting) ------------------------------

    async def channel_joined(self, session_id: int, channel: ChannelRef) -> bool:
        return await self._fanout.channel_joined(session_id, channel)

    def channel_left(self, session_id: int, channel: ChannelRef) -> None:
        self._fanout.channel_left(session_id, channel)

    def reaches(self, channel: ChannelRef) -> bool:
        return channel.platform in self._ports

    def configured_channels(self, platform: str) -> tuple[str, ...]:
        port = self._ports.get(platform)
        return tuple(port.channel_names()) if isinstance(port, ConfiguredChannels) else ()

    async def channel_name(self, channel: ChannelRef) -> str | None:
        port = self._ports.get(channel.platform)
        if not isinstance(port, NamesChannels):
            return None
        try:
            return await port.channel_name(channel)
        except Exception:  # a name is a nicety: never let it stop a join
            _log.warning("no name for %s channel %s", channel.platform, channel.channel_id, exc_info=True)
            return None

    async def _drop_pending(self, session_id: int) -> None:
        """Prompts not yet due when a session ends early will not be posted."""
        for prompt in await self._store.prompts(session_id):
            if prompt.state is PromptState.PENDING:
                await move_prompt(self._store, prompt.id, prompt.state, PromptEvent.SKIP)
            self._wakeups.cancel(f"prompt:{prompt.id}")
        self._wakeups.cancel(f"recap:{session_id}")
