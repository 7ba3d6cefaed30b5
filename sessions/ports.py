"""The two directions between the engine and a chat platform.

:class:`ChatPort` is what the engine calls to post; :class:`EventHandler` is what an adapter calls
when something happens on its platform. An adapter (see :mod:`adapters.base`) implements the first
and is handed the second at ``start``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sessions.model import ChannelRef, CommandInvoked, CommandReply, Message, MessageEvent, Posted, ThreadRef


class ChatPort(Protocol):
    @property
    def platform(self) -> str:
        """The platform name used in refs: ``"console"``, ``"slack"``, ``"discord"``."""
        ...

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        """Post ``content`` in ``channel`` (split to the platform's limits as needed).

        ``key`` is unique per intended post; adapters attach it where the platform allows
        (Discord nonce, Slack message metadata) so :meth:`find_post` can find the post again.
        """
        ...

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        """Post ``content`` as a top-level message that opens a thread; ``Posted.thread`` is set."""
        ...

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        """Look for an earlier post made with ``key`` (after a crash or a failed response).

        Returns ``None`` when the platform has no such post, or cannot tell; the engine then posts.
        """
        ...


class EventHandler(Protocol):
    async def on_command(self, command: CommandInvoked) -> CommandReply:
        """Carry out a ``/popup`` command and return the answer for the asker."""
        ...

    async def on_event(self, event: MessageEvent) -> None:
        """Record a reply, edit, deletion or reaction. Returns once it is durable (or ignored),
        so an adapter that acknowledges after this call never acknowledges a lost event.

        If it raises, the event is not stored, and the adapter must not take it as seen: it gets
        the event handed over again (the platform's redelivery, or its own retry), or tells whoever
        sent it; an event given up on is logged as an error. Adapters report this as
        :class:`~sessions.errors.NotStored`.
        """
        ...


@runtime_checkable
class Backfills(Protocol):
    """An adapter that can fetch thread replies posted while the bot was offline."""

    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        """Fetch each thread's history and hand every reply to the handler (the store dedupes)."""
        ...


@runtime_checkable
class PacesFanOut(Protocol):
    """An adapter whose requests wait their turn at one pacer for all its channels (Discord's global
    rate limit), and so wants a fan-out's channels all queued there at once: then every channel's
    first request goes out before any channel's second, and no channel's post waits on another's."""

    @property
    def parallel_channels(self) -> int:
        """How many channels of one fan-out the ledger may serve at once on this platform."""
        ...


@runtime_checkable
class NamesChannels(Protocol):
    """An adapter that can tell a channel's display name, for "#learning on Slack" in the recap."""

    async def channel_name(self, channel: ChannelRef) -> str | None:
        """The name people know the channel by ("#learning"); None when the platform cannot tell."""
        ...


@runtime_checkable
class ConfiguredChannels(Protocol):
    """An adapter whose channels are a configured set, named in ``/popup invite`` (e-mail's lists)."""

    def channel_names(self) -> Sequence[str]:
        """The names the channels are invited by, as configured."""
        ...
