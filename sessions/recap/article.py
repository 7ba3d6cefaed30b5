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
pseudonym links a person's replies together and that alone can identify them. No platform id
(user, channel or message) appears in either kind of session: replies are named by their place in
the article (``2.3``), and times by the clock to the second at most, so the article holds no key to
a message on its platform (see exports.py for the same rule in the data exports).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from sessions.compose import local_day, local_time
from sessions.recap.story import ARTICLE_LIMIT, PromptStory, Story
from sessions.records import PromptState

if TYPE_CHECKING:
    from sessions.recap.narrative import Narrative

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


# Anything md_escape would change; most values (names, counts, most replies) have none of it. Two
# patterns, not one alternation: a lone character class is scanned for in C, several times faster.
_NEEDS_ESCAPE = re.compile(r"[\\`*_\[\]<>&|~#\n\r\u2028\u2029\x85\x0b\x0c]")
_NEEDS_ESCAPE_AT_START = re.compile(r"[ \t]*(?:[+\-=]|\d+[.)])")


def md_escape(value: object) -> str:
    """Plain text as inert Markdown (line breaks kept as soft breaks)."""
    if isinstance(value, MdSafe):
        return value
    if value is None:
        return ""
    text = str(value)
    if not (_NEEDS_ESCAPE.search(text) or _NEEDS_ESCAPE_AT_START.match(text)):
        return text
    text = _NEWLINES.sub("\n", text)
    return "\n".join(_LINE_START.sub(_escape_start, _INLINE.sub(r"\\\1", line)) for line in text.split("\n"))


def md_inline(value: object) -> MdSafe:
    """Text on one line (a heading, a list item): line breaks become spaces."""
    return MdSafe(md_escape(" ".join(str(value).split())))


def md_quote(value: object) -> MdSafe:
    """A blockquote of the text, every line inside the quote."""
    escaped = md_escape(value)
    if "\n" not in escaped:  # the usual case: one line
        return MdSafe(f"> {escaped}" if escaped else ">")
    return MdSafe("\n".join(f"> {line}" if line else ">" for line in escaped.split("\n")))


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
class SectionView:
    """One prompt's section. Its replies are rendered once, for both templates, by
    :func:`_render_replies`: a few thousand replies through Jinja2's per-item machinery would
    cost more than the rest of the article together."""

    story: PromptStory
    count: int  # replies shown
    html: Markup  # the ``<li>`` items, every member-written part escaped with markupsafe
    markdown: MdSafe  # the reply blocks, every member-written part through md_escape


class _Clock:
    """UTC datetimes as the session's local wall-clock time (``09:14`` or ``09:14:05``), the same
    as ``moment.astimezone(zone).strftime(clock)``, with one zone lookup per quarter hour
    instead of one per reply."""

    __slots__ = ("_offsets", "_seconds", "_zone")

    _BUCKET = 900  # seconds; zone transitions fall on quarter hours (checked: see _offset)

    def __init__(self, zone: ZoneInfo, *, seconds: bool) -> None:
        self._zone = zone
        self._seconds = seconds
        self._offsets: dict[int, int | None] = {}

    def _offset(self, moment: datetime) -> int | None:
        """The zone's UTC offset in whole seconds throughout ``moment``'s bucket, or None when it
        changes inside the bucket (or is not whole seconds): then each moment is converted."""
        epoch = (moment - _EPOCH) // _SECOND
        bucket = epoch // self._BUCKET
        try:
            return self._offsets[bucket]
        except KeyError:
            pass
        start = _EPOCH + timedelta(seconds=bucket * self._BUCKET)
        first = start.astimezone(self._zone).utcoffset()
        last = (start + timedelta(seconds=self._BUCKET - 1)).astimezone(self._zone).utcoffset()
        offset: int | None = None
        if first is not None and first == last and not first.microseconds:
            offset = first.days * 86400 + first.seconds
        self._offsets[bucket] = offset
        return offset

    def __call__(self, moment: datetime) -> str:
        offset = self._offset(moment) if moment.tzinfo is UTC else None
        if offset is None:
            return moment.astimezone(self._zone).strftime("%H:%M:%S" if self._seconds else "%H:%M")
        day = (moment.hour * 3600 + moment.minute * 60 + moment.second + offset) % 86400
        if self._seconds:
            return f"{day // 3600:02d}:{day // 60 % 60:02d}:{day % 60:02d}"
        return f"{day // 3600:02d}:{day // 60 % 60:02d}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _render_replies(
    story: Story, p: PromptStory, clock: _Clock, names: dict[str, tuple[str, str]]
) -> tuple[Markup, MdSafe]:
    """The reply items of a section as HTML and as Markdown, in one pass over the replies.

    The output is exactly what the templates' per-reply markup gave (see the tests): HTML escaped
    by :func:`markupsafe.escape` (what Jinja2's autoescape calls), Markdown by :func:`md_escape`.
    """
    stars = {r.id for r in p.highlights}
    anonymous = story.anonymous
    html: list[str] = []
    md: list[str] = []
    prefix = f"{p.prompt.position}."
    for index, reply in enumerate(p.shown, start=1):
        label = f"{prefix}{index}"
        note = ""
        if reply.reactions:
            note = f" · {_plural(reply.reactions, 'reaction')}"
        if reply.edited:
            note += " · edited"
        where_from = story.where_from(reply)
        if where_from:
            note += f" · {where_from}"
        if story.is_late(reply):
            note += " · late: after the recap"
        html_author = md_author = ""
        if not anonymous and reply.author_name:
            parts = names.get(reply.author_name)
            if parts is None:
                parts = names[reply.author_name] = (
                    f' · <bdi class="author">{escape(reply.author_name)}</bdi>',
                    f" · {md_inline(reply.author_name)}",
                )
            html_author, md_author = parts
        time = clock(reply.created_at)
        star = reply.id in stars
        html.append(
            f'<li id="r{reply.id}"{_HIGHLIGHT if star else ""}><div class="head"><span class="label">{label}</span>'
            f"{html_author} · <time>{time}</time>{escape(note) if note else ''}{_BADGE if star else ''}</div>\n"
            f'<p class="text" dir="auto">{escape(reply.text)}</p></li>\n'
        )
        md.append(f"**{label}**{md_author} · {time}{note}{_MD_STAR if star else ''}\n\n{md_quote(reply.text)}\n\n")
    return Markup("".join(html)), MdSafe("".join(md))


_HIGHLIGHT = ' class="highlight"'
_BADGE = ' <span class="badge">most liked</span>'
_MD_STAR = " · *most liked*"


def article_view(story: Story, narrative: Narrative | None = None) -> dict[str, Any]:
    """The templates' context. Build it once when rendering both Markdown and HTML.

    With ``narrative`` the article opens with the day's story (:mod:`sessions.recap.narrative`)
    and the record of every reply follows it as an appendix; without, it is the record alone."""
    session = story.session
    tz = session.timezone
    # Seconds only matter in a compressed session (a demo's "+20s" prompts), not in a real day.
    clock = _Clock(ZoneInfo(tz), seconds=story.timeline.width.total_seconds() < 60)

    def when(moment: datetime) -> str:
        return local_time(moment, tz)

    def links(ids: Iterable[int], cap: int = THEME_LINKS) -> tuple[list[tuple[int, MdSafe]], int]:
        shown = [(rid, MdSafe(story.labels[rid])) for rid in ids if rid in story.labels]
        return shown[:cap], max(0, len(shown) - cap)

    def prompt_numbers(prompt_ids: Sequence[int]) -> str:
        return ", ".join(str(story.prompt_by_id(pid).prompt.position) for pid in prompt_ids)

    sections = []
    names: dict[str, tuple[str, str]] = {}  # author name -> its escaped HTML and Markdown parts
    for p in story.prompts:
        if not p.reached:
            continue
        html, markdown = _render_replies(story, p, clock, names)
        sections.append(SectionView(story=p, count=len(p.shown), html=html, markdown=markdown))
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
        **_story_view(story, narrative),
    }


def _story_view(story: Story, narrative: Narrative | None) -> dict[str, Any]:
    if narrative is None:
        return {"narrative": None, "story_md": MdSafe(""), "story_html": Markup("")}
    from sessions.recap.narrative.render import story_html, story_markdown

    asked = [p.prompt.text for p in story.prompts]
    voices = narrative.facts.voices
    anchors = {rid: f"r{rid}" for rid in story.labels}
    return {
        "narrative": narrative,
        "story_md": MdSafe(story_markdown(narrative.draft, voices, md_escape, asked=asked)),
        "story_html": story_html(narrative.draft, voices, anchors, asked=asked),
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


def render_markdown(
    story: Story,
    *,
    chart_ref: str | None = None,
    view: dict[str, Any] | None = None,
    narrative: Narrative | None = None,
) -> str:
    """The article in Markdown; ``chart_ref`` is the chart's file name beside it, if there is one."""
    template = _MD.get_template("article.md.j2")
    return template.render(**(view or article_view(story, narrative)), chart_ref=chart_ref)


def render_html(
    story: Story,
    *,
    chart_png: bytes | None = None,
    view: dict[str, Any] | None = None,
    narrative: Narrative | None = None,
) -> str:
    """The article as one self-contained page (styles inline, the chart as a data: URI)."""
    chart_uri = "data:image/png;base64," + base64.b64encode(chart_png).decode("ascii") if chart_png else None
    template = _HTML.get_template("article.html.j2")
    return template.render(**(view or article_view(story, narrative)), chart_uri=chart_uri)
