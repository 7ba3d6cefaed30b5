"""The JSON contract (docs/architecture.md §9), the CSV shape, and the artifacts folder."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

from sessions.model import ChannelRef
from sessions.recap.exports import CSV_COLUMNS, SCHEMA_VERSION, export, write_artifacts
from sessions.records import NewReply, SessionRecord
from storage.sqlite import SqliteStore
from tests.recap.conftest import CHANNEL, T0, new_day, sample_day


async def test_json_contract(store: SqliteStore) -> None:
    day = await sample_day(store)
    deleted = list(day.texts)[-1]
    await day.delete(deleted)
    sink = io.StringIO()
    await export(store, await day.fresh(), "json", sink)
    data = json.loads(sink.getvalue())
    # Version 2: themes lists the ideas found by meaning (label, reply_ids); the keyphrases moved
    # to keywords.
    assert data["schema_version"] == SCHEMA_VERSION == 2
    replies = data["replies"]
    assert len(replies) == len(day.texts) == 8  # deleted replies are left out
    for reply in replies:
        for key in ("id", "prompt", "author", "text", "created_at", "platform", "message_id"):
            assert key in reply
        assert reply["platform"] == CHANNEL.platform
    assert {r["message_id"] for r in replies} == set(day.texts)
    assert {r["text"] for r in replies} == set(day.texts.values())
    assert deleted not in {r["message_id"] for r in replies}
    ids = {r["id"] for r in replies}
    # Highlights and themes refer to replies by id, and only to replies that are there.
    assert data["highlights"]
    assert all(set(h["reply_ids"]) <= ids for h in data["highlights"])
    assert data["highlights"][0]["reply_ids"][0] == next(
        r["id"] for r in replies if r["text"].startswith("Pairing with a mentor")
    )
    themes = data["themes"]
    assert isinstance(themes, list)
    assert themes
    assert all(set(t["reply_ids"]) <= ids for t in themes)
    assert all(isinstance(t["label"], str) and t["label"] and t["reply_ids"] for t in themes)
    keywords = data["keywords"]
    assert keywords["day"]
    assert all(set(t["reply_ids"]) <= ids for t in keywords["day"])
    assert all(set(t["reply_ids"]) <= ids for p in keywords["prompts"] for t in p["themes"])
    assert "text" not in json.dumps(data["highlights"])
    assert "text" not in json.dumps(themes)
    prompts = {p["position"]: p for p in data["prompts"]}
    assert {r["prompt"] for r in replies} <= set(prompts)
    assert prompts[1]["replies"] + prompts[2]["replies"] + prompts[3]["replies"] == 8
    assert data["participation"]["replies"] == 8
    assert data["session"]["title"] == "Who makes learning culture?"
    assert sum(b["replies"][0] for b in data["participation"]["timeline"]["bins"]) == prompts[1]["replies"]


async def test_csv_has_one_row_per_reply(store: SqliteStore) -> None:
    day = await sample_day(store)
    sink = io.StringIO(newline="")
    await export(store, await day.fresh(), "csv", sink)
    rows = list(csv.reader(io.StringIO(sink.getvalue(), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + len(day.texts)
    by_text = {r[CSV_COLUMNS.index("text")]: r for r in rows[1:]}
    row = by_text["Pairing with a mentor every week taught me more than any course."]
    assert row[CSV_COLUMNS.index("author")] == "Person 1"
    assert row[CSV_COLUMNS.index("reactions")] == "4"
    assert row[CSV_COLUMNS.index("prompt")] == "1"


async def test_md_and_html_exports(store: SqliteStore) -> None:
    day = await sample_day(store)
    session = await day.fresh()
    md, html = io.StringIO(), io.StringIO()
    await export(store, session, "md", md)
    await export(store, session, "html", html)
    assert md.getvalue().startswith("# Who makes learning culture?")
    assert "chart.png" not in md.getvalue()  # no chart file travels with a single export
    assert html.getvalue().startswith("<!doctype html>")
    assert "data:image/png;base64," in html.getvalue()


async def test_write_artifacts(store: SqliteStore, tmp_path: Path) -> None:
    day = await sample_day(store)
    folder = tmp_path / "deep" / "out"
    paths = await write_artifacts(store, await day.fresh(), folder)
    assert [p.name for p in paths] == ["article.md", "article.html", "chart.png", "session.json", "replies.csv"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no partial files left
    assert "![Chart: replies per prompt, and replies across the day](chart.png)" in (folder / "article.md").read_text(
        encoding="utf-8"
    )
    data = json.loads((folder / "session.json").read_text(encoding="utf-8"))
    assert len(data["replies"]) == 9
    assert (folder / "replies.csv").read_bytes().count(b"\r\n") == 10
    assert (folder / "chart.png").read_bytes().startswith(b"\x89PNG")


async def test_artifacts_are_private_and_never_written_through_a_symlink(store: SqliteStore, tmp_path: Path) -> None:
    day = await sample_day(store)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    folder = tmp_path / "out"
    old = os.umask(0o022)
    try:
        await write_artifacts(store, await day.fresh(), folder)
        assert oct(folder.stat().st_mode & 0o777) == "0o700"  # made here, so private
        # Links planted at a final name and at the name the old code used for its temporary file.
        (folder / "article.md").unlink()
        (folder / "article.md").symlink_to(victim)
        (folder / ".article.html.partial").symlink_to(victim)
        (folder / "chart.png").chmod(0o644)
        paths = await write_artifacts(store, await day.fresh(), folder)
    finally:
        os.umask(old)
    assert victim.read_text(encoding="utf-8") == "precious"
    for path in paths:
        assert not path.is_symlink()
        assert oct(path.lstat().st_mode & 0o777) == "0o600", path.name
    assert (folder / "article.md").read_text(encoding="utf-8").startswith("# Who makes learning culture?")


# -- what an anonymous session's exports leave out ------------------------------------------------------------------

SECRET_CHANNEL = ChannelRef(platform="slack", channel_id="C0SECRET42")


async def anonymous_day_in(store: SqliteStore, channel: ChannelRef) -> tuple[SessionRecord, list[str]]:
    """An anonymous session whose replies carry Slack-like ids: the message id is its timestamp."""
    day = await new_day(store, anonymous=True, channel=channel)
    message_ids = []
    for i, prompt in enumerate(day.prompts):
        created = prompt.due_at + timedelta(minutes=3, microseconds=123457 + i)
        message_id = f"{created.timestamp():.6f}"
        await store.add_reply(
            NewReply(
                session_id=day.session.id,
                prompt_id=prompt.id,
                platform=channel.platform,
                channel_id=channel.channel_id,
                message_id=message_id,
                author_id=f"U0AUTHOR{i}",
                author_name=f"Author {i}",
                text=f"An answer to prompt {i + 1} about mentoring and pairing.",
                created_at=created,
            )
        )
        message_ids.append(message_id)
    return await day.fresh(), message_ids


async def test_anonymous_exports_hold_nothing_that_leads_to_a_message(store: SqliteStore, tmp_path: Path) -> None:
    session, message_ids = await anonymous_day_in(store, SECRET_CHANNEL)
    outputs: dict[str, str] = {}
    for fmt in ("md", "html", "json", "csv"):
        sink = io.StringIO(newline="")
        await export(store, session, fmt, sink)
        outputs[fmt] = sink.getvalue()
    for path in await write_artifacts(store, session, tmp_path / "out"):
        if path.suffix != ".png":
            outputs[path.name] = path.read_text(encoding="utf-8")
    for name, output in outputs.items():
        readable = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", output)  # the chart is no text
        for secret in (SECRET_CHANNEL.channel_id, "U0AUTHOR", "Author ", *message_ids, "123457"):
            assert secret not in readable, (name, secret)

    data = json.loads(outputs["json"])
    for reply in data["replies"]:
        # The contract's keys stay, in a form that leads nowhere.
        assert reply["channel"] == "channel-1"
        assert reply["platform"] == "slack"
        assert reply["message_id"] is None
        assert reply["channel_id"] is None
        assert reply["author"] is None
        assert datetime.fromisoformat(reply["created_at"]).microsecond == 0
    assert data["session"]["channels"] == [{"platform": "slack", "channel": "channel-1", "channel_id": None}]
    rows = list(csv.DictReader(io.StringIO(outputs["csv"], newline="")))
    assert [(r["channel"], r["channel_id"], r["message_id"], r["author_id"]) for r in rows] == [
        ("channel-1", "", "", "")
    ] * len(message_ids)


async def test_stand_ins_number_the_channels_of_the_session(store: SqliteStore) -> None:
    session, _ = await anonymous_day_in(store, SECRET_CHANNEL)
    other = ChannelRef(platform="discord", channel_id="998877665544")
    # A reply from a channel the session no longer lists still gets a stand-in of its own.
    await store.add_reply(
        NewReply(
            session_id=session.id,
            prompt_id=(await store.prompts(session.id))[0].id,
            platform=other.platform,
            channel_id=other.channel_id,
            message_id="1234567890123456789",
            author_id="42",
            author_name="Someone",
            text="From elsewhere.",
            created_at=T0 + timedelta(minutes=30),
        )
    )
    sink = io.StringIO()
    await export(store, session, "json", sink)
    data = json.loads(sink.getvalue())
    assert sorted((r["platform"], r["channel"]) for r in data["replies"]) == [("discord", "channel-2")] + [
        ("slack", "channel-1")
    ] * 3
    assert other.channel_id not in sink.getvalue()


async def test_ordinary_replies_carry_their_channel_next_to_the_platform(store: SqliteStore) -> None:
    day = await sample_day(store)
    sink = io.StringIO()
    await export(store, await day.fresh(), "json", sink)
    data = json.loads(sink.getvalue())
    for reply in data["replies"]:
        keys = list(reply)
        assert keys[keys.index("platform") + 1] == "channel"
        assert reply["channel"] == reply["channel_id"] == CHANNEL.channel_id
        assert reply["message_id"] in day.texts
    assert data["session"]["channels"] == [{"platform": "slack", "channel": "C1", "channel_id": "C1"}]
