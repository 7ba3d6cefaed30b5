"""The mid-day pulse: each channel hears how the day goes everywhere, and a few voices from the
*other* channels (the plan's ``pulse_at``): what it says (:func:`pulse_digest`) and the step of the
day that posts it (:class:`PulseStep`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import aclosing

from sessions import compose
from sessions.channels import channel_homes, home_of, names_of, where
from sessions.cluster import Turns
from sessions.fanout import ChannelFanOut
from sessions.ledger import Ledger, Outgoing
from sessions.model import ChannelRef, Message, Quote
from sessions.records import PromptState, RankedRow, SessionRecord, SessionState
from sessions.settings import EngineSettings
from sessions.store import Store, recap_queries
from sessions.wakeups import Clock

_log = logging.getLogger(__name__)

HEARD = 3  # replies from other channels quoted in each channel's pulse
_CANDIDATES = 40  # best replies read per prompt to choose them from
_QUOTE_CHARS = 200


async def pulse_digest(store: Store, session: SessionRecord) -> Callable[[ChannelRef], Message]:
    """What the pulse says in each channel, read once for all of them."""
    queries = recap_queries(store)
    posts = await store.posts(session.id)
    homes = channel_homes(posts)
    names = names_of(await store.session_channels(session.id))
    figures = {f.channel: f for f in await store.channel_figures(session.id)}
    replies = sum(f.replies for f in figures.values())
    lines = compose.channel_lines(session.channels, figures, names)
    candidates: list[tuple[RankedRow, ChannelRef]] = []
    for prompt in await store.prompts(session.id):
        if prompt.state is not PromptState.POSTED:
            continue
        async with aclosing(queries.recap_ranked_rows(session.id, prompt.id, best=_CANDIDATES)) as batches:
            async for batch in batches:
                candidates += [(row, home_of(homes, row.platform, row.channel_id)) for row in batch[:_CANDIDATES]]
                break
    # The liked ones first, then the fuller ones: the same order the recap ranks by.
    candidates.sort(key=lambda pair: (-pair[0].reactions, -pair[0].size, pair[0].created_at))

    def digest(channel: ChannelRef) -> Message:
        heard: list[Quote] = []
        sources: set[ChannelRef] = set()
        # One voice per other channel first, so that each channel hears as many others as it can.
        for distinct in (True, False):
            for row, home in candidates:
                if len(heard) >= HEARD:
                    break
                if home == channel or (distinct and home in sources) or any(q.text == _short(row.text) for q in heard):
                    continue
                sources.add(home)
                heard.append(
                    Quote(
                        text=_short(row.text),
                        author=None if session.anonymous else row.author_name,
                        note="" if session.anonymous else f"in {where(home, names.get(home))}",
                    )
                )
        return compose.pulse(session, replies=replies, channel_lines=lines, heard=heard)

    return digest


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1].rstrip() + "…"


class PulseStep:
    """The pulse as one of the day's steps: in the session's lock and turn, posted once, retried on
    the configured delays like the engine's other steps (``retry_later`` is the engine's)."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: Ledger,
        settings: EngineSettings,
        clock: Clock,
        lock: Callable[[int], asyncio.Lock],
        turns: Turns,
        fanout: ChannelFanOut,
        retry_later: Callable[..., None],
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._settings = settings
        self._clock = clock
        self._lock = lock
        self._turn = turns
        self._fanout = fanout
        self._retry_later = retry_later  # (job_id, attempt, wake, *args)

    async def post_pulse(self, session_id: int, attempt: int = 0) -> None:
        """Each channel gets a digest of the day so far (the plan's ``pulse_at``), once."""
        wake = (f"pulse:{session_id}", self.post_pulse, session_id, attempt)
        async with self._lock(session_id), self._turn(session_id, *wake) as mine:
            session = await self._store.get_session(session_id) if mine else None
            if session is None or session.state is not SessionState.RUNNING or session.pulse_at is None:
                return
            if await self._ledger.posted_in(session, "pulse"):
                return  # out already (a restart, a duplicate wake-up)
            if self._clock() - session.pulse_at > self._settings.late_grace:
                _log.info("session %d: the pulse fell due while the bot was away; skipped", session_id)
                return
            prompts = await self._store.prompts(session_id)
            digest = await pulse_digest(self._store, session)
            outbox = [*await self._fanout.issued(session, prompts), Outgoing(key="pulse", content=digest)]
            if await self._fanout.fan_out(session, outbox) or attempt + 1 >= len(self._settings.retry_delays):
                return
        self._retry_later(f"pulse:{session_id}", attempt, self.post_pulse, session_id, attempt + 1)
