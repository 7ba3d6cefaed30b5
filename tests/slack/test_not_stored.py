"""Slack and the one ``NotStored`` of the error tree: a failed store fails the request (Slack sends again)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from slack_bolt.app.async_app import AsyncApp

from adapters.slack.http_server import EventsServer
from sessions.errors import NotStored, PopupError
from tests.fakes import slack_events as ev
from tests.fakes.slack_api import BOT_TOKEN
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender

pytestmark = pytest.mark.e2e


async def test_the_events_server_answers_the_trees_not_stored_with_a_500(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")

    async def sink(body: dict[str, Any]) -> None:
        raise NotStored("EvTREE") from RuntimeError("database is locked")

    app = AsyncApp(signing_secret=SIGNING_SECRET, token=BOT_TOKEN)
    server = EventsServer(app, signing_secret=SIGNING_SECRET, host="127.0.0.1", port=0, path="/slack/events",
                          events=sink)
    await server.start()
    try:
        async with SlackSender(f"http://127.0.0.1:{server.port}/slack/events") as sender:
            body = ev.event_callback(ev.reply_event("C1", "1700000001.000100", "U1", "x"), event_id="EvTREE")
            assert (await sender.event(body))[0] == 500
    finally:
        await server.stop()
    assert issubclass(NotStored, PopupError)
    (warning,) = [r for r in caplog.records if "not stored" in r.getMessage()]
    assert "event EvTREE not stored" in warning.getMessage()
    assert warning.levelno == logging.WARNING  # the expected path, not "could not handle an event"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
