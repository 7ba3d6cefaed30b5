"""Attaching a channel to a running session and catching it up: a stand-in for issue 13's join.

``/popup invite email:NAME`` (sessions/commands/invite.py) needs what ``/popup join CODE`` will do
for any channel: add the channel to the session, then post it the opening and every prompt already
out, through the outbound ledger (so each goes to the new channel once, and to no other channel
again). This module does the least of that; when multi-channel sessions land, ``Engine.attach_channel``
is re-pointed at their join and this module goes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from sessions import compose
from sessions.errors import CommandError
from sessions.ledger import Ledger
from sessions.model import ChannelRef
from sessions.records import PromptState, SessionState
from sessions.store import Store

_log = logging.getLogger(__name__)


class Attached(enum.Enum):
    CAUGHT_UP = "caught up"  # in the session, and has every post so far
    BEHIND = "behind"  # in the session; some posts could not go out yet (tried again later)
    BUSY = "busy"  # the channel is in another running session
    ENDED = "ended"  # the session is closing or over


@runtime_checkable
class ChannelJoins(Protocol):
    """The store's side: add a channel to a session's channels."""

    async def add_session_channel(self, session_id: int, channel: ChannelRef) -> int | None:
        """Add ``channel`` unless it is in an active session already. Returns the active session the
        channel is in afterwards (``session_id`` when it was added or was there already)."""
        ...


@runtime_checkable
class KnowsChannels(Protocol):
    """An adapter whose channels are configured (e-mail lists) and can be named in a command."""

    def channel_names(self) -> Sequence[str]: ...

    def has_channel(self, channel: ChannelRef) -> bool: ...


def check_channel(ports: Mapping[str, object], channel: ChannelRef) -> None:
    """Raise :class:`CommandError` unless an adapter runs for ``channel`` and knows it."""
    port = ports.get(channel.platform)
    if port is None:
        raise CommandError(f"Popup does not run on {channel.platform} here, so {channel.channel_id!r} cannot join.")
    if isinstance(port, KnowsChannels) and not port.has_channel(channel):
        known = ", ".join(port.channel_names()) or "none"
        raise CommandError(f"There is no {channel.platform} channel {channel.channel_id!r} (configured: {known}).")


async def attach_channel(store: Store, ledger: Ledger, session_id: int, channel: ChannelRef) -> Attached:
    """Add ``channel`` to the session and post it what the session's other channels have had.

    Call it holding the session's lock (the engine does), so no prompt goes out half-way through.
    """
    if not isinstance(store, ChannelJoins):
        raise TypeError(f"{type(store).__name__} cannot add channels to a session")
    session = await store.get_session(session_id)
    if session is None or session.state not in (SessionState.SCHEDULED, SessionState.RUNNING):
        return Attached.ENDED
    holder = await store.add_session_channel(session_id, channel)
    if holder != session_id:
        return Attached.BUSY
    session = await store.get_session(session_id)
    if session is None:
        return Attached.ENDED
    if session.state is SessionState.SCHEDULED:
        return Attached.CAUGHT_UP  # the opening, still to go out, goes to every channel it has by then
    prompts = await store.prompts(session_id)
    if not await ledger.deliver(session, "opening", compose.opening(session, prompts)):
        return Attached.BEHIND
    for prompt in prompts:
        if prompt.state is not PromptState.POSTED:
            continue
        content = compose.prompt(session, prompt, len(prompts))
        if not await ledger.deliver(session, f"prompt:{prompt.position}", content, prompt_id=prompt.id, thread=True):
            return Attached.BEHIND
    _log.info("session %d: %s %s attached and caught up", session_id, channel.platform, channel.channel_id)
    return Attached.CAUGHT_UP
