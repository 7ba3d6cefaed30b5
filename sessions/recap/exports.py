"""Exports of a session: the article (md, html), everything as JSON, every reply as CSV.

The JSON and CSV stream the replies straight from the store to the sink, so an export of a million
replies holds one batch in memory, not the session. :func:`write_artifacts` gathers the story once
and reads the replies once, writing the JSON and the CSV side by side.

JSON (``schema_version`` 2): ``session``, ``prompts``, ``participation``, ``highlights``,
``themes``, ``keywords``, ``theme_sample``, ``article`` and ``replies`` — one object per standing
reply (deleted and forgotten replies are not in the store's stream), each with ``id``, ``prompt`` (its position in the
timetable), ``prompt_id``, ``author``, ``text``, ``created_at``, ``platform``, ``channel``,
``channel_id``, ``message_id`` and ``late`` (written after the recap was posted: kept, not in the
posted recap). Highlights and themes refer to replies by ``id``: ``themes`` lists the ideas of the
day found by meaning, each a ``label`` and its ``reply_ids`` (with its ``prompts`` and number of
``people``); ``keywords.day`` and ``keywords.prompts`` hold the shared keyphrases (version 1 had
those in ``themes``). The session's ``channels`` name each channel it ran in (``name``, as its
adapter told it, or null) and the ``linked`` members.

Anonymous sessions: nothing in an export leads back to a person. ``author`` is null, and no user
id or starter appears. A platform's channel id and message id together name a message, and so its
author; on Slack the message id *is* its timestamp to the microsecond, and a Discord id encodes
its millisecond. So per reply ``message_id`` and ``channel_id`` are null (empty in the CSV),
``channel`` is a stand-in numbered per export — ``channel-1``, ``channel-2``… in the order of the
session's channels, then of first appearance — and ``created_at``/``edited_at`` keep whole seconds.
The session's ``channels`` carry the same stand-ins, so a reader can still tell the replies of
two channels apart. What stays — the words and the time to the second — is what the article shows
anyway; anyone who can read the channel can match them there, but the export hands out no key.
In ordinary sessions ``channel`` is the channel id, the same as ``channel_id``.

CSV: RFC 4180 (``\\r\\n`` line ends, quoting by the csv module), one row per reply, the same
fields as the JSON's replies. A cell that a spreadsheet would run as a formula is prefixed with
``'``: see :func:`neutralise`. Sinks should be opened with ``newline=""`` so line ends pass
unchanged.

Files (:func:`write_artifacts`) are private and never written through a symlink: see
:mod:`sessions.files`.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from sessions.files import private_bytes, private_folder, private_text
from sessions.model import ChannelRef
from sessions.recap.article import render_html, render_markdown
from sessions.recap.chart import render_chart
from sessions.recap.narrative import Narrative, ProseModel, gather_narrative
from sessions.recap.story import ARTICLE_LIMIT, ChannelStory, Story, gather_story
from sessions.recap.summary import Artifacts, render_artifacts
from sessions.records import ReplyRecord, SessionRecord
from sessions.store import Store

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
Format = Literal["md", "html", "json", "csv"]
FORMATS: tuple[Format, ...] = ("md", "html", "json", "csv")

CSV_COLUMNS = (
    "id",
    "prompt",
    "prompt_id",
    "created_at",
    "edited_at",
    "author",
    "author_id",
    "reactions",
    "edits",
    "platform",
    "channel",
    "channel_id",
    "message_id",
    "text",
    "late",
)
# A cell a spreadsheet may run: one that starts with a tab or a line break (OWASP), or whose first
# character past any whitespace (spreadsheets trim it) is a formula sign, ASCII or full-width (an
# East Asian input method types those, and spreadsheets take them as the ASCII ones).
_FORMULA_SIGNS = "=+-@＝＋－＠"
_RUNS_AT_ONCE = frozenset(_FORMULA_SIGNS + "\t\r\n")
_SIGN_PAST_WHITESPACE = re.compile(rf"\s*[{re.escape(_FORMULA_SIGNS)}]")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet will show as text, never evaluate (OWASP's CSV injection advice): the
    text itself, or ``'`` and the text — nothing else in it changes."""
    first = cell[:1]  # one set lookup decides most cells; the pattern runs only after whitespace
    if first in _RUNS_AT_ONCE or (first.isspace() and _SIGN_PAST_WHITESPACE.match(cell)):
        return "'" + cell
    return cell


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _iso_seconds(moment: datetime | None) -> str | None:
    """The moment to the second: finer, it can be a platform's message id (see the module docstring)."""
    return None if moment is None else moment.replace(microsecond=0).isoformat()


class _Channels:
    """What an export calls a reply's channel: its id, or in an anonymous session a stand-in
    (``channel-1``…) numbered by the session's channels, then by first appearance."""

    __slots__ = ("_anonymous", "_names")

    def __init__(self, session: SessionRecord) -> None:
        self._anonymous = session.anonymous
        self._names: dict[tuple[str, str], str] = {}
        for channel in session.channels:
            self(channel.platform, channel.channel_id)

    def __call__(self, platform: str, channel_id: str) -> str:
        if not self._anonymous:
            return channel_id
        name = self._names.get((platform, channel_id))
        if name is None:
            name = self._names[(platform, channel_id)] = f"channel-{len(self._names) + 1}"
        return name


# -- the public API -----------------------------------------------------------------------------


async def export(
    store: Store, session: SessionRecord, fmt: Format, sink: TextIO, *, model: ProseModel | None = None
) -> None:
    """Write the session in ``fmt`` to ``sink`` (streaming for json and csv); ``model`` is the
    optional writer model of the article's story."""
    if fmt == "csv":
        positions = {p.id: p.position for p in await store.prompts(session.id)}
        writer = _CsvRows(sink, session, positions)
        async for reply in store.iter_replies(session.id):
            writer.write(reply)
        return
    story = await gather_story(store, session)
    narrative = await gather_narrative(store, story, model=None if fmt == "json" else model)
    if fmt == "json":
        json_out = _JsonReplies(sink, story, narrative)
        async for reply in store.iter_replies(session.id):
            json_out.write(reply)
        json_out.close()
        return
    if fmt == "md":
        # No chart file travels with a single export, so the article does not point to one.
        sink.write(await asyncio.to_thread(render_markdown, story, chart_ref=None, narrative=narrative))
        return
    if fmt == "html":
        sink.write(await asyncio.to_thread(_html_page, story, narrative))
        return
    raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")


async def write_artifacts(
    store: Store, session: SessionRecord, folder: Path, *, model: ProseModel | None = None
) -> list[Path]:
    """Write article.md, article.html, chart.png, session.json and replies.csv into ``folder``.

    The folder is made private (0700) if it is missing; each file is private (0600), written beside
    its final name and moved into place (:mod:`sessions.files`), so a reader never sees half a file
    and an artifact made after ``/popup forget`` replaces the old one whole.
    """
    private_folder(folder)
    story = await gather_story(store, session)
    narrative = await gather_narrative(store, story, model=model)
    artifacts: Artifacts = await asyncio.to_thread(render_artifacts, story, chart_ref="chart.png", narrative=narrative)
    written: list[Path] = []
    for name, text in (("article.md", artifacts.markdown), ("article.html", artifacts.html)):
        with private_text(folder / name, replace=True) as text_file:
            text_file.write(text)
        written.append(folder / name)
    with private_bytes(folder / "chart.png", replace=True) as png_file:
        png_file.write(artifacts.chart_png)
    written.append(folder / "chart.png")

    positions = {p.prompt.id: p.prompt.position for p in story.prompts}
    # Both files move into place only once the one read of the replies that feeds them is done.
    with (
        private_text(folder / "session.json", replace=True) as json_file,
        private_text(folder / "replies.csv", replace=True, newline="") as csv_file,
    ):
        json_out = _JsonReplies(json_file, story, narrative)
        csv_out = _CsvRows(csv_file, session, positions)
        async for reply in store.iter_replies(session.id):
            json_out.write(reply)
            csv_out.write(reply)
        json_out.close()
    written += [folder / "session.json", folder / "replies.csv"]
    _log.info("artifacts of session %d written to %s", session.id, folder)
    return written


def _html_page(story: Story, narrative: Narrative) -> str:
    return render_html(story, chart_png=render_chart(story), narrative=narrative)


# -- CSV ------------------------------------------------------------------------------------------


class _CsvRows:
    def __init__(self, sink: TextIO, session: SessionRecord, positions: dict[int, int]) -> None:
        self._writer = csv.writer(sink, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        self._anonymous = session.anonymous
        self._channels = _Channels(session)
        self._positions = positions
        self._closed = session.closed_at
        self._writer.writerow(CSV_COLUMNS)

    def write(self, reply: ReplyRecord) -> None:
        anonymous = self._anonymous
        when = _iso_seconds if anonymous else _iso
        self._writer.writerow(
            (
                reply.id,
                self._positions.get(reply.prompt_id, ""),
                reply.prompt_id,
                when(reply.created_at),
                when(reply.edited_at) or "",
                "" if anonymous else neutralise(reply.author_name),
                "" if anonymous else neutralise(reply.author_id),
                reply.reactions,
                reply.edits,
                neutralise(reply.platform),
                neutralise(self._channels(reply.platform, reply.channel_id)),
                "" if anonymous else neutralise(reply.channel_id),
                "" if anonymous else neutralise(reply.message_id),
                neutralise(reply.text),
                "late" if self._closed is not None and reply.created_at > self._closed else "",
            )
        )


# -- JSON -----------------------------------------------------------------------------------------


class _JsonReplies:
    """Writes the story's JSON head, then one reply per line, then the closing brackets."""

    def __init__(self, sink: TextIO, story: Story, narrative: Narrative) -> None:
        self._sink = sink
        self._story = story
        self._anonymous = story.anonymous
        self._channels = _Channels(story.session)
        self._closed = story.session.closed_at
        self._positions = {p.prompt.id: p.prompt.position for p in story.prompts}
        self._first = True
        sink.write(f'{{"schema_version": {SCHEMA_VERSION}')
        for key, value in _head(story, narrative, self._channels).items():
            sink.write(f",\n{json.dumps(key)}: {json.dumps(value, ensure_ascii=True)}")
        sink.write(',\n"replies": [')

    def write(self, reply: ReplyRecord) -> None:
        item: dict[str, Any] = {
            "id": reply.id,
            "prompt": self._positions.get(reply.prompt_id),
            "prompt_id": reply.prompt_id,
            "author": None if self._anonymous else reply.author_name,
        }
        anonymous = self._anonymous
        if not anonymous:
            item["author_id"] = reply.author_id
        when = _iso_seconds if anonymous else _iso
        item.update(
            text=reply.text,
            created_at=when(reply.created_at),
            edited_at=when(reply.edited_at),
            edits=reply.edits,
            reactions=reply.reactions,
            platform=reply.platform,
            channel=self._channels(reply.platform, reply.channel_id),
            channel_id=None if anonymous else reply.channel_id,
            message_id=None if anonymous else reply.message_id,
            late=self._closed is not None and reply.created_at > self._closed,
        )
        self._sink.write(("\n" if self._first else ",\n") + json.dumps(item, ensure_ascii=True))
        self._first = False

    def close(self) -> None:
        self._sink.write("\n]}\n")


def _channel_head(
    channel: ChannelRef,
    channels: _Channels,
    names: dict[ChannelRef, str | None],
    figures: dict[ChannelRef, ChannelStory],
    *,
    anonymous: bool,
) -> dict[str, Any]:
    head: dict[str, Any] = {
        "platform": channel.platform,
        "channel": channels(channel.platform, channel.channel_id),
        "channel_id": None if anonymous else channel.channel_id,
    }
    if anonymous:
        return head  # a channel's name is as good as its id
    if names.get(channel):
        head["name"] = names[channel]
    counted = figures.get(channel)
    if counted is not None:
        head.update(replies=counted.replies, people=counted.people, reactions=counted.reactions)
    return head


def _head(story: Story, narrative: Narrative, channels: _Channels) -> dict[str, Any]:
    session = story.session
    anonymous = session.anonymous
    names: dict[ChannelRef, str | None] = {c.channel: c.name for c in story.channels}
    figures = {c.channel: c for c in story.channels} if story.across_channels else {}
    session_part: dict[str, Any] = {
        "id": session.id,
        "plan": session.plan_name,
        "title": session.title,
        "intro": session.intro,
        "timezone": session.timezone,
        "state": session.state.value,
        "anonymous": anonymous,
        "started_at": _iso(session.started_at),
        "recap_at": _iso(session.recap_at),
        "closed_at": _iso(session.closed_at),
        "channels": [_channel_head(c, channels, names, figures, anonymous=anonymous) for c in session.channels],
    }
    if not anonymous and story.linked:
        session_part["linked"] = [
            {"identities": [{"platform": p, "user_id": u, "replies": n} for p, u, n in voices.identities]}
            for voices in story.linked
        ]
    if not anonymous:
        session_part["started_by"] = session.started_by
    timeline = story.timeline
    return {
        "session": session_part,
        "prompts": [
            {
                "id": p.prompt.id,
                "position": p.prompt.position,
                "text": p.prompt.text,
                "state": p.prompt.state.value,
                "due_at": _iso(p.prompt.due_at),
                "posted_at": _iso(p.prompt.posted_at),
                "replies": p.replies,
                "participants": p.participants,
                "reactions": p.reactions,
                "in_article": len(p.shown),
            }
            for p in story.prompts
        ],
        "participation": {
            "participants": story.participants,
            "replies": story.replies,
            "reactions": story.reactions,
            "replies_per_participant": [{"replies": n, "participants": k} for n, k in story.per_participant],
            "timeline": {
                "timezone": session.timezone,
                "origin": _iso(timeline.origin),
                "bin_seconds": timeline.width.total_seconds(),
                "bins": [
                    {
                        "start": _iso(timeline.origin + timeline.width * i),
                        "local": label,
                        "replies": [row[i] for row in timeline.counts],
                    }
                    for i, label in enumerate(timeline.labels)
                ],
            },
        },
        "highlights": [
            {"prompt": p.prompt.position, "prompt_id": p.prompt.id, "reply_ids": [r.id for r in p.highlights]}
            for p in story.prompts
            if p.highlights
        ],
        # The ideas of the day, found by meaning (the article's story tells one section each).
        "themes": [
            {"label": t.label, "reply_ids": list(t.reply_ids), "prompts": list(t.prompts), "people": t.people}
            for t in narrative.themes
        ],
        # The keyphrases (shared words) of the day and of each prompt.
        "keywords": {
            "day": [
                {
                    "phrase": t.phrase,
                    "prompts": [story.prompt_by_id(pid).prompt.position for pid in t.prompt_ids],
                    "reply_ids": list(t.reply_ids),
                }
                for t in story.themes
            ],
            "prompts": [
                {
                    "prompt": p.prompt.position,
                    "prompt_id": p.prompt.id,
                    "sampled_replies": p.themes_from,
                    "themes": [
                        {"phrase": t.phrase, "score": t.score, "reply_ids": list(t.reply_ids)} for t in p.themes
                    ],
                }
                for p in story.prompts
                if p.replies
            ],
        },
        "theme_sample": {
            "replies": narrative.sampled,
            "of": narrative.of,
            "complete": narrative.complete,
            "keyword_replies": story.theme_sample.replies,
            "note": "themes come from each prompt's best-liked replies; reply_ids are among the article's",
        },
        "article": {
            "replies_per_prompt_limit": ARTICLE_LIMIT,
            "ranking": "reactions, then distinct meaningful words, then earliest",
            "labels": {str(rid): label for rid, label in story.labels.items()},
        },
    }
