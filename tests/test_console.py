"""The console adapter when the engine cannot store: whoever typed the event hears of it."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from adapters.console import ConsoleAdapter
from sessions.errors import NotStored, PopupError, StorageError
from sessions.model import CommandInvoked, CommandReply, Member, Message, MessageEvent


class BrokenStore:
    """An engine whose database cannot write: every event fails."""

    def __init__(self) -> None:
        self.attempts: list[MessageEvent] = []

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        return CommandReply(text="ok")

    async def on_event(self, event: MessageEvent) -> None:
        self.attempts.append(event)
        raise StorageError("database is locked")


async def started(out: io.StringIO, *, read_stdin: bool = False) -> tuple[ConsoleAdapter, BrokenStore]:
    adapter = ConsoleAdapter(out=out, read_stdin=read_stdin)
    engine = BrokenStore()
    await adapter.start(engine)
    await adapter.open_thread(adapter.channel, Message(title="What did you learn today?"), key="prompt-1")
    return adapter, engine


async def test_every_member_action_the_engine_fails_to_store_raises_not_stored() -> None:
    adapter, engine = await started(io.StringIO())
    olga = Member(platform="console", user_id="olga", display_name="Olga")
    try:
        with pytest.raises(NotStored) as caught:
            await adapter.say("an answer", olga)
        assert isinstance(caught.value, PopupError)
        assert isinstance(caught.value.__cause__, StorageError)
        (posted,) = engine.attempts
        for act in (
            adapter.edit(posted.message, "an edited answer", olga),
            adapter.delete(posted.message, olga),
            adapter.react(posted.message, olga, "👍"),
        ):
            with pytest.raises(NotStored):
                await act
        assert len(engine.attempts) == 4
    finally:
        await adapter.stop()


async def test_a_typed_line_that_was_not_stored_is_answered_with_a_notice_to_type_it_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="adapters.console")
    monkeypatch.setattr("sys.stdin", io.StringIO("my answer\n"))
    out = io.StringIO()
    adapter, engine = await started(out, read_stdin=True)
    try:
        async with asyncio.timeout(5):
            while "type it again" not in out.getvalue():
                await asyncio.sleep(0.01)
    finally:
        await adapter.stop()
    assert len(engine.attempts) == 1
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "not stored" in error.getMessage()
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], StorageError)
