"""The console adapter: the terminal is one channel.

A line ``/popup …`` is a command; any other line is a reply in the newest prompt's thread. The
same adapter drives the real engine in the demo and in tests (``say``, ``edit``, ``delete``,
``react`` act as any member), in the manner of errbot's TestBackend.

A failed store is never taken as seen (the rule every adapter keeps; see docs/architecture.md).
Here whoever typed the event is the only one who can send it again, so they hear of it: ``say``,
``edit``, ``delete`` and ``react`` raise :class:`~sessions.errors.NotStored` (the engine's error as
its cause), and a line typed on the terminal that was not stored is answered with a notice to type
it again, and logged as an error once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import shlex
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from sessions.errors import NotStored
from sessions.model import (
    ChannelRef,
    CommandInvoked,
    Member,
    Message,
    MessageEvent,
    MessageRef,
    Posted,
    ReactionChanged,
    ReplyDeleted,
    ReplyEdited,
    ReplyPosted,
    ThreadRef,
)
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

PLATFORM = "console"
# Terminal control bytes (ANSI escapes start with \x1b) and bidi overrides that reorder a line.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x9b\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """Make member text safe to print: no terminal escape sequences, no cursor tricks."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class ConsoleAdapter:
    """A chat channel on a text stream. ``read_stdin`` makes it interactive (``popup run``)."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        out: TextIO | None = None,
        channel_id: str = "console",
        user: Member | None = None,
        read_stdin: bool = False,
        on_thread: Callable[[ThreadRef], Awaitable[None]] | None = None,
    ) -> None:
        self._out = out or sys.stdout
        self.channel = ChannelRef(platform=PLATFORM, channel_id=channel_id)
        self.user = user or Member(platform=PLATFORM, user_id="you", display_name="you", is_admin=True)
        self._read_stdin = read_stdin
        self.on_thread = on_thread  # called with each prompt thread it opens (the demo's crowd listens)
        self._handler: EventHandler | None = None
        # Ids must not repeat across restarts (the store keys threads and replies by them), so
        # each process numbers its messages under a prefix of its own start time.
        self._boot = f"{time.time_ns() // 1_000_000:x}"
        self._ids = itertools.count(1)
        self._posts: dict[str, Posted] = {}
        self._thread_numbers: dict[str, int] = {}
        self.newest_thread: ThreadRef | None = None
        self._reader: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self, handler: EventHandler) -> None:
        self._handler = handler
        if self._read_stdin:
            self._reader = asyncio.create_task(self._read_lines(), name="console-stdin")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None

    async def _read_lines(self) -> None:
        # A daemon thread, not the default executor: a blocked readline must not hold up exit.
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        while (line := await lines.get()) is not None:
            text = line.rstrip("\r\n")
            if text.strip():
                try:
                    await self.say(text)
                except NotStored as error:
                    _log.error("console: a line was not stored", exc_info=error.__cause__)
                    self._print("(not stored: the bot could not save that line; type it again)")
                except Exception:
                    _log.exception("console line failed")

    # -- the engine's port ---------------------------------------------------------------------

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        posted = Posted(message=MessageRef(channel=channel, message_id=self._next_id()))
        self._print_post(content)
        self._posts[key] = posted
        return posted

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        message = MessageRef(channel=channel, message_id=self._next_id())
        thread = ThreadRef(channel=channel, thread_id=f"t{message.message_id}")
        number = len(self._thread_numbers) + 1
        self._thread_numbers[thread.thread_id] = number
        self._print_post(content, thread_number=number)
        posted = Posted(message=message, thread=thread)
        self._posts[key] = posted
        self.newest_thread = thread
        if self.on_thread is not None:
            await self.on_thread(thread)
        return posted

    def _next_id(self) -> str:
        return f"m{self._boot}.{next(self._ids)}"

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        # Only this process's output can be looked back on; after a restart it is gone.
        return self._posts.get(key)

    # -- acting as a member ----------------------------------------------------------------------

    def _need_handler(self) -> EventHandler:
        if self._handler is None:
            raise RuntimeError("the console adapter is not started")
        return self._handler

    async def _hand_over(self, event: MessageEvent) -> None:
        """The engine's ``on_event``; its failure raised as :class:`NotStored`."""
        handler = self._need_handler()
        try:
            await handler.on_event(event)
        except Exception as error:
            raise NotStored(event.delivery_id or event.message.message_id) from error

    async def say(self, text: str, member: Member | None = None) -> MessageRef | None:
        """Type a line: a command, or a reply in the newest prompt's thread (raises
        :class:`NotStored` if the engine could not store the reply)."""
        member = member or self.user
        if text.lstrip().startswith("/popup"):
            await self.command(text, member)
            return None
        thread = self.newest_thread
        if thread is None:
            self._print("(no prompt has been posted yet: a line that is not /popup … replies to the newest prompt)")
            return None
        message = MessageRef(channel=self.channel, message_id=self._next_id())
        if member is not self.user:
            self._print(
                f"  ↳ {inert(member.display_name)} in thread {self._thread_numbers[thread.thread_id]}: {inert(text)}"
            )
        await self._hand_over(
            ReplyPosted(thread=thread, message=message, author=member, text=text, at=datetime.now(UTC))
        )
        return message

    async def command(self, line: str, member: Member | None = None) -> str:
        member = member or self.user
        try:
            words = shlex.split(line.strip())
        except ValueError:
            words = line.split()
        args = tuple(words[2:]) if len(words) > 1 else ()
        name = words[1] if len(words) > 1 else "help"
        reply = await self._need_handler().on_command(
            CommandInvoked(channel=self.channel, member=member, name=name, args=args, at=datetime.now(UTC))
        )
        prefix = "(only you see this) " if reply.ephemeral else ""
        self._print(f"{prefix}{reply.text}")
        return reply.text

    async def edit(self, message: MessageRef, text: str, member: Member | None = None) -> None:
        who = (member or self.user).display_name
        self._print(f"  ✎ {inert(who)} edited a reply: {inert(text)}")
        await self._hand_over(
            ReplyEdited(message=message, text=text, at=datetime.now(UTC), thread=self.newest_thread)
        )

    async def delete(self, message: MessageRef, member: Member | None = None) -> None:
        who = (member or self.user).display_name
        self._print(f"  ✗ {inert(who)} deleted a reply")
        await self._hand_over(ReplyDeleted(message=message, at=datetime.now(UTC)))

    async def react(self, message: MessageRef, member: Member, emoji: str, *, added: bool = True) -> None:
        await self._hand_over(
            ReactionChanged(message=message, user_id=member.user_id, emoji=emoji, added=added, at=datetime.now(UTC))
        )

    # -- rendering ---------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _print_post(self, content: Message, *, thread_number: int | None = None) -> None:
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        label = f" · thread {thread_number}" if thread_number is not None else ""
        rule = "─" * 72
        lines = [f"┌{rule}", f"│ Popup bot · #{self.channel.channel_id} · {stamp}{label}"]
        for line in inert(content.plain_text()).splitlines():
            lines.append(f"│ {line}")
        for attachment in content.attachments:
            lines.append(f"│ [attached: {inert(attachment.filename)}, {len(attachment.data):,} bytes]")
        lines.append(f"└{rule}")
        self._print("\n".join(lines))
