"""Rendering a neutral :class:`~sessions.model.Message` as Discord messages made of embeds.

Pure functions, no I/O: the result is plain frozen data that :mod:`adapters.discord.adapter` turns
into ``discord.Embed``/``discord.File`` at send time, so the limits below can be tested directly.

Every string of the Message is untrusted (a member's reply, echoed in a recap) or at least plain
(a plan's text), so all of it is escaped: markdown becomes literal and @everyone/@here/user and
role mentions get a zero-width space, which keeps them from pinging even if a send forgot
``allowed_mentions`` (we never do: see the adapter).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from discord.utils import escape_markdown, escape_mentions

from sessions.model import Attachment, Message, Quote

# Discord's documented limits. Lengths are counted in UTF-16 code units (see `_units`), which is
# never less than the code-point count, so we stay inside whichever way Discord counts.
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FOOTER_MAX = 2048
EMBED_CHARS_PER_MESSAGE = 6000
EMBEDS_PER_MESSAGE = 10
FILES_PER_MESSAGE = 10
THREAD_NAME_MAX = 100
NONCE_MAX = 25

_FOOTER_RESERVE = 80  # room kept in each message's 6,000 for the footer marker
_MARKER = re.compile(r"Popup · ref ([0-9a-f]{16})(?: · (\d+)/(\d+))?")
# discord.utils.escape_mentions only knows 17-20 digit snowflakes; any digits is safer.
_ANY_ID_MENTION = re.compile(r"@([!&]?\d+)")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class EmbedSpec:
    title: str = ""
    description: str = ""
    footer: str = ""

    @property
    def size(self) -> int:
        return _units(self.title) + _units(self.description) + _units(self.footer)


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One Discord message: up to 10 embeds and up to 10 files, within 6,000 embed characters."""

    embeds: tuple[EmbedSpec, ...]
    attachments: tuple[Attachment, ...] = ()
    nonce: str = ""


@dataclass(frozen=True, slots=True)
class Marker:
    """What a footer marker says: which post (by digest) and which part of it."""

    digest: str
    index: int  # 1-based
    count: int


def escape(text: str) -> str:
    """Make ``text`` literal in Discord: no markdown, no links, no pings."""
    escaped = escape_mentions(escape_markdown(text))
    return _ANY_ID_MENTION.sub("@\u200b\\1", escaped)


def unescape(text: str) -> str:
    """Undo :func:`escape` for names, which Discord shows without markdown (exact unless the text
    itself had a zero-width space after an @)."""
    return _ESCAPED.sub(r"\1", text.replace("@\u200b", "@"))


def digest(key: str, channel_id: str, *, thread: bool = False) -> str:
    """A stable short id for one intended post, used in the nonce and the footer marker.

    ``thread`` gives posts that open a thread a different digest, so a post found again after a
    crash tells whether its thread still has to be created.
    """
    kind = "thread" if thread else "post"
    return hashlib.sha256(f"{kind}\x00{channel_id}\x00{key}".encode()).hexdigest()[:16]


def nonce(post_digest: str, index: int) -> str:
    """Discord nonces are at most 25 characters; one per message part, stable across retries."""
    return f"p{post_digest}n{index}"[:NONCE_MAX]


def marker_text(post_digest: str, index: int, count: int) -> str:
    base = f"Popup · ref {post_digest}"
    return base if count == 1 else f"{base} · {index}/{count}"


def parse_marker(footer: str | None) -> Marker | None:
    if not footer:
        return None
    match = _MARKER.search(footer)
    if match is None:
        return None
    if match[2] is None:
        return Marker(digest=match[1], index=1, count=1)
    return Marker(digest=match[1], index=int(match[2]), count=int(match[3]))


def thread_name(content: Message) -> str:
    """A thread's name: the title, else the first line of the body (names render no markup)."""
    source = content.title or next((line for line in content.body.splitlines() if line.strip()), "")
    name = " ".join(source.split()) or "Replies"
    return _truncate(name, THREAD_NAME_MAX)


def render(content: Message, *, post_digest: str) -> tuple[MessagePart, ...]:
    """Split ``content`` into Discord messages within every limit; each ends with a footer marker."""
    title = _truncate(escape(" ".join(content.title.split())), TITLE_MAX) if content.title else ""
    descriptions = list(_pack(_lines(content), DESCRIPTION_MAX))
    if not descriptions and not title:
        names = ", ".join(a.filename for a in content.attachments)
        descriptions = [_truncate(escape(f"Attached: {names}" if names else "\u200b"), DESCRIPTION_MAX)]
    embeds = [EmbedSpec(title=title if i == 0 else "", description=d) for i, d in enumerate(descriptions)]
    if not embeds:
        embeds = [EmbedSpec(title=title)]

    groups = _group(embeds)
    files = list(content.attachments)
    file_groups = [files[i : i + FILES_PER_MESSAGE] for i in range(0, len(files), FILES_PER_MESSAGE)]
    # Files ride on the last text message; any beyond its 10 get messages of their own.
    extra = max(0, len(file_groups) - 1)
    groups.extend([EmbedSpec(description=escape("More attachments"))] for _ in range(extra))
    count = len(groups)
    first_file_group = count - len(file_groups)
    parts: list[MessagePart] = []
    for index, group in enumerate(groups):
        *head, last = group
        footer = marker_text(post_digest, index + 1, count)
        attachments = tuple(file_groups[index - first_file_group]) if index >= first_file_group else ()
        parts.append(
            MessagePart(
                embeds=(*head, EmbedSpec(title=last.title, description=last.description, footer=footer)),
                attachments=attachments,
                nonce=nonce(post_digest, index),
            )
        )
    return tuple(parts)


# -- helpers ---------------------------------------------------------------------------------------


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _truncate(text: str, limit: int) -> str:
    if _units(text) <= limit:
        return text
    head, _ = _cut(text, limit - 1)
    return head + "…"


def _cut(text: str, limit: int) -> tuple[str, str]:
    """Split ``text`` so the head has at most ``limit`` UTF-16 units and never ends in a lone
    backslash (which would un-escape the next character on the following line)."""
    head_len = 0
    units = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if units + width > limit:
            break
        units += width
        head_len += 1
    head = text[:head_len]
    while head.endswith("\\") and len(head) > 1:
        head = head[:-1]
    if not head:  # a limit of 1 unit and a backslash: take it anyway, progress beats beauty
        head = text[:1]
    return head, text[len(head) :]


def _lines(content: Message) -> Iterator[str]:
    """The escaped description lines of the whole message, sections separated by a blank line."""
    blocks: list[list[str]] = []
    if content.body:
        blocks.append([escape(line) for line in content.body.splitlines()])
    for section in content.sections:
        block: list[str] = []
        if section.heading:
            block.append(f"**{escape(' '.join(section.heading.split()))}**")
        block.extend(escape(line) for line in section.lines)
        block.extend(_quote_lines(quote) for quote in section.quotes)
        if block:
            blocks.append(block)
    for number, block in enumerate(blocks):
        if number:
            yield ""
        yield from block


def _quote_lines(quote: Quote) -> str:
    text_lines = quote.text.splitlines() or [""]
    lines = [f"> {escape(line)}" for line in text_lines]
    tail = ""
    if quote.author:
        tail += f" — {escape(quote.author)}"
    if quote.note:
        tail += f" ({escape(quote.note)})"
    lines[-1] += tail
    return "\n".join(lines)


def _pack(lines: Iterator[str], limit: int) -> Iterator[str]:
    """Greedily join lines into chunks of at most ``limit`` units; split over-long lines."""
    chunk = ""
    for raw in lines:
        for line in raw.split("\n"):
            candidate = f"{chunk}\n{line}" if chunk else line
            if _units(candidate) <= limit:
                chunk = candidate
                continue
            if chunk.strip():
                yield chunk
            chunk = line
            while _units(chunk) > limit:
                head, chunk = _cut(chunk, limit)
                yield head
    if chunk.strip():
        yield chunk


def _group(embeds: Sequence[EmbedSpec]) -> list[list[EmbedSpec]]:
    """Embeds into messages: at most 10 each and 6,000 characters including the footer."""
    budget = EMBED_CHARS_PER_MESSAGE - _FOOTER_RESERVE
    groups: list[list[EmbedSpec]] = [[]]
    used = 0
    for embed in embeds:
        current = groups[-1]
        if current and (len(current) >= EMBEDS_PER_MESSAGE or used + embed.size > budget):
            groups.append([])
            used = 0
        groups[-1].append(embed)
        used += embed.size
    return groups
