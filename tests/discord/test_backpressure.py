"""Backpressure: at most ``max_in_flight`` gateway events in flight; reading pauses, nothing is lost.

A handler that holds every event until the test lets go stands in for a slow store, so the bound
is reached for certain; everything is driven by events and counts, never by elapsed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord.gateway import DiscordWebSocket

from adapters.discord.backpressure import InboundGate
from adapters.discord.client import PopupClient
from adapters.discord.internals import keep_alive
from sessions.errors import IncompatibleLibrary
from sessions.model import MessageEvent, ReactionChanged, ReplyEdited, ReplyPosted
from tests.discord.conftest import make_adapter
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.recording_handler import RecordingHandler
from tests.support import eventually

BOUND = 8


class HeldHandler(RecordingHandler):
    """Records each event as it arrives, then holds it until :attr:`release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.running = 0
        self.most_running = 0

    async def on_event(self, event: MessageEvent) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await super().on_event(event)
            await self.release.wait()
        finally:
            self.running -= 1


@pytest.fixture
async def heartbeating_fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(heartbeat_interval_ms=50)
    await server.start()
    yield server
    await server.close()


def open_threads(fake: FakeDiscord, count: int) -> list[int]:
    """Threads that exist at "Discord" but were never sent to the client (uncached)."""
    ids = []
    for i in range(count):
        thread_id = fake.snowflake()
        fake.threads[thread_id] = fake.thread_payload(thread_id, fake.channel_id, f"prompt {i}")
        fake.messages[thread_id] = []
        ids.append(thread_id)
    return ids


def texts(handler: RecordingHandler, thread_id: int) -> list[str]:
    return [e.text for e in handler.events if isinstance(e, ReplyPosted) and e.thread.thread_id == str(thread_id)]


async def test_events_in_flight_stay_within_the_bound_and_the_paused_connection_survives(
    heartbeating_fake: FakeDiscord,
) -> None:
    fake = heartbeating_fake
    handler = HeldHandler()
    # discord.py drops a connection it has heard nothing from for heartbeat_timeout seconds; the
    # pause below lasts several times that while the fake beats every 50 ms.
    adapter = make_adapter(fake, max_in_flight=BOUND, heartbeat_timeout=1.0)
    await adapter.start(handler)
    try:
        client = adapter.client
        assert client is not None
        threads = open_threads(fake, 2)
        sent = 5 * BOUND
        messages = [await fake.say(threads[i % 2], fake.max, f"reply {i}") for i in range(sent)]
        await fake.edit(threads[0], messages[0]["id"], "reply 0, edited")
        await fake.react(threads[0], messages[0]["id"], fake.olga, "👍")

        await eventually(lambda: handler.running == BOUND, what="the bound to be reached")
        assert not client.gate.is_open
        beats = fake.heartbeats
        await eventually(lambda: fake.heartbeats >= beats + 50, within=30, what="heartbeats while paused")
        # ≥ 50 × 50 ms of pause: well past heartbeat_timeout, and still the same gateway session.
        assert handler.running == BOUND
        assert len(handler.events) == BOUND  # nothing more was read meanwhile
        assert fake.connected
        assert (fake.identifies, fake.resumes) == (1, 0)

        handler.release.set()
        await eventually(lambda: len(handler.events) == sent + 2, within=10)
        assert handler.most_running <= BOUND
        assert client.gate.peak <= BOUND
        assert client.gate.pauses >= 1
        for t, thread_id in enumerate(threads):
            assert texts(handler, thread_id) == [f"reply {i}" for i in range(t, sent, 2)]
        edited, reacted = handler.events[-2:]
        assert isinstance(edited, ReplyEdited)
        assert edited.text == "reply 0, edited"
        assert isinstance(reacted, ReactionChanged)
        assert (fake.identifies, fake.resumes) == (1, 0)
        await eventually(lambda: client.gate.in_flight == 0, what="the handler tasks to finish")
    finally:
        handler.release.set()
        await adapter.stop()


async def test_a_connection_dropped_while_paused_resumes_without_loss_or_duplicates(fake: FakeDiscord) -> None:
    handler = HeldHandler()
    adapter = make_adapter(fake, max_in_flight=BOUND)
    await adapter.start(handler)
    try:
        (thread_id,) = open_threads(fake, 1)
        for i in range(3 * BOUND):
            await fake.say(thread_id, fake.max, f"before {i}")
        await eventually(lambda: handler.running == BOUND, what="the bound to be reached")
        await fake.drop_connection()
        for i in range(BOUND):
            await fake.say(thread_id, fake.max, f"after {i}")  # kept for the replay on RESUME
        handler.release.set()
        expected = [f"before {i}" for i in range(3 * BOUND)] + [f"after {i}" for i in range(BOUND)]
        await eventually(lambda: len(handler.events) >= len(expected), within=10)
        await eventually(lambda: fake.resumes == 1 and fake.connected, what="the resume")
        assert texts(handler, thread_id) == expected
        assert handler.most_running <= BOUND
        assert fake.identifies == 1
    finally:
        handler.release.set()
        await adapter.stop()


async def test_stop_while_paused_returns(fake: FakeDiscord) -> None:
    handler = HeldHandler()
    adapter = make_adapter(fake, max_in_flight=2)
    await adapter.start(handler)
    (thread_id,) = open_threads(fake, 1)
    for i in range(5):
        await fake.say(thread_id, fake.max, f"reply {i}")
    await eventually(lambda: handler.running == 2, what="the bound to be reached")
    stopping = asyncio.create_task(adapter.stop())
    handler.release.set()  # the engine finishes what it was handed; the rest waits for a resume
    await asyncio.wait_for(stopping, 15)
    assert adapter.client is None
    assert texts(handler, thread_id)[:2] == ["reply 0", "reply 1"]


def test_max_in_flight_must_be_positive(fake: FakeDiscord) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        make_adapter(fake, max_in_flight=0)


# -- a discord.py without the internals it leans on: a loud start-up error, never a quiet run ----------


async def test_a_discord_py_without_schedule_event_stops_the_start_naming_it(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(discord.Client, "_schedule_event")
    adapter = make_adapter(fake)
    with pytest.raises(IncompatibleLibrary) as caught:
        await adapter.start(RecordingHandler())
    assert f"discord.py {discord.__version__} has no Client._schedule_event" in str(caught.value)
    assert "discord.py>=2.7,<2.8" in str(caught.value)
    assert fake.identifies == 0  # refused before connecting
    await adapter.stop()


async def test_a_websocket_without_keep_alive_stops_the_start_naming_it(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_client = DiscordWebSocket.from_client

    async def without_keep_alive(cls: type[DiscordWebSocket], *args: Any, **kwargs: Any) -> DiscordWebSocket:
        ws = await from_client(*args, **kwargs)
        renamed = ws._keep_alive
        del ws._keep_alive  # as if a release had renamed it
        close = ws.close

        async def close_renamed(code: int = 4000) -> None:  # that release's close knows the new name
            ws._keep_alive = renamed
            await close(code)

        ws.close = close_renamed  # type: ignore[method-assign]
        return ws

    monkeypatch.setattr(DiscordWebSocket, "from_client", classmethod(without_keep_alive))
    adapter = make_adapter(fake)
    with pytest.raises(IncompatibleLibrary, match=r"has no DiscordWebSocket\._keep_alive"):
        await adapter.start(RecordingHandler())
    await adapter.stop()


async def test_events_that_bypass_schedule_event_stop_the_start(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if discord.py created handler tasks some other way: nothing would be counted.
    monkeypatch.setattr(PopupClient, "_schedule_event", discord.Client._schedule_event)
    adapter = make_adapter(fake)
    with pytest.raises(IncompatibleLibrary, match=r"Client\._schedule_event"):
        await adapter.start(RecordingHandler())
    await adapter.stop()


def test_keep_alive_names_a_missing_attribute() -> None:
    with pytest.raises(IncompatibleLibrary, match=r"DiscordWebSocket\._keep_alive"):
        keep_alive(object())  # type: ignore[arg-type]


# -- the gate on its own -------------------------------------------------------------------------------


async def test_the_gate_closes_at_the_limit_and_opens_at_resume_at() -> None:
    gate = InboundGate(4, resume_at=1)
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(4)]
    for future in futures[:3]:
        gate.track(future)
    assert gate.is_open
    gate.track(futures[3])
    assert not gate.is_open
    assert (gate.in_flight, gate.peak) == (4, 4)
    ticks: list[None] = []
    waiter = asyncio.create_task(gate.wait(lambda: ticks.append(None)))
    for future in futures[:2]:
        future.set_result(None)
    await asyncio.sleep(0)  # done callbacks run
    assert gate.in_flight == 2
    assert not gate.is_open
    assert not waiter.done()
    futures[2].cancel()  # a cancelled handler task is done too
    await asyncio.wait_for(waiter, 5)
    assert gate.is_open
    assert gate.in_flight == 1
    assert gate.pauses == 1
    assert len(ticks) >= 2  # the keep-alive heard "alive" as the pause began and as it ended


async def test_a_closed_gate_never_holds_reading_back() -> None:
    gate = InboundGate(1)
    future = asyncio.get_running_loop().create_future()
    gate.track(future)
    assert not gate.is_open
    waiter = asyncio.create_task(gate.wait(lambda: None))
    await asyncio.sleep(0)
    gate.close()
    await asyncio.wait_for(waiter, 5)
    assert gate.is_open
    future.cancel()


def test_the_gate_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        InboundGate(0)
    with pytest.raises(ValueError):
        InboundGate(4, resume_at=4)
