"""The port every adapter implements: the engine's :class:`~sessions.ports.ChatPort` plus a life cycle."""

from __future__ import annotations

from typing import Protocol

from sessions.ports import ChatPort, EventHandler


class Adapter(ChatPort, Protocol):
    async def start(self, handler: EventHandler) -> None:
        """Connect and begin delivering events to ``handler``; returns once ready."""
        ...

    async def stop(self) -> None:
        """Disconnect; idempotent. Events already handed to the engine are finished first."""
        ...
