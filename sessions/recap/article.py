"""The article of the day, as Markdown and as one self-contained HTML page.

Both come from Jinja2 templates (``templates/``). Member text never becomes markup:

* HTML: autoescaping is on for the whole template, and the page carries a Content-Security-Policy
  that allows no script at all, inline styles and ``data:`` images only.
* Markdown: every ``{{ … }}`` passes through :func:`md_escape` (Jinja's ``finalize``), the Markdown
  counterpart of autoescaping, so a reply cannot open a link, image, heading, list, table, code
  span or raw HTML. Only values wrapped in :class:`MdSafe` (built here, from escaped parts) pass
  as they are.

Attribution: in ordinary sessions each reply shows its author's display name. In anonymous
sessions no name appears at all — not even stable pseudonyms such as "Participant 3", because a
pseudonym links a person's replies together and that alone can identify them.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from sessions.compose import local_day, local_time
from sessions.recap.ranking import RankedReply
from sessions.recap.story import ARTICLE_LIMIT, PromptStory, Story
from sessions.records import PromptState

_log = logging.getLogger(__name__)

THEME_LINKS = 12  # replies linked per theme in the article; the JSON lists them all

# -- Markdown escaping ----------------------------------------------------------------------------


class MdSafe(str):
    """Markdown built here from escaped parts; passes :func:`md_escape` unchanged."""

    __slots__ = ()


# Characters with inline meaning anywhere in a line (CommonMark + GFM): emphasis, code, links and
# images (a "[" is needed for both), raw HTML and autolinks ("<"), entities ("&"), tables ("|"),
# strikethrough ("~"), headings ("#": escaped everywhere, it costs nothing).
_INLINE = re.compile(r"([\\`*_\[\]<>&|~#])")
# Block structure at the start of a line: bullet lists, setext heading underlines ("=", "-"),
# ordered lists ("1." / "1)"); ">" and "#" are already escaped above.
_LINE_START = re.compile(r"^([ \t]*)([+\-=]|\d+(?=[.)]))")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")


def _escape_start(match: re.Match[str]) -> str:
    indent, mark = match.group(1), match.group(2)
    return f"{indent}{mark}\\" if mark[0].isdigit() else f"{indent}\\{mark}"


# Anything md_escape would change; most short values (names, counts) have none of it.
_NEEDS_ESCAPE = re.compile(r"[\\`*_\[\]<>&|~#\n\r\u2028\u2029\x85\x0b\x0c]|^[ \t]*(?:[+\-=]|\d+[.)])")


def md_escape(value: object) -> str:
    """Plain text as inert Markdown (line breaks kept as soft breaks)."""
    if isinstance(value, MdSafe):
        return value
    if value is None:
        return ""
    text = str(value)
    if not _NEEDS_ESCAPE.search(text):
        return text
    text = _NEWLINES.sub("\n", text)
    return "\n".join(_LINE_START.sub(_escape_start, _INLINE.sub(r"\\\1", line)) for line in text.split("\n"))


def md_inline(value: object) -> MdSafe:
    """Text on one line (a heading, a list item): line breaks become spaces."""
    return MdSafe(md_escape(" ".join(str(value).split())))


def md_quote(value: object) -> MdSafe:
    """A blockquote of the text, every line inside the quote."""
    escaped = md_escape(value).split("\n")
    return MdSafe("\n".join(f"> {line}" if line else ">" for line in escaped))


# -- shared view helpers --------------------------------------------------------------------------


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _state_note(p: PromptStory) -> str:
    state = p.prompt.state
    if state is PromptState.MISSED:
        return "missed: the bot was away when it fell due"
    if state is PromptState.SKIPPED:
        return "not reached: the session ended first"
    if state is PromptState.POSTED:
        return ""
    return "not posted"


@dataclass(frozen=True, slots=True)
class ReplyView:
    """One reply as the article shows it, worked out once for both templates."""

    id: int
    label: MdSafe  # "2.14": digits and a dot of our own making
    author: str  # "" in anonymous sessions
    time: MdSafe  # "09:14": our own digits
    note: MdSafe  # " · 3 reactions · edited": our words only
    star: bool  # one of the prompt's highlights
    text: str


@dataclass(frozen=True, slots=True)
class SectionView:
    story: PromptStory
    replies: tuple[ReplyView, ...]


def article_view(story: Story) -> dict[str, Any]:
    """The templates' context. Build it once when rendering both Markdown and HTML."""
    session = story.session
    tz = session.timezone
    zone = ZoneInfo(tz)
    # Seconds only matter in a compressed session (a demo's "+20s" prompts), not in a real day.
    clock = "%H:%M:%S" if story.timeline.width.total_seconds() < 60 else "%H:%M"

    def when(moment: datetime) -> str:
        return local_time(moment, tz)

    def links(ids: Iterable[int], cap: int = THEME_LINKS) -> tuple[list[tuple[int, MdSafe]], int]:
        shown = [(rid, MdSafe(story.labels[rid])) for rid in ids if rid in story.labels]
        return shown[:cap], max(0, len(shown) - cap)

    def prompt_numbers(prompt_ids: Sequence[int]) -> str:
        return ", ".join(str(story.prompt_by_id(pid).prompt.position) for pid in prompt_ids)

    def reply_view(reply: RankedReply, star: bool) -> ReplyView:
        note = ""
        if reply.reactions:
            note = f" · {_plural(reply.reactions, 'reaction')}"
        if reply.edited:
            note += " · edited"
        return ReplyView(
            id=reply.id,
            label=MdSafe(story.labels[reply.id]),
            author="" if story.anonymous else reply.author_name,
            time=MdSafe(reply.created_at.astimezone(zone).strftime(clock)),
            note=MdSafe(note),
            star=star,
            text=reply.text,
        )

    sections = []
    for p in story.prompts:
        if not p.reached:
            continue
        stars = {r.id for r in p.highlights}
        sections.append(SectionView(story=p, replies=tuple(reply_view(r, r.id in stars) for r in p.shown)))
    return {
        "story": story,
        "session": session,
        "day": local_day(session.started_at, tz),
        "tz": tz,
        "when": when,
        "links": links,
        "prompt_numbers": prompt_numbers,
        "plural": _plural,
        "state_note": _state_note,
        "limit": ARTICLE_LIMIT,
        "sections": sections,
        "missed": [p for p in story.prompts if p.missed],
        "busiest": _busiest(story),
    }


def _busiest(story: Story) -> str:
    totals = story.timeline.totals
    if not totals or not any(totals):
        return ""
    best = max(range(len(totals)), key=lambda i: (totals[i], -i))
    return f"{story.timeline.labels[best]} ({_plural(totals[best], 'reply', 'replies')})"


# -- rendering ------------------------------------------------------------------------------------

_LOADER = jinja2.PackageLoader("sessions.recap", "templates")
_HTML = jinja2.Environment(
    loader=_LOADER,
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_MD = jinja2.Environment(
    loader=_LOADER,
    autoescape=False,
    finalize=md_escape,  # Markdown's autoescape: see the module docstring
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_MD.filters.update(inline=md_inline, quote=md_quote)


def render_markdown(story: Story, *, chart_ref: str | None = None, view: dict[str, Any] | None = None) -> str:
    """The article in Markdown; ``chart_ref`` is the chart's file name beside it, if there is one."""
    template = _MD.get_template("article.md.j2")
    return template.render(**(view or article_view(story)), chart_ref=chart_ref)


def render_html(story: Story, *, chart_png: bytes | None = None, view: dict[str, Any] | None = None) -> str:
    """The article as one self-contained page (styles inline, the chart as a data: URI)."""
    chart_uri = "data:image/png;base64," + base64.b64encode(chart_png).decode("ascii") if chart_png else None
    template = _HTML.get_template("article.html.j2")
    return template.render(**(view or article_view(story)), chart_uri=chart_uri)
