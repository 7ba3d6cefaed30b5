"""A recording :class:`~sessions.ports.EventHandler` for Discord adapter tests without the engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from sessions.model import CommandInvoked, CommandReply, MessageEvent


class RecordingHandler:
    def __init__(self, reply: Callable[[CommandInvoked], CommandReply] | None = None) -> None:
        self.commands: list[CommandInvoked] = []
        self.events: list[MessageEvent] = []
        self._reply = reply or (lambda command: CommandReply(text=f"ok {command.name}"))
        self._changed = asyncio.Event()

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        self.commands.append(command)
        self._changed.set()
        return self._reply(command)

    async def on_event(self, event: MessageEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
