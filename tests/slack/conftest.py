"""Shared pieces of the Slack tests: the fake Web API, a recording event handler, adapters, and a
recording bolt app and event sink to put behind a bare EventsServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.slack.adapter import SlackAdapter
from adapters.slack.settings import SlackSettings
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender


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
async def http_adapter(fake: FakeSlack, handler: RecordingHandler) -> AsyncIterator[SlackAdapter]:
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(handler)
    yield adapter
    await adapter.stop()


@pytest.fixture
async def sender(http_adapter: SlackAdapter) -> AsyncIterator[SlackSender]:
    async with SlackSender(f"http://127.0.0.1:{http_adapter.http_port}/slack/events") as client:
        yield client
