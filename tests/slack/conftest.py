"""Shared pieces of the Slack tests: the fake Web API, a recording event handler, adapters, and a
recording bolt app and event sink to put behind a bare EventsServer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.slack.adapter import SlackAdapter
from adapters.slack.settings import SlackSettings
from sessions.model import CommandInvoked, CommandReply, MessageEvent
from tests.fakes.slack_api import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender


@dataclass
class RecordingHandler:
    """An :class:`~sessions.ports.EventHandler` that keeps what it is given."""

    reply: CommandReply = field(default_factory=lambda: CommandReply(text="ok"))
    commands: list[CommandInvoked] = field(default_factory=list)
    events: list[MessageEvent] = field(default_factory=list)
    fail_events: int = 0  # fail this many on_event calls first (as a broken database would)
    delay: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        self.commands.append(command)
        self.changed.set()
        return self.reply

    async def on_event(self, event: MessageEvent) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_events > 0:
            self.fail_events -= 1
            raise RuntimeError("database is locked")
        self.events.append(event)
        self.changed.set()

    async def wait(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async def _wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), within)


@dataclass
class Sink:
    """Stands in for the adapter's event listener."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    fail: BaseException | None = None

    async def __call__(self, body: dict[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.bodies.append(body)


class RecordingApp(AsyncApp):
    """A bolt app that keeps what reaches it (and answers what bolt would for url_verification)."""

    def __init__(self) -> None:
        super().__init__(signing_secret=SIGNING_SECRET, token=BOT_TOKEN)
        self.dispatched: list[dict[str, Any]] = []

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        self.dispatched.append(dict(req.body))
        if req.body.get("type") == "url_verification":
            return BoltResponse(status=200, body={"challenge": req.body["challenge"]})
        return BoltResponse(status=200, body="")


def http_settings(fake: FakeSlack, **overrides: object) -> SlackSettings:
    values: dict[str, object] = {
        "enabled": True, "mode": "http", "host": "127.0.0.1", "port": 0, "path": "/slack/events",
        "api_base_url": fake.base_url, "bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET,
    }
    values.update(overrides)
    return SlackSettings(**values)  # type: ignore[arg-type]


def socket_settings(fake: FakeSlack, **overrides: object) -> SlackSettings:
    values: dict[str, object] = {
        "enabled": True, "mode": "socket", "api_base_url": fake.base_url, "bot_token": BOT_TOKEN,
        "app_token": APP_TOKEN,
    }
    values.update(overrides)
    return SlackSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    yield server
    await server.stop()


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def http_adapter(fake: FakeSlack, handler: RecordingHandler) -> AsyncIterator[SlackAdapter]:
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(handler)
    yield adapter
    await adapter.stop()


@pytest.fixture
async def sender(http_adapter: SlackAdapter) -> AsyncIterator[SlackSender]:
    async with SlackSender(f"http://127.0.0.1:{http_adapter.http_port}/slack/events") as client:
        yield client
