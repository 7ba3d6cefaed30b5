"""Neutral types shared by the engine and every adapter: references, members, inbound events and
outbound message content.

Adapters map platform payloads to these at their edge; no raw platform dict travels further.
All user-authored text is carried verbatim (byte-exact); each adapter escapes it when rendering so
that echoed text can never ping anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# -- references -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelRef:
    """A channel on one platform, e.g. ``ChannelRef(platform="slack", channel_id="C0123")``."""

    platform: str
    channel_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadRef:
    """A thread under a prompt.

    ``thread_id`` is opaque to the engine and unique within its platform (the adapter decides its
    form: a Discord thread snowflake, a Slack ``"C0123:1700000000.000100"``); the engine uses
    ``(platform, thread_id)`` to find the prompt a reply belongs to.
    """

    channel: ChannelRef
    thread_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRef:
    """A message, in the channel (or thread channel) where it actually lives."""

    channel: ChannelRef
    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """Who did something.

    ``roles`` holds the platform's role *ids*, never role names: a name is anyone's to give to a
    role, so it must not grant rights. ``is_admin`` is what the platform says about the member:
    Discord's Manage Server or Administrator, a Slack workspace admin or owner, the console's
    local user (the operator). Admins may run every command on every session (sessions/rights.py).
    """

    platform: str
    user_id: str
    display_name: str
    roles: tuple[str, ...] = ()
    is_admin: bool = False
    is_bot: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Posted:
    """What an adapter reports after posting: the message, and the thread it opened if any."""

    message: MessageRef
    thread: ThreadRef | None = None


# -- inbound events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandInvoked:
    """``/popup NAME ARGS…`` typed by ``member`` in ``channel``."""

    channel: ChannelRef
    member: Member
    name: str
    args: tuple[str, ...] = ()
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyPosted:
    """A message in a thread; the engine stores it if the thread is a prompt's."""

    thread: ThreadRef
    message: MessageRef
    author: Member
    text: str
    at: datetime
    delivery_id: str | None = None  # the platform's event id, for de-duplicating redeliveries


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyEdited:
    message: MessageRef
    text: str
    at: datetime  # the platform's edit time: edits apply in this order, whatever order they arrive in
    # The thread the message is in, when the platform says: lets an edit that overtakes its message
    # be kept for it. Without it, edits of messages the bot has not stored are not kept.
    thread: ThreadRef | None = None
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyDeleted:
    message: MessageRef
    at: datetime
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionChanged:
    message: MessageRef
    user_id: str
    emoji: str
    added: bool
    at: datetime
    delivery_id: str | None = None


MessageEvent = ReplyPosted | ReplyEdited | ReplyDeleted | ReactionChanged


# -- outbound content ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """A member's words quoted by the bot. ``text`` is untrusted and rendered inert."""

    text: str
    author: str | None = None  # None in anonymous sessions
    note: str = ""  # e.g. "3 reactions"


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    heading: str = ""
    lines: tuple[str, ...] = ()
    quotes: tuple[Quote, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Platform-neutral content. Every string is plain text: adapters add the formatting and
    escape all of it, so neither a plan's text nor a member's reply can inject markup or mentions.
    """

    title: str = ""
    body: str = ""
    sections: tuple[Section, ...] = ()
    attachments: tuple[Attachment, ...] = ()

    def plain_text(self) -> str:
        """A readable plain-text rendering (the console's form and every adapter's fallback)."""
        parts: list[str] = []
        if self.title:
            parts.append(self.title)
        if self.body:
            parts.append(self.body)
        for section in self.sections:
            chunk: list[str] = []
            if section.heading:
                chunk.append(section.heading)
            chunk.extend(section.lines)
            for quote in section.quotes:
                who = f" — {quote.author}" if quote.author else ""
                note = f" ({quote.note})" if quote.note else ""
                chunk.append(f"  > {quote.text}{who}{note}")
            parts.append("\n".join(chunk))
        return "\n\n".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReply:
    """The engine's answer to a command; ``ephemeral`` answers go to the asker only."""

    text: str
    ephemeral: bool = True
