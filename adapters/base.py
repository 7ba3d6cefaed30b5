"""The port every adapter implements: the engine's :class:`~sessions.ports.ChatPort` plus a life cycle.

Inbound, every adapter keeps one rule (see docs/architecture.md): an event is seen once the
handler's ``on_event`` has returned; one it raised on is :class:`~sessions.errors.NotStored`, and
is handed over again (Slack redelivers after a failed request; Discord's adapter holds and retries
it) or reported to whoever sent it (console), never dropped without an error in the log.
"""

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
