"""Channels as people name them: the config's channel refs (``"slack:C0123"``), and where a voice
came from ("#learning on Slack") for the pulse, the status and the recap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sessions.model import ChannelRef
from sessions.records import PostRecord, SessionChannel

CHANNEL_REF_FORMS = (
    '"slack:C0123ABC" (a Slack channel id), "discord:987654321" (a Discord channel id), '
    '"email:NAME" (a list of [[email.lists]]) or "console:NAME"'
)
# A mailing list's name: one plain word, as it travels inside Message-IDs and after "email:".
EMAIL_LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")

_REF_FORMS = (
    re.compile(r"(slack):([CGD][A-Z0-9]{2,})"),
    re.compile(r"(discord):([0-9]{1,20})"),
    re.compile(rf"(email):({EMAIL_LIST_NAME.pattern})"),
    re.compile(r"(console):(\S+)"),
)

_PLATFORM_NAMES = {
    "slack": "Slack", "discord": "Discord", "console": "the console", "web": "the web", "email": "e-mail",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Circle:
    """``[[circles]]``: channels that often meet, started together by ``/popup start PLAN circle:NAME``."""

    name: str
    channels: tuple[ChannelRef, ...]


def parse_channel_ref(text: str) -> ChannelRef | None:
    """``"slack:C0123"`` and the other :data:`CHANNEL_REF_FORMS` as a ChannelRef; None otherwise."""
    for pattern in _REF_FORMS:
        found = pattern.fullmatch(text.strip())
        if found is not None:
            return ChannelRef(platform=found[1], channel_id=found[2])
    return None


def platform_label(platform: str) -> str:
    return _PLATFORM_NAMES.get(platform, platform)


def where(channel: ChannelRef, name: str | None = None) -> str:
    """``#learning on Slack``; the channel id where the adapter could not tell a name."""
    if channel.platform == "console":
        return "the console"
    return f"{name or channel.channel_id} on {platform_label(channel.platform)}"


def names_of(channels: Iterable[SessionChannel]) -> dict[ChannelRef, str]:
    return {c.channel: c.name for c in channels if c.name}


def channel_homes(posts: Iterable[PostRecord]) -> dict[tuple[str, str], ChannelRef]:
    """The session channel a reply was written in, by the reply's ``(platform, channel_id)``.

    A reply's own channel is its thread's on Discord (the thread is a channel there) and the
    channel itself on Slack and the console; the ledger's posts know which prompt thread hangs
    under which session channel.
    """
    homes: dict[tuple[str, str], ChannelRef] = {}
    for post in posts:
        homes[(post.channel.platform, post.channel.channel_id)] = post.channel
        if post.thread is not None:
            homes[(post.channel.platform, post.thread.thread_id)] = post.channel
    return homes


def home_of(homes: Mapping[tuple[str, str], ChannelRef], platform: str, channel_id: str) -> ChannelRef:
    return homes.get((platform, channel_id)) or ChannelRef(platform=platform, channel_id=channel_id)
