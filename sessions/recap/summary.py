"""The recap at the day's end: the story of the session as a compact chat message, with the
article (Markdown and HTML) and the participation chart attached.

The message is neutral content (:mod:`sessions.model`): member text travels verbatim in
``Quote.text`` and each adapter escapes it, so a quoted ``@everyone`` or ``<!channel>`` stays
plain text on every platform. In anonymous sessions no ``Quote`` carries an author.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sessions.compose import local_day
from sessions.model import Attachment, Message, Quote, Section
from sessions.recap.article import article_view, render_html, render_markdown
from sessions.recap.chart import chart_of_counts, render_chart
from sessions.recap.narrative import Narrative, ProseModel, gather_narrative
from sessions.recap.ranking import RankedReply
from sessions.recap.story import Counts, PromptStory, Story, gather_story
from sessions.records import SessionRecord
from sessions.store import Store

_log = logging.getLogger(__name__)

_QUOTE_CHARS = 200
_PROMPT_CHARS = 160
_DAY_THEMES_IN_MESSAGE = 6
# Channel lines in the recap message. A day in hundreds of channels would otherwise post a table
# longer than the recap (three Discord messages a channel for 200 channels); the busiest are shown
# and the article names every channel.
_CHANNEL_LINES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Recap:
    message: Message
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifacts:
    """The rendered artifacts of one story."""

    markdown: str
    html: str
    chart_png: bytes


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, cut at a word where possible."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def attachment_names(session: SessionRecord) -> tuple[str, str, str]:
    stem = f"popup-{session.id}"
    return f"{stem}-article.md", f"{stem}-article.html", f"{stem}-chart.png"


def render_artifacts(
    story: Story, *, chart_ref: str | None, chart_png: bytes | None = None, narrative: Narrative | None = None
) -> Artifacts:
    """Chart (unless already drawn), Markdown and HTML of a story (CPU work: callers run it in a
    thread). With ``narrative`` the article opens with the day's story."""
    chart = render_chart(story) if chart_png is None else chart_png
    view = article_view(story, narrative)
    return Artifacts(
        markdown=render_markdown(story, chart_ref=chart_ref, view=view),
        html=render_html(story, chart_png=chart, view=view),
        chart_png=chart,
    )


def recap_message(story: Story, narrative: Narrative | None = None) -> Message:
    session = story.session
    sections: list[Section] = []
    reached = [p for p in story.prompts if p.reached]
    # Keep the message short enough to read in chat: fewer quotes when there are many prompts.
    quotes_each = 3 if len(reached) <= 3 else 2 if len(reached) <= 6 else 1
    for p in reached:
        sections.append(_prompt_section(story, p, quotes_each))
    if narrative is not None and narrative.themes:
        labels = [t.label for t in narrative.themes[:_DAY_THEMES_IN_MESSAGE]]
        sections.append(Section(heading="Themes of the day", lines=(" · ".join(labels),)))
    elif story.themes:
        phrases = [t.phrase for t in story.themes[:_DAY_THEMES_IN_MESSAGE]]
        sections.append(Section(heading="Themes of the day", lines=(" · ".join(phrases),)))
    if story.across_channels:
        sections.append(_channels_section(story))
    missed = [p for p in story.prompts if p.missed]
    if missed:
        sections.append(
            Section(
                heading="Missed prompts",
                lines=tuple(
                    f"{p.prompt.position}. {shorten(p.prompt.text, _PROMPT_CHARS)} (the bot was away when it fell due)"
                    for p in missed
                ),
            )
        )
    skipped = [p for p in story.prompts if p.skipped and not p.reached]
    if skipped:
        sections.append(
            Section(
                heading="Not reached",
                lines=tuple(
                    f"{p.prompt.position}. {shorten(p.prompt.text, _PROMPT_CHARS)} (the session ended first)"
                    for p in skipped
                ),
            )
        )
    thanks = "Thank you all for learning together."
    if story.participants == 1:
        thanks = "Thank you for taking part."
    sections.append(
        Section(
            heading="Thank you",
            lines=(f"{thanks} The full article of the day and a participation chart are attached.",),
        )
    )
    day = local_day(session.started_at, session.timezone)
    people = _plural(story.participants, "person", "people")
    replies = _plural(story.replies, "reply", "replies")
    body = f"{day}: {people} took part, with {replies}"
    body += f" and {_plural(story.reactions, 'reaction', 'reactions')}." if story.reactions else "."
    if story.across_channels:
        body += f" The day ran in {_plural(len(story.channels), 'channel', 'channels')} on {_and(story.platforms)}."
    if story.linked:
        body += (
            f" {_plural(len(story.linked), 'member', 'members')} linked their accounts across platforms "
            "and count once."
        )
    if session.anonymous:
        body += " This session was anonymous, so no names appear."
    return Message(title=f"Recap: {session.title}", body=body, sections=tuple(sections))


def _prompt_section(story: Story, p: PromptStory, quotes_each: int) -> Section:
    line = f"{_plural(p.replies, 'reply', 'replies')} from {_plural(p.participants, 'person', 'people')}"
    if p.themes:
        line += " · themes: " + ", ".join(t.phrase for t in p.themes[:3])
    quotes = tuple(
        Quote(
            text=shorten(reply.text, _QUOTE_CHARS),
            author=None if story.anonymous else reply.author_name,
            note=_note(story, reply),
        )
        for reply in p.highlights[:quotes_each]
    )
    return Section(
        heading=f"{p.prompt.position}. {shorten(p.prompt.text, _PROMPT_CHARS)}",
        lines=(line,),
        quotes=quotes,
    )


def _note(story: Story, reply: RankedReply) -> str:
    """What a quote says beside its words: its reactions, and where it was written."""
    parts = [_plural(reply.reactions, "reaction", "reactions")] if reply.reactions else []
    where_from = story.where_from(reply)
    if where_from:
        parts.append(f"in {where_from}")
    return " · ".join(parts)


def _channels_section(story: Story) -> Section:
    """A line per channel: the per-channel table of a day that ran in several (the busiest
    :data:`_CHANNEL_LINES` of a bigger day, in the day's order, and a line for the rest)."""
    channels = story.channels
    kept = set(range(len(channels)))
    if len(channels) > _CHANNEL_LINES:
        busiest = sorted(kept, key=lambda i: (-channels[i].replies, -channels[i].people, i))
        kept = set(busiest[:_CHANNEL_LINES])
    shown = [c for i, c in enumerate(channels) if i in kept]
    rest = [c for i, c in enumerate(channels) if i not in kept]
    lines = []
    for channel in shown:
        line = (
            f"{channel.where}: {_plural(channel.replies, 'reply', 'replies')} "
            f"from {_plural(channel.people, 'person', 'people')}"
        )
        if channel.reactions:
            line += f", {_plural(channel.reactions, 'reaction', 'reactions')}"
        if channel.left:
            line += " (left early)"
        lines.append(line)
    if rest:
        lines.append(
            f"…and {_plural(len(rest), 'more channel', 'more channels')} with "
            f"{_plural(sum(c.replies for c in rest), 'reply', 'replies')} between them; "
            "the article names every channel."
        )
    return Section(heading="Channels", lines=tuple(lines))


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _discard(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def build_recap(store: Store, session: SessionRecord, *, model: ProseModel | None = None) -> Recap:
    """The recap of ``session``; with ``model`` (a writer model) the story's prose may be rewritten
    by it, under the grounding check (:mod:`sessions.recap.narrative`)."""
    charts: list[asyncio.Future[bytes]] = []

    def draw(counts: Counts) -> None:
        # The chart needs only the counts: drawn in a thread while the themes are found, it
        # fills the time either thread spends waiting (on the store, on the GIL).
        charts.append(asyncio.ensure_future(asyncio.to_thread(chart_of_counts, counts, session.timezone)))

    try:
        story = await gather_story(store, session, on_counts=draw)
        chart_png = await charts[0] if charts else None
    finally:
        for chart in charts:
            if not chart.done():
                # A thread cannot be stopped: let it finish, and its result (or error) go.
                chart.add_done_callback(_discard)
    narrative = await gather_narrative(store, story, model=model)
    md_name, html_name, chart_name = attachment_names(session)
    artifacts = await asyncio.to_thread(
        render_artifacts, story, chart_ref=chart_name, chart_png=chart_png, narrative=narrative
    )
    _log.info(
        "recap of session %d: %d replies, %d people, %d themes",
        session.id,
        story.replies,
        story.participants,
        len(narrative.themes),
    )
    return Recap(
        message=recap_message(story, narrative),
        attachments=(
            Attachment(filename=md_name, content_type="text/markdown; charset=utf-8", data=artifacts.markdown.encode()),
            Attachment(filename=html_name, content_type="text/html; charset=utf-8", data=artifacts.html.encode()),
            Attachment(filename=chart_name, content_type="image/png", data=artifacts.chart_png),
        ),
    )
