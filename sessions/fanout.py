"""Every channel of a session gets the whole day: the fan-out of each step, and the catch-up of a
channel that fell behind or joined late.

A step (the opening, a prompt, the pulse, the recap) is done once at least one channel has it; a
channel that could not take it is caught up on its own, retried on the configured delays, and the
organiser is told once. Posts go out through the ledger (:mod:`sessions.ledger`), which keeps each
one to once per channel; this module only decides what each channel should have and when to try.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from sessions import compose
from sessions.cluster import Turns
from sessions.errors import ChannelBusy
from sessions.ledger import Ledger, Outgoing
from sessions.model import ChannelRef, Message
from sessions.records import PromptRecord, PromptState, SessionRecord, SessionState
from sessions.settings import EngineSettings
from sessions.store import Store
from sessions.wakeups import Clock, WakeupScheduler

if TYPE_CHECKING:
    from sessions.recap import Recap

_log = logging.getLogger(__name__)

# How long after its close a session's recap is still brought to a channel that could not take it
# (its platform down, the bot removed for a while). Kept in the database: a restart goes on with it.
RECAP_CATCH_UP = timedelta(days=1)

RecapBuilder = Callable[[Store, SessionRecord], Awaitable["Recap"]]

_GONE = (SessionState.CANCELLED, SessionState.FAILED)  # sessions whose channels get nothing more


class ChannelFanOut:
    """``lock`` is the engine's per-session lock; ``recap`` builds the recap (once per session);
    ``channel_name`` asks the channel's adapter for its name."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: Ledger,
        settings: EngineSettings,
        wakeups: WakeupScheduler,
        clock: Clock,
        turns: Turns,
        lock: Callable[[int], asyncio.Lock],
        recap: RecapBuilder,
        channel_name: Callable[[ChannelRef], Awaitable[str | None]],
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._settings = settings
        self._wakeups = wakeups
        self._clock = clock
        self._turn = turns
        self._lock = lock
        self._build_recap = recap
        self._channel_name = channel_name
        self._recaps: dict[int, Message] = {}  # the recap as posted, for channels that get it late
        self._told: set[tuple[int, ChannelRef]] = set()  # outage notices already given

    async def recap_message(self, session: SessionRecord) -> Message:
        message = self._recaps.get(session.id)
        if message is not None:
            return message
        recap = await self._build_recap(self._store, session)
        message = recap.message
        if recap.attachments:
            message = Message(
                title=message.title,
                body=message.body,
                sections=message.sections,
                attachments=message.attachments + recap.attachments,
            )
        self._recaps[session.id] = message
        return message

    def opening(self, session: SessionRecord, prompts: Sequence[PromptRecord]) -> list[Outgoing]:
        return [Outgoing(key="opening", content=compose.opening(session, prompts))]

    async def issued(
        self,
        session: SessionRecord,
        prompts: Sequence[PromptRecord],
        *,
        upto: PromptRecord | None = None,
        recap: Message | None = None,
    ) -> list[Outgoing]:
        """What every channel of the session should have, in order: the opening, each prompt under
        way or out (up to ``upto``, which is going out now), and the ``recap`` when it is."""
        outbox = self.opening(session, prompts)
        for prompt in prompts:
            if upto is not None and prompt.position > upto.position:
                break
            if prompt.id == (upto.id if upto else None) or prompt.state in (PromptState.POSTING, PromptState.POSTED):
                outbox.append(
                    Outgoing(
                        key=f"prompt:{prompt.position}",
                        content=compose.prompt(session, prompt, len(prompts)),
                        prompt_id=prompt.id,
                        thread=True,
                    )
                )
        if recap is not None:
            outbox.append(Outgoing(key="recap", content=recap))
        return outbox

    async def fan_out(self, session: SessionRecord, outbox: Sequence[Outgoing]) -> bool:
        """Every channel brought up to the end of ``outbox`` at once. True when at least one channel
        has all of it: the step is done, and a channel that could not take it catches up on its own
        (the organiser is told once). False when no channel could: the whole step is tried again."""
        delivery = await self._ledger.fan_out(session, outbox)
        if not delivery.complete:
            return False
        for channel in delivery.behind:
            self.catch_up_later(session.id, channel, 0)
            await self._tell_outage(session, channel, delivery.complete)
        return True

    def catch_up_later(self, session_id: int, channel: ChannelRef, attempt: int) -> None:
        delays = self._settings.retry_delays
        when = self._clock() + timedelta(seconds=delays[min(attempt, len(delays) - 1)])
        job = f"catchup:{session_id}:{channel.platform}:{channel.channel_id}"
        self._wakeups.at(job, when, self.catch_up, session_id, channel, attempt + 1)

    async def catch_up(self, session_id: int, channel: ChannelRef, attempt: int = 0) -> bool:
        """Post in ``channel`` what the session has posted elsewhere and it lacks, in order; True
        when it has everything. Tried again later while it cannot (up to the configured attempts)."""
        job = f"catchup:{session_id}:{channel.platform}:{channel.channel_id}"
        async with self._turn(session_id, job, self.catch_up, session_id, channel, attempt) as mine:
            if not mine:
                return False
            session = await self._store.get_session(session_id)
            if session is None or channel not in session.channels or session.state in _GONE:
                return True
            prompts = await self._store.prompts(session_id)
            recap = await self.recap_message(session) if session.state is SessionState.CLOSED else None
            delivery = await self._ledger.fan_out(session, await self.issued(session, prompts, recap=recap), [channel])
            if not delivery.behind:
                return True
        if attempt < self._settings.catch_up_attempts:
            self.catch_up_later(session_id, channel, attempt)
        else:
            _log.warning(
                "session %d: giving up on %s channel %s for now (tried %d times); it is tried again with the next post",
                session_id, channel.platform, channel.channel_id, attempt,
            )
        return False

    async def _tell_outage(self, session: SessionRecord, channel: ChannelRef, healthy: Sequence[ChannelRef]) -> None:
        """Tell the organiser once (in the session's first channel, or the first that works) that
        ``channel`` cannot be posted in; the ledger keeps it to one notice per channel and session."""
        if (session.id, channel) in self._told:
            return
        self._told.add((session.id, channel))
        target = session.channel if session.channel in healthy else healthy[0]
        names = {c.channel: c.name for c in await self._store.session_channels(session.id)}
        notice = Outgoing(
            key=f"notice:outage:{channel.platform}:{channel.channel_id}",
            content=compose.outage(session, channel, names.get(channel)),
        )
        await self._ledger.fan_out(session, [notice], [target])

    async def channel_joined(self, session_id: int, channel: ChannelRef) -> bool:
        self._wakeups.cancel(f"catchup:{session_id}:{channel.platform}:{channel.channel_id}")
        # Under the session's lock: a prompt going out meanwhile either saw the channel or is posted
        # by the time the catch-up looks; without it, a prompt half-way out would miss the channel.
        async with self._lock(session_id):
            return await self.catch_up(session_id, channel)

    def channel_left(self, session_id: int, channel: ChannelRef) -> None:
        self._wakeups.cancel(f"catchup:{session_id}:{channel.platform}:{channel.channel_id}")

    async def attach_channel(self, session_id: int, channel: ChannelRef) -> bool:
        """Make ``channel`` one of an active session's channels and catch it up, as ``/popup join``
        does (the store's :meth:`~sessions.store.Store.attach_channel`, then :meth:`channel_joined`).

        True when the channel has everything the session has posted so far (or the session has
        ended: nothing to add); False when the catch-up goes on later. Raises :class:`ChannelBusy`
        when another running session holds the channel.
        """
        session = await self._store.get_session(session_id)
        if session is None or session.state.is_terminal:
            return True
        if channel not in session.channels:
            name = await self._channel_name(channel)
            holder = await self._store.attach_channel(session_id, channel, name=name)
            if holder is not None:
                raise ChannelBusy(
                    f"{channel.platform} channel {channel.channel_id} is already in session #{holder}, "
                    f"which is still running: it cannot join session #{session_id}"
                )
        if session.state is SessionState.SCHEDULED:
            return True  # open_session posts the opening in every channel, this one included
        return await self.channel_joined(session_id, channel)
