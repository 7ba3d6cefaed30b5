"""The session engine: commands, the day's timetable, replies in, exactly-once posts out.

Durable-timer shape (as in RoboDanny): the database holds every due time and state; the
scheduler only wakes the engine, which re-reads the rows and moves states by compare-and-set, so
a wake-up that fires twice, or after a restart, does nothing the second time. Every post goes
through the outbound ledger: intent recorded, attempt counted, post, platform id recorded; an
interrupted attempt is first looked for on the platform (``find_post``), never blindly re-posted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sessions import compose
from sessions.commands import HELP, parse_start, resolve_day
from sessions.errors import CommandError, PermissionDenied, PlanError
from sessions.model import (
    CommandInvoked,
    CommandReply,
    Member,
    Message,
    MessageEvent,
    ReactionChanged,
    ReplyDeleted,
    ReplyEdited,
    ReplyPosted,
    ThreadRef,
)
from sessions.plans import ClockTime, Plan, build_timetable
from sessions.ports import Backfills, ChatPort
from sessions.records import (
    ACTIVE_STATES,
    NewPrompt,
    NewReply,
    NewSession,
    PromptRecord,
    PromptState,
    SessionRecord,
    SessionState,
    ThreadTarget,
)
from sessions.store import Store
from sessions.wakeups import Wakeups, finish_or_cancel

if TYPE_CHECKING:
    # The recap pulls in jinja2 and Pillow (~0.1 s): loaded on the first recap, not at start-up.
    from sessions.recap import Recap

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
RecapBuilder = Callable[[Store, SessionRecord], Awaitable["Recap"]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def build_recap(store: Store, session: SessionRecord) -> Recap:
    """:func:`sessions.recap.build_recap`, imported on first use to keep ``popup run`` start-up quick."""
    from sessions.recap import build_recap as build

    return await build(store, session)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    default_plan: str
    timezone: str = "UTC"
    organisers: tuple[str, ...] = ()  # user ids, role names or role ids; empty = anyone
    # A prompt that fell due while the bot was down is posted late within this grace, and past
    # it is marked missed (and named in the recap) rather than landing out of context.
    late_grace: timedelta = timedelta(minutes=15)
    retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # between failed posts


class Engine:
    """Implements :class:`sessions.ports.EventHandler`; drives sessions through ``ports``."""

    def __init__(
        self,
        *,
        store: Store,
        ports: Mapping[str, ChatPort],
        plans: Sequence[Plan],
        settings: EngineSettings,
        clock: Clock = utc_now,
        recap: RecapBuilder = build_recap,
    ) -> None:

        self._store = store
        self._ports = dict(ports)
        self._plans = {plan.name: plan for plan in plans}
        self._settings = settings
        self._clock = clock
        self._build_recap = recap
        self._wakeups = Wakeups()
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._ended: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self._threads: dict[tuple[str, str], ThreadTarget] = {}
        # Thread posts under way per platform: a reply can arrive before we hear our post's id.
        self._opening_threads: defaultdict[str, int] = defaultdict(int)
        self._threads_settled = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start waking up, and pick up every unfinished session where the database left it."""
        self._wakeups.start()
        for session in await self._store.list_sessions(ACTIVE_STATES):
            self._spawn(self._resume(session), f"resume-{session.id}")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop waking; work under way (a post, a close) gets ``grace`` seconds, then is cancelled.

        Cancelling loses nothing: every step resumes from the database at the next start.
        """
        await self._wakeups.shutdown(grace)
        await finish_or_cancel(self._tasks, grace)

    async def wait_closed(self, session_id: int) -> SessionRecord:
        """Wait until the session is closed or cancelled (for tests, the demo and benchmarks)."""
        session = await self._store.get_session(session_id)
        while session is not None and not session.state.is_terminal:
            await self._ended[session_id].wait()
            session = await self._store.get_session(session_id)
        if session is None:
            raise LookupError(f"no session {session_id}")
        return session

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
        if session.state is SessionState.SCHEDULED:
            await self._open(session.id)
            return
        # Replies posted while we were away first, so that a recap due now tells of them too.
        await self._backfill(session)
        if session.state is SessionState.CLOSING:
            await self._close(session.id)
            return
        now = self._clock()
        if session.recap_at <= now:
            await self._close(session.id)  # posts what fell due first, in order
            return
        # What fell due while we were down, in timetable order, before anything new.
        for prompt in await self._store.prompts(session.id):
            if prompt.state in (PromptState.PENDING, PromptState.POSTING) and prompt.due_at <= now:
                await self._post_prompt(session.id, prompt.id)
        self._schedule(session, await self._store.prompts(session.id))

    async def _backfill(self, session: SessionRecord) -> None:
        by_platform: defaultdict[str, list[ThreadRef]] = defaultdict(list)
        for post in await self._store.posts(session.id):
            if post.thread is not None:
                by_platform[post.channel.platform].append(post.thread)
        for platform, threads in by_platform.items():
            port = self._ports.get(platform)
            if isinstance(port, Backfills):
                try:
                    await port.backfill(threads)
                except Exception:  # a platform hiccup must not stop the session from going on
                    _log.exception("session %d: back-filling %s threads failed", session.id, platform)

    def _schedule(self, session: SessionRecord, prompts: Iterable[PromptRecord]) -> None:
        for prompt in prompts:
            if prompt.state in (PromptState.PENDING, PromptState.POSTING):
                self._wakeups.at(f"prompt:{prompt.id}", prompt.due_at, self._post_prompt, session.id, prompt.id)
        self._wakeups.at(f"recap:{session.id}", session.recap_at, self._close, session.id)

    def _retry_later(self, job_id: str, attempt: int, wake: Callable[..., Awaitable[None]], *args: Any) -> None:
        delays = self._settings.retry_delays
        delay = delays[min(attempt, len(delays) - 1)]
        _log.info("will retry %s in %.0f s", job_id, delay)
        self._wakeups.at(job_id, datetime.now(UTC) + timedelta(seconds=delay), wake, *args)

    # -- the day's steps -------------------------------------------------------------------------

    async def _open(self, session_id: int, attempt: int = 0) -> None:
        async with self._locks[session_id]:
            session = await self._store.get_session(session_id)
            if session is None or session.state is not SessionState.SCHEDULED:
                return
            prompts = await self._store.prompts(session_id)
            if await self._deliver(session, "opening", compose.opening(session, prompts)):
                await self._store.set_session_state(session_id, [SessionState.SCHEDULED], SessionState.RUNNING)
                self._schedule(session, prompts)
                return
        self._retry_later(f"open:{session_id}", attempt, self._open, session_id, attempt + 1)

    async def _post_prompt(self, session_id: int, prompt_id: int, attempt: int = 0, on_demand: bool = False) -> None:
        async with self._locks[session_id]:
            session = await self._store.get_session(session_id)
            if session is None or session.state is not SessionState.RUNNING:
                return
            prompts = await self._store.prompts(session_id)
            prompt = next((p for p in prompts if p.id == prompt_id), None)
            if prompt is None or await self._send_prompt(session, prompt, len(prompts), on_demand=on_demand):
                return
        self._retry_later(f"prompt:{prompt_id}", attempt, self._post_prompt, session_id, prompt_id, attempt + 1)

    async def _send_prompt(
        self, session: SessionRecord, prompt: PromptRecord, total: int, *, on_demand: bool = False
    ) -> bool:
        """Move a due prompt out: missed past the grace, else posting, then posted.

        Returns False when the platform could not take it yet (the caller tries again later).
        """
        if prompt.state is PromptState.PENDING:
            late = self._clock() - prompt.due_at
            if not on_demand and late > self._settings.late_grace:
                if await self._store.set_prompt_state(prompt.id, [PromptState.PENDING], PromptState.MISSED):
                    _log.warning("session %d: prompt %d missed (%s late)", session.id, prompt.position, late)
                return True
            if not await self._store.set_prompt_state(prompt.id, [PromptState.PENDING], PromptState.POSTING):
                return True  # another wake-up has it
        elif prompt.state is not PromptState.POSTING:
            return True  # already posted (a duplicate wake-up) or no longer wanted
        content = compose.prompt(session, prompt, total)
        if not await self._deliver(session, f"prompt:{prompt.position}", content, prompt_id=prompt.id, thread=True):
            return False
        await self._store.set_prompt_state(prompt.id, [PromptState.POSTING], PromptState.POSTED, at=self._clock())
        return True

    async def _close(self, session_id: int, attempt: int = 0) -> None:
        async with self._locks[session_id]:
            session = await self._store.get_session(session_id)
            if session is None or session.state.is_terminal:
                return
            if session.state is not SessionState.CLOSING:
                moved = await self._store.set_session_state(
                    session_id, [SessionState.SCHEDULED, SessionState.RUNNING], SessionState.CLOSING
                )
                if not moved:
                    return
            if await self._post_due_prompts(session):
                await self._drop_pending(session_id)
                if await self._post_recap(session):
                    await self._store.set_session_state(
                        session_id, [SessionState.CLOSING], SessionState.CLOSED, at=self._clock()
                    )
                    self._ended[session_id].set()
                    _log.info("session %d closed", session_id)
                    return
        self._retry_later(f"recap:{session_id}", attempt, self._close, session_id, attempt + 1)

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
        if await self._posted_everywhere(session, "recap"):
            return True  # a restart between posting the recap and recording the close
        recap = await self._build_recap(self._store, session)
        message = recap.message
        if recap.attachments:
            message = Message(
                title=message.title,
                body=message.body,
                sections=message.sections,
                attachments=message.attachments + recap.attachments,
            )
        return await self._deliver(session, "recap", message)

    async def _posted_everywhere(self, session: SessionRecord, key: str) -> bool:
        posted = {p.channel for p in await self._store.posts(session.id) if p.key == key and p.posted}
        return all(channel in posted for channel in session.channels)

    async def _drop_pending(self, session_id: int) -> None:
        """Prompts not yet due when a session ends early will not be posted."""
        for prompt in await self._store.prompts(session_id):
            if prompt.state is PromptState.PENDING:
                await self._store.set_prompt_state(prompt.id, [PromptState.PENDING], PromptState.SKIPPED)
            self._wakeups.cancel(f"prompt:{prompt.id}")
        self._wakeups.cancel(f"recap:{session_id}")

    async def _deliver(
        self,
        session: SessionRecord,
        key: str,
        content: Message,
        *,
        prompt_id: int | None = None,
        thread: bool = False,
    ) -> bool:
        """Post ``content`` exactly once in each of the session's channels; True when all have it."""
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
            if thread:
                self._opening_threads[channel.platform] += 1
            try:
                # An earlier attempt may have reached the platform before we heard back.
                posted = await port.find_post(channel, marker) if record.attempts else None
                found_again = posted is not None
                if posted is None:
                    await self._store.note_attempt(record.id)
                    send = port.open_thread if thread else port.post
                    posted = await send(channel, content, key=marker)
                await self._store.record_posted(record.id, posted, at=self._clock())
            except Exception as exc:
                _log.warning("session %d: posting %s in %s failed: %r", session.id, key, channel.channel_id, exc)
                delivered = False
                continue
            finally:
                if thread:
                    await self._thread_settled(channel.platform)
            if posted.thread is not None and prompt_id is not None:
                self._threads[(channel.platform, posted.thread.thread_id)] = ThreadTarget(
                    session_id=session.id, prompt_id=prompt_id, session_state=SessionState.RUNNING
                )
                if found_again and isinstance(port, Backfills):
                    # Members may have answered while we did not know this thread was ours.
                    self._spawn(port.backfill([posted.thread]), f"backfill-{session.id}-{key}")
        return delivered

    async def _thread_settled(self, platform: str) -> None:
        async with self._threads_settled:
            self._opening_threads[platform] -= 1
            self._threads_settled.notify_all()

    # -- inbound events --------------------------------------------------------------------------

    async def _target(self, thread: ThreadRef) -> ThreadTarget | None:
        key = (thread.channel.platform, thread.thread_id)
        target = self._threads.get(key)
        if target is None:
            target = await self._store.thread_target(*key)
            if target is None and self._opening_threads[key[0]]:
                # Perhaps the reply to a prompt whose post has not reported back yet: wait for it.
                async with self._threads_settled:
                    await self._threads_settled.wait_for(lambda: not self._opening_threads[key[0]])
                target = await self._store.thread_target(*key)
            if target is None:
                return None
            self._threads[key] = target
        if target.session_state in (SessionState.CANCELLED, SessionState.FAILED):
            return None
        return target

    async def on_event(self, event: MessageEvent) -> None:
        store = self._store
        match event:
            case ReplyPosted():
                if event.author.is_bot:
                    return
                target = await self._target(event.thread)
                if target is None:
                    return
                await store.add_reply(
                    NewReply(
                        session_id=target.session_id,
                        prompt_id=target.prompt_id,
                        platform=event.message.channel.platform,
                        channel_id=event.message.channel.channel_id,
                        message_id=event.message.message_id,
                        author_id=event.author.user_id,
                        author_name=event.author.display_name,
                        text=event.text,
                        created_at=event.at,
                        delivery_id=event.delivery_id,
                    )
                )
            case ReplyEdited():
                in_prompt_thread = event.thread is not None and await self._target(event.thread) is not None
                await store.edit_reply(
                    event.message,
                    event.text,
                    at=event.at,
                    keep_if_unknown=in_prompt_thread,
                    delivery_id=event.delivery_id,
                )
            case ReplyDeleted():
                await store.delete_reply(event.message, at=event.at, delivery_id=event.delivery_id)
            case ReactionChanged():
                await store.set_reaction(
                    event.message,
                    event.user_id,
                    event.emoji,
                    added=event.added,
                    at=event.at,
                    delivery_id=event.delivery_id,
                )

    # -- commands --------------------------------------------------------------------------------

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        handlers: dict[str, Callable[[CommandInvoked], Awaitable[CommandReply]]] = {
            "start": self._cmd_start,
            "stop": self._cmd_stop,
            "cancel": self._cmd_cancel,
            "status": self._cmd_status,
            "next": self._cmd_next,
            "plans": self._cmd_plans,
            "forget": self._cmd_forget,
        }
        handler = handlers.get(command.name.lower())
        if handler is None:
            return CommandReply(text=HELP)
        try:
            return await handler(command)
        except CommandError as exc:
            return CommandReply(text=str(exc))
        except Exception:
            _log.exception("command %s failed", command.name)
            return CommandReply(text="Sorry, that went wrong on my side; the organisers can find details in my log.")

    def _require_organiser(self, member: Member) -> None:
        organisers = self._settings.organisers
        if not organisers or member.is_admin or member.user_id in organisers:
            return
        if any(role in organisers for role in member.roles):
            return
        raise PermissionDenied("Only the session's organisers can do that. Ask one of them, or try /popup status.")

    async def _active(self, command: CommandInvoked) -> SessionRecord:
        session = await self._store.active_session(command.channel)
        if session is None:
            raise CommandError("No popup session is running in this channel. Start one with /popup start.")
        return session

    async def _cmd_start(self, command: CommandInvoked) -> CommandReply:
        self._require_organiser(command.member)
        args = parse_start(command.args, self._plans)
        plan = self._plans.get(args.plan or self._settings.default_plan)
        if plan is None:
            raise CommandError(f"The default plan {self._settings.default_plan!r} is not configured.")
        tz = ZoneInfo(self._settings.timezone)
        now = self._clock()
        day = resolve_day(args.day, now.astimezone(tz).date())
        try:
            timetable = build_timetable(plan, started_at=now, day=day, tz=tz)
        except PlanError as exc:
            raise CommandError(str(exc)) from exc
        passed = [
            str(spec.at)
            for spec, due in zip(plan.prompts, timetable.prompts, strict=True)
            if isinstance(spec.at, ClockTime) and due < now
        ]
        if passed:
            raise CommandError(
                f"Prompt time {passed[0]} has already passed on {day.isoformat()}. "
                f"Say /popup start {plan.name} tomorrow (or a later YYYY-MM-DD)."
            )
        new = NewSession(
            plan_name=plan.name,
            title=plan.title,
            intro=plan.intro,
            timezone=self._settings.timezone,
            channel=command.channel,
            anonymous=args.anonymous or plan.anonymous,
            started_by=command.member.user_id,
            started_at=now,
            recap_at=timetable.recap_at,
            prompts=tuple(
                NewPrompt(text=spec.text, due_at=due) for spec, due in zip(plan.prompts, timetable.prompts, strict=True)
            ),
        )
        session = await self._store.create_session(new)
        if session is None:
            running = await self._store.active_session(command.channel)
            what = f" (#{running.id} “{running.title}”)" if running else ""
            raise CommandError(
                f"A popup session is already running in this channel{what}. "
                "Stop or cancel it first, or start one in another channel."
            )
        await self._open(session.id)
        first = compose.local_time(timetable.prompts[0], session.timezone)
        recap = compose.local_time(timetable.recap_at, session.timezone)
        return CommandReply(
            text=f"Started session #{session.id} “{plan.title}”: {len(plan.prompts)} prompts from {first}, "
            f"recap at {recap}."
        )

    async def _cmd_stop(self, command: CommandInvoked) -> CommandReply:
        self._require_organiser(command.member)
        session = await self._active(command)
        await self._close(session.id)
        closed = await self._store.get_session(session.id)
        if closed is not None and closed.state is SessionState.CLOSED:
            return CommandReply(text=f"Session #{session.id} closed; the recap is posted.")
        return CommandReply(text=f"Session #{session.id} is closing; the recap follows as soon as it can be posted.")

    async def _cmd_cancel(self, command: CommandInvoked) -> CommandReply:
        self._require_organiser(command.member)
        session = await self._active(command)
        async with self._locks[session.id]:
            moved = await self._store.set_session_state(
                session.id, ACTIVE_STATES, SessionState.CANCELLED, at=self._clock()
            )
            if not moved:
                raise CommandError("That session has just ended.")
            await self._drop_pending(session.id)
            self._wakeups.cancel(f"open:{session.id}")
            for key, target in list(self._threads.items()):
                if target.session_id == session.id:
                    del self._threads[key]
            await self._deliver(session, "notice:cancelled", compose.cancelled(session))
        self._ended[session.id].set()
        return CommandReply(text=f"Session #{session.id} cancelled; no recap will be posted.")

    async def _cmd_status(self, command: CommandInvoked) -> CommandReply:
        session = await self._store.active_session(command.channel) or await self._store.latest_session(command.channel)
        if session is None:
            return CommandReply(text="No popup session has run in this channel yet. Start one with /popup start.")
        prompts = await self._store.prompts(session.id)
        stats = await self._store.session_stats(session.id)
        return CommandReply(text=compose.status(session, prompts, stats))

    async def _cmd_next(self, command: CommandInvoked) -> CommandReply:
        self._require_organiser(command.member)
        session = await self._active(command)
        prompts = await self._store.prompts(session.id)
        upcoming = next((p for p in prompts if p.state is PromptState.PENDING), None)
        if upcoming is None:
            raise CommandError("Every prompt of this session is already out. /popup stop closes it with the recap.")
        self._wakeups.cancel(f"prompt:{upcoming.id}")
        await self._post_prompt(session.id, upcoming.id, on_demand=True)
        return CommandReply(text=f"Prompt {upcoming.position} of {len(prompts)} posted.")

    async def _cmd_plans(self, command: CommandInvoked) -> CommandReply:
        lines = []
        for plan in self._plans.values():
            default = " (default)" if plan.name == self._settings.default_plan else ""
            times = ", ".join(str(p.at) for p in plan.prompts)
            lines.append(
                f"{plan.name}{default}: “{plan.title}”, {len(plan.prompts)} prompts at {times}; recap {plan.recap_at}"
            )
        return CommandReply(text="\n".join(lines) or "No plans are configured.")

    async def _cmd_forget(self, command: CommandInvoked) -> CommandReply:
        session = await self._store.active_session(command.channel) or await self._store.latest_session(command.channel)
        if session is None:
            raise CommandError("No popup session has run in this channel, so there is nothing to forget.")
        removed = await self._store.forget_author(session.id, command.member.platform, command.member.user_id)
        already = " The recap already posted can't be changed, but" if session.state is SessionState.CLOSED else ""
        return CommandReply(
            text=f"Removed your {removed} repl{'ies' if removed != 1 else 'y'} from session #{session.id}."
            f"{already} Exports and artifacts made from now on leave them out."
        )
