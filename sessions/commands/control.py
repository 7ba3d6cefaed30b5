"""What the ``/popup`` handlers may ask of the engine: :class:`SessionControl`."""

from __future__ import annotations

from typing import Protocol

from sessions.model import ChannelRef
from sessions.records import SessionRecord


class SessionControl(Protocol):
    """The session life cycle as commands drive it (the engine implements it)."""

    async def open_session(self, session_id: int) -> None: ...

    async def close_session(self, session_id: int) -> None: ...

    async def cancel_session(self, session: SessionRecord) -> bool:
        """End without a recap; False when the session had already ended."""
        ...

    async def post_prompt_now(self, session_id: int, prompt_id: int) -> None: ...

    async def channel_joined(self, session_id: int, channel: ChannelRef) -> bool:
        """Post what the session has posted so far in a channel that just joined; False when the
        channel could not take it yet (it is tried again later)."""
        ...

    def channel_left(self, session_id: int, channel: ChannelRef) -> None: ...

    def reaches(self, channel: ChannelRef) -> bool:
        """Whether an adapter for the channel's platform is running."""
        ...

    async def channel_name(self, channel: ChannelRef) -> str | None:
        """The channel's display name ("#learning"), if its adapter can tell."""
        ...

    def configured_channels(self, platform: str) -> tuple[str, ...]:
        """The channels of ``platform`` an organiser names to invite them (e-mail's lists); empty when
        its adapter has no such set or does not run."""
        ...
