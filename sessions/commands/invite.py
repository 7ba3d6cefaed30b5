"""``/popup invite email:NAME``: a configured mailing list joins the session of this channel.

The list gets the opening and every prompt posted so far at once, then the rest at their times and
the recap, like any channel of the session (``SessionControl.attach_channel``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from sessions import rights
from sessions.attach import Attached
from sessions.errors import CommandError, PermissionDenied
from sessions.model import ChannelRef, CommandInvoked, CommandReply
from sessions.records import SessionRecord
from sessions.rights import Organiser
from sessions.store import Store

_log = logging.getLogger(__name__)

USAGE = "Usage: /popup invite email:NAME (a list named in the bot's [[email.lists]])"
# Inviting a list changes who hears the session: guarded like advancing it (sessions/rights.py).
_GUARDED_LIKE = "next"


def invited_channel(args: Sequence[str]) -> ChannelRef:
    """``email:NAME`` as the channel it names."""
    if len(args) != 1:
        raise CommandError(USAGE)
    platform, _, name = args[0].partition(":")
    if platform.lower() != "email" or not name:
        raise CommandError(f"I can invite mailing lists: {USAGE}")
    return ChannelRef(platform="email", channel_id=name)


def check_allowed(command: CommandInvoked, session: SessionRecord, organisers: Sequence[Organiser]) -> None:
    if not rights.may_run(command.member, _GUARDED_LIKE, session, organisers):
        member = command.member
        _log.info("refused /popup invite from %s user %s", member.platform, member.user_id)
        raise PermissionDenied(
            "Only the session's organisers (or the member who started it, or an admin) can invite a list."
        )


def answer(outcome: Attached, session: SessionRecord, channel: ChannelRef) -> CommandReply:
    name = channel.channel_id
    match outcome:
        case Attached.CAUGHT_UP:
            text = (f"Invited the list {name} to session #{session.id}: it has the opening and the prompts so "
                    "far, and gets the rest at their times and the recap by mail.")
        case Attached.BEHIND:
            text = (f"Invited the list {name} to session #{session.id}; the mail server did not take every mail "
                    "yet, so the rest of the catching up follows as soon as it does.")
        case Attached.BUSY:
            raise CommandError(f"The list {name} is already in another running session.")
        case Attached.ENDED:
            raise CommandError("That session is ending: there is nothing left to invite a list to.")
    return CommandReply(text=text, ephemeral=False)


class Inviter(Protocol):
    async def attach_channel(self, session: SessionRecord, channel: ChannelRef) -> Attached: ...


async def invite(
    command: CommandInvoked, *, store: Store, organisers: Sequence[Organiser], control: Inviter
) -> CommandReply:
    channel = invited_channel(command.args)
    session = await store.active_session(command.channel)
    if session is None:
        raise CommandError("No popup session is running in this channel. Start one with /popup start.")
    check_allowed(command, session, organisers)
    return answer(await control.attach_channel(session, channel), session, channel)
