"""Rendering within Discord's limits, and echoed text that can never ping or format."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord.render import (
    DESCRIPTION_MAX,
    EMBED_CHARS_PER_MESSAGE,
    EMBEDS_PER_MESSAGE,
    FILES_PER_MESSAGE,
    NONCE_MAX,
    THREAD_NAME_MAX,
    TITLE_MAX,
    MessagePart,
    digest,
    escape,
    parse_marker,
    render,
    thread_name,
)
from sessions.model import Attachment, Message, Quote, Section

DIGEST = digest("popup:1:1700000000:recap", "123")
PING = re.compile(r"@(everyone|here)|<@[!&]?\d+>")


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_within_limits(parts: tuple[MessagePart, ...]) -> None:
    assert parts
    for index, part in enumerate(parts, start=1):
        assert 1 <= len(part.embeds) <= EMBEDS_PER_MESSAGE
        assert len(part.attachments) <= FILES_PER_MESSAGE
        assert len(part.nonce) <= NONCE_MAX
        total = 0
        for embed in part.embeds:
            assert units(embed.title) <= TITLE_MAX
            assert units(embed.description) <= DESCRIPTION_MAX
            assert embed.title or embed.description
            total += embed.size
        assert total <= EMBED_CHARS_PER_MESSAGE
        marker = parse_marker(part.embeds[-1].footer)
        assert marker is not None
        assert (marker.digest, marker.index, marker.count) == (DIGEST, index, len(parts))
    assert len({p.nonce for p in parts}) == len(parts)


def visible_text(parts: tuple[MessagePart, ...]) -> str:
    return "\n".join(e.title + "\n" + e.description for p in parts for e in p.embeds)


def test_short_message_is_one_embed_with_title_body_and_marker() -> None:
    parts = render(Message(title="Prompt 1", body="What did you learn?"), post_digest=DIGEST)
    assert len(parts) == 1
    (embed,) = parts[0].embeds
    assert embed.title == "Prompt 1"
    assert embed.description == "What did you learn?"
    assert embed.footer == f"Popup · ref {DIGEST}"
    assert parts[0].nonce.startswith("p" + DIGEST)


def test_long_recap_is_split_across_embeds_and_messages_within_limits() -> None:
    quotes = tuple(Quote(text=f"reply {i} " + "x" * 700, author=f"member {i}", note="2 reactions") for i in range(60))
    sections = tuple(Section(heading=f"Prompt {n}", lines=("intro line",), quotes=quotes) for n in range(3))
    content = Message(title="T" * 400, body="b" * 5000, sections=sections)
    parts = render(content, post_digest=DIGEST)
    assert len(parts) > 1
    assert_within_limits(parts)
    assert parts[0].embeds[0].title.endswith("…")
    text = visible_text(parts)
    for i in range(60):
        assert f"reply {i} " in text  # nothing dropped on the way


def test_a_single_line_longer_than_a_description_is_cut_not_lost() -> None:
    parts = render(Message(body="y" * (DESCRIPTION_MAX * 3 + 5)), post_digest=DIGEST)
    assert_within_limits(parts)
    assert visible_text(parts).count("y") == DESCRIPTION_MAX * 3 + 5


def test_mentions_and_markdown_in_echoed_text_are_inert() -> None:
    quote = Quote(
        text="@everyone look <@123456789012345678> <@&42> @here **bold** [x](https://evil.example)", author="@here"
    )
    parts = render(Message(title="@everyone", body="<@!1>", sections=(Section(quotes=(quote,)),)), post_digest=DIGEST)
    text = visible_text(parts)
    assert not PING.search(text), text
    assert "\\*\\*bold\\*\\*" in text
    assert "\\[x](https://evil.example)" in text


def test_quotes_show_author_and_note_and_keep_multiline_text_in_the_quote() -> None:
    quote = Quote(text="line one\nline two", author="Max", note="3 reactions")
    parts = render(Message(sections=(Section(heading="Prompt", quotes=(quote,)),)), post_digest=DIGEST)
    assert parts[0].embeds[0].description == "**Prompt**\n> line one\n> line two — Max (3 reactions)"


def test_attachments_ride_on_the_last_message_and_overflow_to_more() -> None:
    files = tuple(Attachment(filename=f"f{i}.txt", content_type="text/plain", data=b"x") for i in range(13))
    parts = render(Message(title="Recap", attachments=files), post_digest=DIGEST)
    assert_within_limits(parts)
    assert [len(p.attachments) for p in parts] == [10, 3]
    only_files = render(Message(attachments=files[:1]), post_digest=DIGEST)
    assert only_files[0].embeds[0].description == "Attached: f0.txt"


def test_thread_name_uses_the_title_or_first_line_within_100() -> None:
    assert thread_name(Message(title="Prompt 2")) == "Prompt 2"
    assert thread_name(Message(body="\n  first line\nsecond")) == "first line"
    assert thread_name(Message()) == "Replies"
    assert len(thread_name(Message(title="z" * 300))) == THREAD_NAME_MAX


def test_digest_is_stable_and_differs_for_thread_posts_and_channels() -> None:
    key = "popup:1:1700000000:prompt:1"
    assert digest(key, "1") == digest(key, "1")
    assert len({digest(key, "1"), digest(key, "2"), digest(key, "1", thread=True)}) == 3


def test_parse_marker_reads_single_and_split_markers() -> None:
    assert parse_marker(None) is None
    assert parse_marker("something else") is None
    single = parse_marker(f"Popup · ref {DIGEST}")
    assert single is not None
    assert (single.index, single.count) == (1, 1)
    split = parse_marker(f"Popup · ref {DIGEST} · 2/3")
    assert split is not None
    assert (split.index, split.count) == (2, 3)


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=3000)
quotes = st.builds(Quote, text=texts, author=st.none() | st.text(max_size=80), note=st.text(max_size=40))
sections = st.builds(
    Section,
    heading=st.text(max_size=300),
    lines=st.lists(texts, max_size=4).map(tuple),
    quotes=st.lists(quotes, max_size=6).map(tuple),
)
messages = st.builds(
    Message, title=st.text(max_size=400), body=texts, sections=st.lists(sections, max_size=4).map(tuple)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_any_message_renders_within_limits_and_never_pings(content: Message) -> None:
    parts = render(content, post_digest=DIGEST)
    assert_within_limits(parts)
    assert not PING.search(visible_text(parts))


@given(st.text())
def test_escape_never_leaves_a_ping(text: str) -> None:
    assert not PING.search(escape(text))


@given(st.text().filter(lambda t: "\u200b" not in t))
def test_unescape_gives_back_the_text(text: str) -> None:
    from adapters.discord.render import unescape

    assert unescape(escape(text)) == text
