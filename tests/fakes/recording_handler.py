"""A recording :class:`~sessions.ports.EventHandler`: stands in for the engine in adapter tests.

Wait on what it recorded with :func:`tests.support.eventually`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sessions.model import CommandInvoked, CommandReply, MessageEvent


@dataclass
class RecordingHandler:
    """Keeps every command and event it is given, and answers commands with :attr:`reply`.

    It can also behave like a slow or broken store: ``gate`` holds each call (before anything is
    recorded) until the test sets it, ``delay`` slows each event down, and ``fail_events`` makes
    that many ``on_event`` calls fail first (as a locked database would).
    """

    reply: CommandReply | None = None  # None: "ok <command name>"
    gate: asyncio.Event | None = None
    delay: float = 0.0
    fail_events: int = 0
    commands: list[CommandInvoked] = field(default_factory=list)
    events: list[MessageEvent] = field(default_factory=list)

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        if self.gate is not None:
            await self.gate.wait()
        self.commands.append(command)
        return self.reply or CommandReply(text=f"ok {command.name}")

    async def on_event(self, event: MessageEvent) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_events > 0:
            self.fail_events -= 1
            raise RuntimeError("database is locked")
        self.events.append(event)
