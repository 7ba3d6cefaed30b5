"""The recap message and its attachments: structure, counts, highlights, consent."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from sessions.recap import build_recap
from sessions.recap.exports import FORMATS, export, write_artifacts
from sessions.recap.story import gather_story
from storage.sqlite import SqliteStore
from tests.recap.conftest import new_day, sample_day


def _section(message, heading_start: str):  # type: ignore[no-untyped-def]
    return next(s for s in message.sections if s.heading.startswith(heading_start))


async def test_message_tells_the_day(store: SqliteStore) -> None:
    day = await sample_day(store)
    recap = await build_recap(store, await day.fresh())
    message = recap.message
    assert message.title == "Recap: Who makes learning culture?"
    assert "Monday 01 June 2026" in message.body
    assert "5 people took part, with 9 replies and 17 reactions." in message.body
    first = _section(message, "1. What helps you learn at work?")
    assert first.lines[0].startswith("4 replies from 4 people")
    second = _section(message, "2. Who taught you the most?")
    assert second.lines[0].startswith("3 replies from 3 people")
    assert _section(message, "Themes of the day").lines[0]
    assert "Thank you" in _section(message, "Thank you").lines[0]
    text = message.plain_text()
    assert "Person 1" in text


async def test_highlights_rank_by_reactions_then_substance(store: SqliteStore) -> None:
    recap = await build_recap(store, await (await sample_day(store)).fresh())
    first = _section(recap.message, "1. ")
    quoted = [q.text for q in first.quotes]
    # 4 reactions first; then two with 2 reactions, where the substantive one beats the longer
    # but empty "yes yes yes…"; at most 3 quotes when there are 3 prompts.
    assert quoted == [
        "Pairing with a mentor every week taught me more than any course.",
        "Code review is where our team learns the most, when it is kind.",
        "yes yes yes yes yes yes yes yes yes yes yes yes yes yes",
    ]
    assert [q.note for q in first.quotes] == ["4 reactions", "2 reactions", "2 reactions"]
    assert [q.author for q in first.quotes] == ["Person 1", "Person 2", "Person 3"]


async def test_equal_replies_rank_by_time_then_id(store: SqliteStore) -> None:
    day = await new_day(store, prompts=("Only prompt?",))
    await day.reply(1, "Same words in this reply exactly", author="A", minutes=9)
    await day.reply(1, "Same words in this reply exactly", author="B", minutes=2)
    await day.reply(1, "Same words in this reply exactly", author="C", minutes=2)
    story = await gather_story(store, await day.fresh())
    assert [r.author_name for r in story.prompts[0].ranked] == ["Name of B", "Name of C", "Name of A"]


async def test_missed_and_skipped_prompts_are_named(store: SqliteStore) -> None:
    day = await new_day(store, prompts=("One?", "Two?", "Three?"), missed=(2,), skipped=(3,))
    await day.reply(1, "An answer to the first.")
    recap = await build_recap(store, await day.fresh())
    assert _section(recap.message, "Missed prompts").lines == ("2. Two? (the bot was away when it fell due)",)
    assert _section(recap.message, "Not reached").lines == ("3. Three? (the session ended first)",)
    md = recap.attachments[0].data.decode()
    assert "missed: the bot was away" in md
    assert "Missed today: prompt 2 (Two?)" in md


async def test_attachments_are_article_page_and_chart(store: SqliteStore) -> None:
    day = await sample_day(store)
    recap = await build_recap(store, await day.fresh())
    names = [(a.filename, a.content_type) for a in recap.attachments]
    sid = day.session.id
    assert names == [
        (f"popup-{sid}-article.md", "text/markdown; charset=utf-8"),
        (f"popup-{sid}-article.html", "text/html; charset=utf-8"),
        (f"popup-{sid}-chart.png", "image/png"),
    ]
    md, html, png = (a.data for a in recap.attachments)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert f"(popup-{sid}-chart.png)" in md.decode()  # the article points at the attached chart
    assert html.startswith(b"<!doctype html>")
    assert b"data:image/png;base64," in html  # the chart travels inside the page
    assert not recap.message.attachments  # the engine appends recap.attachments itself


async def test_article_structure_and_counts(store: SqliteStore) -> None:
    day = await sample_day(store)
    recap = await build_recap(store, await day.fresh())
    md = recap.attachments[0].data.decode()
    html = recap.attachments[1].data.decode()
    for heading in (
        "# Who makes learning culture?",
        "## Timetable (Europe/Amsterdam)",
        "## 1. What helps you learn at work?",
        "## 2. Who taught you the most?",
        "## 3. What will you try?",
        "## Themes of the day",
        "## Participation",
        "## Thank you",
    ):
        assert f"\n{heading}\n" in f"\n{md}", heading
    assert "- 09:00 — 1. What helps you learn at work? — 4 replies" in md
    assert "*4 replies from 4 people · 8 reactions · posted 09:00*" in md
    assert "- People who took part: 5" in md
    assert "- Replies: 9" in md
    for section_id in ("intro", "timetable", "prompt-1", "prompt-2", "prompt-3", "themes", "participation"):
        assert f'id="{section_id}"' in html
    # Every reply is in both, under its prompt, in the order it was posted.
    for text in day.texts.values():
        assert text in md
        assert text in html
    # The story comes first; the record of every reply follows it, under its prompt, in order.
    assert md.index("## How the day went") < md.index("## What we take forward") < md.index("# The record of the day")
    assert 'id="story"' in html
    assert html.index('id="story"') < html.index('id="record"') < html.index('id="prompt-1"')
    record = md[md.index("# The record of the day") :]
    assert record.index("Pairing with a mentor") < record.index("Code review is where") < record.index("## 2.")
    assert "Themes were found in all the replies." in md


async def test_long_prompt_keeps_the_most_liked(store: SqliteStore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sessions.recap.story as story_module

    monkeypatch.setattr(story_module, "ARTICLE_LIMIT", 3)
    day = await new_day(store, prompts=("Busy prompt?",))
    for i in range(7):
        await day.reply(1, f"Reply number {i} with some words about learning", author=f"U{i}", minutes=i, reactions=i)
    story = await story_module.gather_story(store, await day.fresh(), limit=3)
    p = story.prompts[0]
    assert (p.replies, len(p.shown), p.hidden) == (7, 3, 4)
    assert [r.reactions for r in p.ranked] == [6, 5, 4]
    assert [r.reactions for r in p.shown] == [4, 5, 6]  # shown in posting order
    from sessions.recap.article import render_html, render_markdown

    line = "the article shows the 3 most-liked of 7 replies to this prompt; the csv and json exports hold the other 4."
    assert line in render_markdown(story).lower()
    assert line in render_html(story).lower()


async def test_anonymous_session_shows_no_names_anywhere(store: SqliteStore, tmp_path: Path) -> None:
    day = await sample_day(store, anonymous=True)
    session = await day.fresh()
    recap = await build_recap(store, session)
    assert all(q.author is None for s in recap.message.sections for q in s.quotes)
    outputs = [recap.message.plain_text(), *(a.data.decode() for a in recap.attachments[:2])]
    for fmt in FORMATS:
        sink = io.StringIO()
        await export(store, session, fmt, sink)
        outputs.append(sink.getvalue())
    for path in await write_artifacts(store, session, tmp_path / "out"):
        if path.suffix != ".png":
            outputs.append(path.read_text(encoding="utf-8"))
    for output in outputs:
        readable = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", output)  # the chart is no text
        for author in ("Person", "U1", "U2", "UORG", "Name of"):
            assert author not in readable
    data = json.loads((tmp_path / "out" / "session.json").read_text(encoding="utf-8"))
    assert all(r["author"] is None and "author_id" not in r for r in data["replies"])
    assert "started_by" not in data["session"]
    assert "anonymous" in recap.message.body


async def test_forget_removes_the_author_from_later_artifacts(store: SqliteStore, tmp_path: Path) -> None:
    day = await sample_day(store)
    session = await day.fresh()
    before = await write_artifacts(store, session, tmp_path / "out")
    assert "Pairing with a mentor every week" in (tmp_path / "out" / "article.md").read_text(encoding="utf-8")
    assert await store.forget_author(session.id, "slack", "U1") == 2
    after = await write_artifacts(store, session, tmp_path / "out")
    assert [p.name for p in after] == [p.name for p in before]
    gone = ("Pairing with a mentor every week", "Pairing with seniors on real incidents", "Person 1")
    for path in after:
        if path.suffix != ".png":
            text = path.read_text(encoding="utf-8")
            assert not any(g in text for g in gone), path.name
    recap = await build_recap(store, session)
    assert not any(g in recap.message.plain_text() for g in gone)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "replies.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 7
    assert {r["author_id"] for r in rows} == {"U2", "U3", "U4", "U5"}


async def test_empty_session_still_recaps(store: SqliteStore) -> None:
    day = await new_day(store, prompts=("Anyone?",))
    recap = await build_recap(store, await day.fresh())
    assert "0 people took part, with 0 replies." in recap.message.body
    md = recap.attachments[0].data.decode()
    assert "*No replies.*" in md
    assert recap.attachments[2].data.startswith(b"\x89PNG")
