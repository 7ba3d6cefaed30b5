"""Rendering a neutral :class:`~sessions.model.Message` as Slack Block Kit, split to Slack's limits.

Every string in a ``Message`` is plain text, some of it written by members. Slack turns ``<…>``
sequences into mentions and links (``<!channel>``, ``<!here>``, ``<@U123>``), so we escape ``&``,
``<`` and ``>`` in *all* of it (Slack's own rule) and mark every text object ``verbatim`` so bare
``@here``-like words and URLs are not auto-linked either. The formatting (bold titles, headings,
quotes) is added here, around already-escaped text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sessions.model import Message, Quote, Section

# Slack's documented limits, with a little headroom where the limit is soft.
MAX_BLOCKS = 50  # blocks per message
MAX_SECTION_CHARS = 3000  # characters of a section's text object
MAX_MESSAGE_CHARS = 12_000  # characters of text across a message's blocks (Slack truncates beyond)
MAX_FALLBACK_CHARS = 3000  # the notification text; Slack shows only the start of it anyway

Block = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedPart:
    """One Slack message: its blocks and the plain-text fallback shown in notifications."""

    blocks: tuple[Block, ...]
    text: str


def escape(text: str) -> str:
    """Escape text for Slack so it is shown as written and can never mention or link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(message: Message) -> list[RenderedPart]:
    """Render ``message`` as one or more Slack messages, each within Slack's limits.

    Always returns at least one part (an empty message renders as a single blank-safe line).
    """
    pieces = list(_pieces(message))
    if not pieces:
        pieces = [_Piece(block=_mrkdwn(" "), chars=1, fallback=" ")]
    parts: list[RenderedPart] = []
    blocks: list[Block] = []
    fallback: list[str] = []
    chars = 0
    for piece in pieces:
        if blocks and (len(blocks) + 1 > MAX_BLOCKS or chars + piece.chars > MAX_MESSAGE_CHARS):
            parts.append(_part(blocks, fallback))
            blocks, fallback, chars = [], [], 0
        if piece.block["type"] == "divider" and not blocks:
            continue  # a divider opening a continuation message only wastes a block
        blocks.append(piece.block)
        chars += piece.chars
        if piece.fallback:
            fallback.append(piece.fallback)
    if blocks:
        parts.append(_part(blocks, fallback))
    return parts


# -- internals -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    block: Block
    chars: int  # characters of text this block carries, counted against MAX_MESSAGE_CHARS
    fallback: str  # escaped plain text for the notification fallback ("" for none)


def _part(blocks: Sequence[Block], fallback: Sequence[str]) -> RenderedPart:
    text = "\n".join(fallback).strip() or " "
    if len(text) > MAX_FALLBACK_CHARS:
        text = _cut_escaped(text, MAX_FALLBACK_CHARS - 1) + "…"
    return RenderedPart(blocks=tuple(blocks), text=text)


def _mrkdwn(text: str) -> Block:
    # verbatim: Slack leaves the text alone (no auto-linking of URLs, #channels or @names).
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _text_pieces(raw: str, *, wrap: str = "", prefix: str = "") -> Iterator[_Piece]:
    """Sections holding ``raw`` (escaped), each within MAX_SECTION_CHARS including decoration."""
    overhead = 2 * len(wrap) + len(prefix)
    for chunk in split_escaped(raw, MAX_SECTION_CHARS - overhead, line_prefix=prefix):
        body = "\n".join(prefix + line for line in chunk.split("\n")) if prefix else chunk
        text = f"{wrap}{body}{wrap}" if wrap else body
        yield _Piece(block=_mrkdwn(text), chars=len(text), fallback=chunk)


def _pieces(message: Message) -> Iterator[_Piece]:
    if message.title.strip():
        yield from _text_pieces(message.title.strip(), wrap="*")
    if message.body.strip():
        yield from _text_pieces(message.body)
    for section in message.sections:
        yield from _section_pieces(section)


def _section_pieces(section: Section) -> Iterator[_Piece]:
    yield _Piece(block={"type": "divider"}, chars=0, fallback="")
    if section.heading.strip():
        yield from _text_pieces(section.heading.strip(), wrap="*")
    lines = "\n".join(section.lines)
    if lines.strip():
        yield from _text_pieces(lines)
    for quote in section.quotes:
        yield from _quote_pieces(quote)


def _quote_pieces(quote: Quote) -> Iterator[_Piece]:
    attribution = " · ".join(part for part in (quote.author or "", quote.note) if part)
    text = quote.text if quote.text.strip() else "…"
    pieces = list(_text_pieces(text, prefix="> "))
    if attribution:
        # The attribution rides on the last quote section when it fits, else gets its own block.
        line = f"\n— _{escape(attribution)}_"
        last = pieces[-1]
        if len(last.block["text"]["text"]) + len(line) <= MAX_SECTION_CHARS:
            merged = last.block["text"]["text"] + line
            pieces[-1] = _Piece(
                block=_mrkdwn(merged), chars=len(merged), fallback=f"{last.fallback} — {escape(attribution)}"
            )
        else:
            pieces.extend(_text_pieces(f"— {attribution}"))
    yield from pieces


def split_escaped(raw: str, limit: int, *, line_prefix: str = "") -> list[str]:
    """Escape ``raw`` and cut it into chunks of at most ``limit`` characters.

    Each line of a chunk costs ``len(line_prefix)`` more (for quote markers). Cuts fall on line
    breaks where possible, then on spaces, and never inside an escape sequence such as ``&amp;``.
    """
    limit = max(limit, 16)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in raw.split("\n"):
        for piece in _split_line(escape(line), limit - len(line_prefix)):
            cost = len(piece) + len(line_prefix) + (1 if current else 0)
            if current and size + cost > limit:
                chunks.append("\n".join(current))
                current, size = [], 0
                cost = len(piece) + len(line_prefix)
            current.append(piece)
            size += cost
    if current:
        chunks.append("\n".join(current))
    return [chunk for chunk in chunks if chunk.strip()] or [" "]


def _split_line(line: str, limit: int) -> Iterator[str]:
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit + 1)
        if cut <= 0:
            cut = _safe_cut(line, limit)
        yield line[:cut]
        line = line[cut:].lstrip(" ")
    yield line


def _safe_cut(text: str, limit: int) -> int:
    """A cut position ≤ limit that does not split an ``&…;`` escape."""
    amp = text.rfind("&", max(0, limit - 4), limit)
    if amp != -1 and text.find(";", amp) >= limit:
        return amp if amp > 0 else limit
    return limit


def _cut_escaped(text: str, limit: int) -> str:
    return text[: _safe_cut(text, limit)]
