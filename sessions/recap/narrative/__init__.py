"""The day's story: an article that reads as a narrative of what the community said.

:func:`gather_narrative` reads the replies the recap already ranked (each prompt's most liked, at
most ``ARTICLE_LIMIT`` of them: bounded whatever the size of the day), finds the themes that ran
through the day by meaning (:mod:`.themes`), writes the story offline (:mod:`.narrator`), checks
that nothing in it is invented (:mod:`.grounding`), and, when a writer model is configured, lets
the model rewrite the prose under the same check (:mod:`.rewrite`). :mod:`.render` turns the
draft into Markdown and HTML.

Offline, with no model and no dependency beyond the standard library: the concept lexicon and
the clustering are ours (see their modules for what they support).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from sessions.recap.narrative.draft import Draft, Section
from sessions.recap.narrative.grounding import Facts, Ungrounded, Voice, check
from sessions.recap.narrative.narrator import DayInput, ThemeInput, write
from sessions.recap.narrative.rewrite import ProseModel, ProseModelError, rewrite
from sessions.recap.narrative.themes import find_themes
from sessions.recap.story import Story
from sessions.store import Store

__all__ = ["Narrative", "ProseModel", "ProseModelError", "StoryTheme", "gather_narrative", "tell"]

_log = logging.getLogger(__name__)

_PLATFORMS = {"slack": "Slack", "discord": "Discord", "console": "the console", "email": "e-mail", "web": "the web"}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryTheme:
    label: str
    reply_ids: tuple[int, ...]  # ascending
    prompts: tuple[int, ...]  # positions of the prompts its replies answer, ascending
    people: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Narrative:
    themes: tuple[StoryTheme, ...]
    draft: Draft  # grounded: every quote carries its reply id
    facts: Facts
    written_by: str  # "offline", or the writer model's name
    sampled: int  # replies read
    of: int  # standing replies there were

    @property
    def complete(self) -> bool:
        return self.sampled >= self.of


def tell(story: Story, channels: dict[int, str] | None = None) -> Narrative:
    """The offline story of ``story`` (CPU work: callers run it in a thread).

    ``channels`` names each reply's channel for attributions (reply id -> label); leave it out
    when the session has one channel.
    """
    session = story.session
    channels = channels or {}
    voices = sorted(
        (
            Voice(
                id=r.id,
                prompt=p.prompt.position,
                author=r.author_name,
                channel=channels.get(r.id, ""),
                text=r.text,
                reactions=r.reactions,
            )
            for p in story.prompts
            for r in p.ranked
        ),
        key=lambda v: v.id,
    )
    found = find_themes([v.text for v in voices])
    inputs = [ThemeInput(label=t.label, reply_ids=tuple(voices[i].id for i in t.members)) for t in found]
    day = DayInput(
        prompts=tuple((p.prompt.position, p.prompt.text, p.replies) for p in story.prompts),
        participants=story.participants,
        replies=story.replies,
        reactions=story.reactions,
        channels=len(session.channels),
        platforms=tuple(dict.fromkeys(_PLATFORMS.get(c.platform, c.platform) for c in session.channels)),
        anonymous=session.anonymous,
        sampled=len(voices),
    )
    draft, facts = write(day, inputs, voices)
    try:
        draft = check(draft, facts)
    except Ungrounded as exc:
        # Cannot happen by construction (the tests hold it); if it ever does, publish the counts only.
        _log.error("story: the offline draft failed its own grounding check (%s); publishing the counts only", exc)
        draft = Draft(sections=(Section(heading=draft.sections[0].heading, paragraphs=draft.sections[0].paragraphs),))
        facts = replace(facts, voices_due=frozenset())
    by_id = {v.id: v for v in voices}
    themes = tuple(
        StoryTheme(
            label=t.label,
            reply_ids=tuple(sorted(t.reply_ids)),
            prompts=tuple(sorted({by_id[rid].prompt for rid in t.reply_ids})),
            people=len({by_id[rid].author for rid in t.reply_ids}),
        )
        for t in inputs
    )
    return Narrative(
        themes=themes, draft=draft, facts=facts, written_by="offline", sampled=len(voices), of=story.replies
    )


async def gather_narrative(store: Store, story: Story, *, model: ProseModel | None = None) -> Narrative:
    """The story of the day: offline, then (with ``model``) rewritten by the model if its draft
    passes the grounding check."""
    channels = _channel_labels(story) if len(story.session.channels) > 1 else None
    narrative = await asyncio.to_thread(tell, story, channels)
    if model is None or not narrative.themes or (not narrative.facts.voices_due and not narrative.facts.anonymous):
        return narrative
    better = await rewrite(narrative.draft, narrative.facts, model)
    if better is None:
        return narrative
    return Narrative(
        themes=narrative.themes,
        draft=better,
        facts=narrative.facts,
        written_by=model.name,
        sampled=narrative.sampled,
        of=narrative.of,
    )


def _channel_labels(story: Story) -> dict[int, str]:
    """Each read reply's channel, as an attribution names it: ``#C0123 on Slack``, or in an
    anonymous session a stand-in (``channel 2``) numbered as the session lists its channels."""
    session = story.session
    order = {(c.platform, c.channel_id): i for i, c in enumerate(session.channels, start=1)}
    labels: dict[int, str] = {}
    for p in story.prompts:
        for reply in p.ranked:
            if session.anonymous:
                number = order.get((reply.platform, reply.channel_id))
                labels[reply.id] = f"channel {number}" if number else "another channel"
            else:
                labels[reply.id] = f"#{reply.channel_id} on {_PLATFORMS.get(reply.platform, reply.platform)}"
    return labels
