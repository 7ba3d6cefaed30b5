"""``/popup join``, ``/popup invite`` and ``/popup leave``: a running session's channels, as
commands change them, and what the asker is told.

The store attaches and detaches; catching a channel up (or no longer trying to) is the engine's,
reached through :class:`~sessions.commands.control.SessionControl`. Who may run a word is checked
by :class:`~sessions.commands.handlers.CommandHandlers`, whose ``require`` and ``active`` these
handlers are given.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sessions import rights
from sessions.channels import names_of, where
from sessions.commands.control import SessionControl
from sessions.commands.invite import invited_list
from sessions.commands.parse import parse_code
from sessions.errors import CommandError, PermissionDenied
from sessions.model import ChannelRef, CommandInvoked, CommandReply
from sessions.records import SessionRecord, SessionState
from sessions.settings import EngineSettings
from sessions.store import Store

_log = logging.getLogger(__name__)

Require = Callable[[str, CommandInvoked, SessionRecord | None], None]
Active = Callable[[CommandInvoked], Awaitable[SessionRecord]]


class ChannelWords:
    """``require`` refuses a word the member may not run; ``active`` is the channel's running session
    (or a :class:`CommandError` saying there is none)."""

    def __init__(
        self, *, store: Store, settings: EngineSettings, control: SessionControl, require: Require, active: Active
    ) -> None:
        self._store = store
        self._settings = settings
        self._control = control
        self._require = require
        self._active = active

    async def join(self, command: CommandInvoked) -> CommandReply:
        code = parse_code(command.args, "Usage: /popup join CODE (the code is in the answer to /popup start).")
        self._require("join", command, None)
        session = await self._store.session_by_join_code(code)
        if session is None:
            raise CommandError(
                "That join code belongs to no running session: it is mistyped, or its session has ended."
            )
        if command.channel in session.channels:
            return CommandReply(text=f"This channel is already in session #{session.id} “{session.title}”.")
        caught_up = await self._attach(
            session, command.channel, command,
            busy=lambda held: f"This channel is already in {held}, which is still running. "
            "Leave it (/popup leave) or let it end first, then join.",
        )
        home = names_of(await self._store.session_channels(session.id)).get(session.channel)
        then = "the opening and the prompts so far are posted here" if caught_up else (
            "what it has posted so far follows here as soon as this channel can be posted in"
        )
        return CommandReply(
            text=f"This channel joined session #{session.id} “{session.title}” (started in "
            f"{where(session.channel, home)}): {then}; later prompts and the recap come at their time."
        )

    async def invite(self, command: CommandInvoked) -> CommandReply:
        session = await self._active(command)
        self._require("invite", command, session)
        if session.state not in (SessionState.SCHEDULED, SessionState.RUNNING):
            raise CommandError("That session is ending: there is nothing left to invite a list to.")
        channel = invited_list(command.args, self._control.configured_channels("email"))
        name = channel.channel_id
        if channel in session.channels:
            return CommandReply(text=f"The list {name} is already in session #{session.id} “{session.title}”.")
        caught_up = await self._attach(
            session, channel, command,
            busy=lambda held: f"The list {name} is already in {held}, which is still running.",
        )
        then = "it has the opening and the prompts so far" if caught_up else (
            "the mail server did not take every mail yet, so the rest of the catching up follows as soon as it does"
        )
        return CommandReply(
            text=f"Invited the list {name} to session #{session.id}: {then}, and gets the rest at their times and "
            "the recap by mail.",
            ephemeral=False,
        )

    async def _attach(
        self, session: SessionRecord, channel: ChannelRef, command: CommandInvoked, *, busy: Callable[[str], str]
    ) -> bool:
        """Attach ``channel`` to ``session`` (brought in by the command's member) and post it what the
        session has posted so far; True when it has all of it. ``busy`` words the refusal when another
        running session holds the channel ("session #3 “Title”" goes in)."""
        name = await self._control.channel_name(channel)
        joined_by = f"{command.member.platform}:{command.member.user_id}"
        holder = await self._store.attach_channel(session.id, channel, name=name, joined_by=joined_by)
        if holder is not None:
            other = await self._store.get_session(holder)
            title = f" “{other.title}”" if other else ""
            raise CommandError(busy(f"session #{holder}{title}"))
        _log.info("session %d: %s channel %s joined", session.id, channel.platform, channel.channel_id)
        return await self._control.channel_joined(session.id, channel)

    async def leave(self, command: CommandInvoked) -> CommandReply:
        """The channel it is typed in leaves; ``/popup leave email:NAME`` takes a list out instead."""
        session = await self._active(command)
        channel = command.channel
        if command.args:
            channel = invited_list(command.args, self._control.configured_channels("email"), word="leave")
        leaving = "This channel" if channel == command.channel else f"The list {channel.channel_id}"
        if channel == session.channel:
            raise CommandError(
                "The session started in this channel, so it cannot leave: /popup stop closes the session "
                "with its recap, /popup cancel ends it without."
            )
        joined = next((c for c in await self._store.session_channels(session.id) if c.channel == channel), None)
        if joined is None:
            raise CommandError(f"{leaving} is not in session #{session.id}.")
        if not rights.may_leave(command.member, session, joined.joined_by, self._settings.organisers):
            raise PermissionDenied(
                "Only the session's organisers, its starter, whoever brought this channel in, or an admin can "
                "take this channel out of it."
            )
        if not await self._store.detach_channel(session.id, channel):
            raise CommandError(f"{leaving} is no longer in that session.")
        self._control.channel_left(session.id, channel)
        here = "here" if channel == command.channel else "to it"
        return CommandReply(
            text=f"{leaving} left session #{session.id} “{session.title}”. Replies already given {here} stay in "
            f"it; nothing more of it is posted {here}.",
            ephemeral=channel == command.channel,
        )
