"""Rendering Messages as Block Kit: escaping that makes pings impossible, and Slack's limits."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.render import (
    MAX_BLOCKS,
    MAX_MESSAGE_CHARS,
    MAX_SECTION_CHARS,
    RenderedPart,
    escape,
    render,
    split_escaped,
)
from sessions.model import Message, Quote, Section

DANGEROUS = "<!channel> <!here> <@U123ABC> <#C999|general> <https://evil.example|click> & more"


def _texts(parts: list[RenderedPart]) -> list[str]:
    out: list[str] = []
    for part in parts:
        out.append(part.text)
        for block in part.blocks:
            if "text" in block:
                out.append(block["text"]["text"])
    return out


def test_escape_is_slacks_three_characters() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape(DANGEROUS).count("<") == 0


def test_mentions_in_every_field_are_inert() -> None:
    message = Message(
        title=DANGEROUS,
        body=DANGEROUS,
        sections=(Section(heading=DANGEROUS, lines=(DANGEROUS,), quotes=(Quote(text=DANGEROUS, author=DANGEROUS,
                                                                             note=DANGEROUS),)),),
    )
    parts = render(message)
    dumped = json.dumps([p.blocks for p in parts]) + "".join(p.text for p in parts)
    for needle in ("<!channel>", "<!here>", "<@U123ABC>", "<#C999", "<https://"):
        assert needle not in dumped
    assert "&lt;!channel&gt;" in dumped
    for part in parts:
        for block in part.blocks:
            if block["type"] == "section":
                assert block["text"]["type"] == "mrkdwn"
                assert block["text"]["verbatim"] is True  # no auto-linking of bare @here either


def test_formatting_is_ours_title_bold_headings_quotes() -> None:
    message = Message(
        title="Popup day",
        body="Welcome",
        sections=(Section(heading="Prompt 1", lines=("a line",), quotes=(Quote(text="line one\nline two",
                                                                                author="Ana", note="3 reactions"),)),),
    )
    [part] = render(message)
    texts = [b["text"]["text"] for b in part.blocks if b["type"] == "section"]
    assert texts[0] == "*Popup day*"
    assert texts[1] == "Welcome"
    assert "*Prompt 1*" in texts
    quote = next(t for t in texts if t.startswith(">"))
    assert quote.startswith("> line one\n> line two")
    assert "Ana · 3 reactions" in quote
    assert {"type": "divider"} in part.blocks
    assert "Popup day" in part.text
    assert "line one" in part.text


def test_anonymous_quote_has_no_attribution() -> None:
    [part] = render(Message(sections=(Section(quotes=(Quote(text="hi"),)),)))
    texts = [b["text"]["text"] for b in part.blocks if b["type"] == "section"]
    assert texts == ["> hi"]


def test_empty_message_still_renders_one_valid_part() -> None:
    parts = render(Message())
    assert len(parts) == 1
    assert parts[0].blocks
    assert parts[0].text  # Slack refuses a post with neither text nor blocks


def test_long_body_is_split_into_sections_within_3000() -> None:
    body = ("word " * 2000).strip()  # 9,999 chars
    parts = render(Message(body=body))
    sections = [b for p in parts for b in p.blocks]
    assert len(sections) >= 4
    assert all(len(b["text"]["text"]) <= MAX_SECTION_CHARS for b in sections)
    assert " ".join(b["text"]["text"] for b in sections).split() == body.split()


def test_many_quotes_split_into_messages_within_block_and_char_limits() -> None:
    quotes = tuple(Quote(text=f"reply number {i} " + "x" * 400, author=f"member {i}") for i in range(200))
    message = Message(title="Recap", sections=(Section(heading="Prompt", quotes=quotes),))
    parts = render(message)
    assert len(parts) > 1
    for part in parts:
        assert len(part.blocks) <= MAX_BLOCKS
        assert sum(len(b["text"]["text"]) for b in part.blocks if "text" in b) <= MAX_MESSAGE_CHARS
        assert part.blocks[0]["type"] != "divider"
        assert len(part.text) <= 3000
    rendered = "".join(b["text"]["text"] for p in parts for b in p.blocks if "text" in b)
    for i in range(200):
        assert f"reply number {i} " in rendered


def test_fifty_block_limit_applies_to_short_blocks_too() -> None:
    sections = tuple(Section(heading=f"h{i}", lines=(f"l{i}",)) for i in range(60))  # 180 blocks
    parts = render(Message(sections=sections))
    assert all(len(p.blocks) <= MAX_BLOCKS for p in parts)
    assert sum(len(p.blocks) for p in parts) >= 180 - len(parts)


def test_split_never_cuts_an_escape_sequence() -> None:
    raw = "&" * 5000 + "<" * 5000
    chunks = split_escaped(raw, 3000)
    assert all(len(c) <= 3000 for c in chunks)
    joined = "".join(chunks)
    assert joined == escape(raw)
    for chunk in chunks:
        assert re.fullmatch(r"(&amp;|&lt;|&gt;)*", chunk)


@given(st.text(max_size=8000))
def test_any_text_renders_inert_and_within_limits(text: str) -> None:
    quote = Quote(text=text, author=text[:50])
    parts = render(Message(title=text[:200], body=text, sections=(Section(quotes=(quote,)),)))
    for part in parts:
        assert 1 <= len(part.blocks) <= MAX_BLOCKS
        for block in part.blocks:
            if "text" in block:
                assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
        for value in _texts([part]):
            assert "<" not in value
            assert not re.search(r"&(?!amp;|lt;|gt;)", value)
