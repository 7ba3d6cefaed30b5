"""The mid-day pulse: each channel hears how the day goes everywhere, and a few voices from the
*other* channels (the plan's ``pulse_at``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing

from sessions import compose
from sessions.channels import channel_homes, home_of, names_of, where
from sessions.model import ChannelRef, Message, Quote
from sessions.records import PromptState, RankedRow, SessionRecord
from sessions.store import Store, recap_queries

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
