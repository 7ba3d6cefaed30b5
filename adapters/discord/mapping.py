"""From discord.py objects and raw gateway payloads to Popup's neutral events.

Nothing here does I/O or raises on odd input: a mapping that cannot make sense of its input
returns ``None`` (the event is ignored and logged by the caller), because an exception in an event
handler would only be swallowed by discord.py's dispatcher anyway and say less.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import discord

from sessions.model import (
    ChannelRef,
    Member,
    MessageRef,
    ReactionChanged,
    ReplyDeleted,
    ReplyEdited,
    ReplyPosted,
    ThreadRef,
)

PLATFORM = "discord"

# Only what people type counts as a reply; joins, pins, thread-created notices and the like don't.
_REPLY_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
_THREAD_TYPES = frozenset(
    {discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread}
)


def channel_ref(channel_id: int | str) -> ChannelRef:
    return ChannelRef(platform=PLATFORM, channel_id=str(channel_id))


def message_ref(channel_id: int | str, message_id: int | str) -> MessageRef:
    return MessageRef(channel=channel_ref(channel_id), message_id=str(message_id))


def thread_ref(thread_id: int | str, parent_id: int | str | None) -> ThreadRef:
    """A thread is known by its own id; the parent is informative (unknown for uncached threads)."""
    return ThreadRef(channel=channel_ref(parent_id if parent_id else thread_id), thread_id=str(thread_id))


def member_from(user: discord.abc.User, *, permissions: discord.Permissions | None = None) -> Member:
    """The neutral member: role ids (never names: anyone with Manage Roles can name a role
    "Organiser"), and ``is_admin`` for Manage Server or Administrator. ``permissions`` are an
    interaction's resolved permissions, which Discord computes for us and so also hold when the
    guild's roles are not cached."""
    roles: list[str] = []
    is_admin = False
    if isinstance(user, discord.Member):
        for role in user.roles:
            if role.is_default():  # @everyone: every member has it; not a useful organiser role
                continue
            roles.append(str(role.id))
        guild_perms = user.guild_permissions
        is_admin = guild_perms.manage_guild or guild_perms.administrator
    if permissions is not None:
        is_admin = is_admin or permissions.manage_guild or permissions.administrator
    return Member(
        platform=PLATFORM,
        user_id=str(user.id),
        display_name=user.display_name,
        roles=tuple(roles),
        is_admin=is_admin,
        is_bot=user.bot,
    )


def reply_text(content: str, attachment_urls: list[str]) -> str:
    """What a member said: the text, then links to what they attached (a photo is an answer too)."""
    return "\n".join([content, *attachment_urls]) if attachment_urls else content


def reply_from_message(message: discord.Message, *, parent_id: int | None = None) -> ReplyPosted | None:
    """A member's message in a thread, or ``None`` for anything else (bots, DMs, channel messages).

    A thread the client has not cached (archived and reopened, or created while we were away)
    arrives as a ``PartialMessageable`` whose type is unknown; we forward it and let the engine
    decide by thread id whether it belongs to a prompt.
    """
    author = message.author
    if author.bot or author.system or message.webhook_id is not None or message.guild is None:
        return None
    if message.type not in _REPLY_TYPES:
        return None
    channel = message.channel
    if isinstance(channel, discord.Thread):
        parent_id = channel.parent_id
    elif isinstance(channel, discord.PartialMessageable):
        if channel.type is not None and channel.type not in _THREAD_TYPES:
            return None
    else:
        return None  # a cached channel that is not a thread: not a reply
    return ReplyPosted(
        thread=thread_ref(channel.id, parent_id),
        message=message_ref(channel.id, message.id),
        author=member_from(author),
        text=reply_text(message.content, [a.url for a in message.attachments]),
        at=message.created_at,
    )


def edit_from_payload(data: object) -> ReplyEdited | None:
    """A MESSAGE_UPDATE payload (``RawMessageUpdateEvent.data``) as an edit of a member's text.

    Updates without ``edited_timestamp`` are Discord filling in link previews, not edits.
    """
    if not isinstance(data, Mapping):
        return None
    message_id, channel_id = _snowflake(data.get("id")), _snowflake(data.get("channel_id"))
    content = data.get("content")
    edited_at = _timestamp(data.get("edited_timestamp"))
    author = data.get("author")
    if message_id is None or channel_id is None or not isinstance(content, str) or edited_at is None:
        return None
    if isinstance(author, Mapping) and (author.get("bot") is True or author.get("system") is True):
        return None
    if data.get("webhook_id") is not None:
        return None
    urls = [a["url"] for a in _list(data.get("attachments")) if isinstance(a, Mapping) and _is_str(a.get("url"))]
    return ReplyEdited(message=message_ref(channel_id, message_id), text=reply_text(content, urls), at=edited_at)


def deletion(channel_id: int, message_id: int, *, at: datetime) -> ReplyDeleted:
    return ReplyDeleted(message=message_ref(channel_id, message_id), at=at)


def reaction_from_raw(
    payload: discord.RawReactionActionEvent, *, own_id: int | None, at: datetime
) -> ReactionChanged | None:
    """A reaction added or removed by a person (our own and other bots' reactions don't count)."""
    if payload.user_id == own_id or (payload.member is not None and payload.member.bot):
        return None
    if payload.guild_id is None:
        return None
    return ReactionChanged(
        message=message_ref(payload.channel_id, payload.message_id),
        user_id=str(payload.user_id),
        emoji=str(payload.emoji),
        added=payload.event_type == "REACTION_ADD",
        at=at,
    )


def start_args(plan: str | None, day: str | None, anonymous: bool | None) -> tuple[str, ...]:
    """``/popup start`` options as the engine's words, in order, empty ones left out."""
    args: list[str] = []
    for value in (plan, day):
        if value is not None and value.strip():
            args.append(value.strip())
    if anonymous:
        args.append("anonymous")
    return tuple(args)


def now() -> datetime:
    return datetime.now(UTC)


# -- raw payload helpers ------------------------------------------------------------------------


def _snowflake(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**64 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        number = int(value)
        return number if 0 < number < 2**64 else None
    return None


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or out of datetime's range once in UTC
        return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_str(value: object) -> bool:
    return isinstance(value, str)
