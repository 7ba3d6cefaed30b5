"""The JSON export: the story's head, then the replies streamed one per line (see
:mod:`sessions.recap.exports`).

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
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from sessions.model import ChannelRef
from sessions.recap.export_fields import ExportChannels, iso, iso_seconds
from sessions.recap.narrative import Narrative
from sessions.recap.story import ARTICLE_LIMIT, ChannelStory, Story
from sessions.records import ReplyRecord

SCHEMA_VERSION = 2


class JsonReplies:
    """Writes the story's JSON head, then one reply per line, then the closing brackets."""

    def __init__(self, sink: TextIO, story: Story, narrative: Narrative) -> None:
        self._sink = sink
        self._story = story
        self._anonymous = story.anonymous
        self._channels = ExportChannels(story.session)
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
        when = iso_seconds if anonymous else iso
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
    channels: ExportChannels,
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


def _head(story: Story, narrative: Narrative, channels: ExportChannels) -> dict[str, Any]:
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
        "started_at": iso(session.started_at),
        "recap_at": iso(session.recap_at),
        "closed_at": iso(session.closed_at),
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
                "due_at": iso(p.prompt.due_at),
                "posted_at": iso(p.prompt.posted_at),
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
                "origin": iso(timeline.origin),
                "bin_seconds": timeline.width.total_seconds(),
                "bins": [
                    {
                        "start": iso(timeline.origin + timeline.width * i),
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
