"""Pure functions from Slack payloads (already-parsed JSON) to Popup's neutral events.

Nothing here talks to Slack or raises for any input: a payload we do not understand, or that is
not ours to handle (bots, our own posts, top-level messages, reactions on files), maps to ``None``.
Display names and admin flags are not in Slack's event payloads; mapping puts the user id (or the
command's handle) there and the adapter fills in what ``users.info`` says (cached).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sessions.model import (
    ChannelRef,
    CommandInvoked,
    Member,
    MessageEvent,
    MessageRef,
    ReactionChanged,
    ReplyDeleted,
    ReplyEdited,
    ReplyPosted,
    ThreadRef,
)

PLATFORM = "slack"

# Message subtypes that are a member writing in a thread (a plain message, one also sent to the
# channel, one with files). Everything else (joins, topic changes, bot posts, …) is not a reply.
_REPLY_SUBTYPES = frozenset({"", "thread_broadcast", "file_share"})


def thread_id(channel_id: str, thread_ts: str) -> str:
    """Slack's ``ts`` is unique only within a channel, so the thread id carries both."""
    return f"{channel_id}:{thread_ts}"


def ts_to_datetime(ts: object) -> datetime | None:
    """A Slack ``"1700000000.000100"`` (or epoch number) as an aware UTC datetime; None if invalid."""
    if isinstance(ts, bool) or not isinstance(ts, str | int | float):
        return None
    try:
        seconds = float(ts)
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def map_command(body: object, *, at: datetime) -> CommandInvoked | None:
    """A slash-command payload (``/popup start plan tomorrow``) as a :class:`CommandInvoked`.

    Empty text means ``help``. The command's own name is not checked: the app registers one
    command, and a workspace may have renamed it.
    """
    if not isinstance(body, dict):
        return None
    channel_id = _str(body, "channel_id")
    user_id = _str(body, "user_id")
    if not channel_id or not user_id:
        return None
    text = body.get("text")
    words = text.split() if isinstance(text, str) else []
    name = words[0].lower() if words else "help"
    return CommandInvoked(
        channel=ChannelRef(platform=PLATFORM, channel_id=channel_id),
        member=Member(platform=PLATFORM, user_id=user_id, display_name=_str(body, "user_name") or user_id),
        name=name,
        args=tuple(words[1:]),
        at=at,
    )


def map_event(body: object, *, bot_user_id: str | None = None) -> MessageEvent | None:
    """An Events API envelope (``{"type": "event_callback", "event": …}``) as a neutral event."""
    if not isinstance(body, dict):
        return None
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    delivery_id = _str(body, "event_id") or None
    kind = event.get("type")
    if kind == "message":
        return _map_message(event, delivery_id=delivery_id, bot_user_id=bot_user_id)
    if kind in ("reaction_added", "reaction_removed"):
        return _map_reaction(event, added=kind == "reaction_added", delivery_id=delivery_id, bot_user_id=bot_user_id)
    return None


def map_thread_message(channel_id: str, message: object, *, bot_user_id: str | None = None) -> ReplyPosted | None:
    """A message from ``conversations.replies`` (no envelope, no channel field) as a reply.

    Used to catch up on threads after downtime; there is no event id, the store dedupes by
    message id. The thread's parent and bot posts map to ``None``, as in :func:`map_event`.
    """
    if not isinstance(message, dict) or not channel_id:
        return None
    event = {**message, "type": "message", "channel": channel_id}
    mapped = _map_message(event, delivery_id=None, bot_user_id=bot_user_id)
    return mapped if isinstance(mapped, ReplyPosted) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackUser:
    """What Popup uses of a ``users.info`` answer."""

    name: str  # "" when Slack has no name for the user
    is_admin: bool  # a workspace admin or owner


def user_from_info(user: object) -> SlackUser:
    """``users.info``'s ``user`` object; a flag counts only when it is exactly ``true``."""
    if not isinstance(user, dict):
        return SlackUser(name="", is_admin=False)
    is_admin = any(user.get(flag) is True for flag in ("is_admin", "is_owner", "is_primary_owner"))
    return SlackUser(name=_display_name(user), is_admin=is_admin)


def command_member(member: Member, user: SlackUser | None) -> Member:
    """The member who typed a command, as ``users.info`` describes them. With ``user`` None (Slack
    could not be asked) the command's handle stands in for the name, and nobody is an admin."""
    if user is None:
        return dataclasses.replace(member, is_admin=False)
    return dataclasses.replace(member, display_name=user.name or member.display_name, is_admin=user.is_admin)


# -- internals -----------------------------------------------------------------------------------


def _display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile")
    candidates: list[object] = []
    if isinstance(profile, dict):
        candidates += [profile.get("display_name"), profile.get("real_name")]
    candidates += [user.get("real_name"), user.get("name")]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return ""


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _is_bot(message: dict[str, Any], bot_user_id: str | None) -> bool:
    if message.get("bot_id") or message.get("subtype") == "bot_message" or message.get("bot_profile"):
        return True
    return bool(bot_user_id) and message.get("user") == bot_user_id


def _is_threaded_reply(message: dict[str, Any]) -> bool:
    thread_ts = _str(message, "thread_ts")
    return bool(thread_ts) and thread_ts != _str(message, "ts")


def _map_message(event: dict[str, Any], *, delivery_id: str | None, bot_user_id: str | None) -> MessageEvent | None:
    channel_id = _str(event, "channel")
    if not channel_id:
        return None
    channel = ChannelRef(platform=PLATFORM, channel_id=channel_id)
    raw_subtype = event.get("subtype")
    if raw_subtype is not None and not isinstance(raw_subtype, str):
        return None
    subtype = raw_subtype or ""
    if subtype == "message_changed":
        return _map_edit(event, channel, delivery_id=delivery_id, bot_user_id=bot_user_id)
    if subtype == "message_deleted":
        return _map_deletion(event, channel, delivery_id=delivery_id, bot_user_id=bot_user_id)
    if subtype not in _REPLY_SUBTYPES or _is_bot(event, bot_user_id) or not _is_threaded_reply(event):
        return None
    user_id = _str(event, "user")
    ts = _str(event, "ts")
    at = ts_to_datetime(ts)
    if not user_id or at is None:
        return None
    text = event.get("text")
    return ReplyPosted(
        thread=ThreadRef(channel=channel, thread_id=thread_id(channel_id, _str(event, "thread_ts"))),
        message=MessageRef(channel=channel, message_id=ts),
        author=Member(platform=PLATFORM, user_id=user_id, display_name=user_id),
        text=text if isinstance(text, str) else "",
        at=at,
        delivery_id=delivery_id,
    )


def _map_edit(
    event: dict[str, Any], channel: ChannelRef, *, delivery_id: str | None, bot_user_id: str | None
) -> ReplyEdited | None:
    message = event.get("message")
    if not isinstance(message, dict) or _is_bot(message, bot_user_id) or not _is_threaded_reply(message):
        return None
    ts = _str(message, "ts")
    text = message.get("text")
    if not ts or not isinstance(text, str):
        return None
    previous = event.get("previous_message")
    if isinstance(previous, dict) and previous.get("text") == text:
        return None  # Slack also sends message_changed for unfurls and reply counts: no new words
    edited = message.get("edited")
    at = ts_to_datetime(edited.get("ts")) if isinstance(edited, dict) else None
    at = at or ts_to_datetime(event.get("event_ts")) or ts_to_datetime(event.get("ts"))
    if at is None:
        return None
    return ReplyEdited(
        message=MessageRef(channel=channel, message_id=ts),
        text=text,
        at=at,
        thread=ThreadRef(channel=channel, thread_id=thread_id(channel.channel_id, _str(message, "thread_ts"))),
        delivery_id=delivery_id,
    )


def _map_deletion(
    event: dict[str, Any], channel: ChannelRef, *, delivery_id: str | None, bot_user_id: str | None
) -> ReplyDeleted | None:
    deleted_ts = _str(event, "deleted_ts")
    at = ts_to_datetime(event.get("event_ts")) or ts_to_datetime(event.get("ts"))
    if not deleted_ts or at is None:
        return None
    previous = event.get("previous_message")
    # Without the previous message we cannot tell; the engine ignores ids it does not know.
    if isinstance(previous, dict) and (_is_bot(previous, bot_user_id) or not _is_threaded_reply(previous)):
        return None
    return ReplyDeleted(message=MessageRef(channel=channel, message_id=deleted_ts), at=at, delivery_id=delivery_id)


def _map_reaction(
    event: dict[str, Any], *, added: bool, delivery_id: str | None, bot_user_id: str | None
) -> ReactionChanged | None:
    item = event.get("item")
    if not isinstance(item, dict) or item.get("type") != "message":
        return None
    channel_id = _str(item, "channel")
    ts = _str(item, "ts")
    user_id = _str(event, "user")
    emoji = _str(event, "reaction")
    at = ts_to_datetime(event.get("event_ts"))
    if not channel_id or not ts or not user_id or not emoji or at is None:
        return None
    if bot_user_id and user_id == bot_user_id:
        return None
    return ReactionChanged(
        message=MessageRef(channel=ChannelRef(platform=PLATFORM, channel_id=channel_id), message_id=ts),
        user_id=user_id,
        emoji=emoji,
        added=added,
        at=at,
        delivery_id=delivery_id,
    )
