"""Socket Mode with a recording handler: envelopes in, acks out, and a clear failure to connect."""

from __future__ import annotations

import asyncio

import pytest

from adapters.slack.adapter import SlackAdapter
from sessions.errors import ConfigError, PopupError
from sessions.model import CommandReply, ReplyPosted
from tests.fakes import slack_events as ev
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import FakeSlack
from tests.slack.conftest import socket_settings
from tests.support import eventually

pytestmark = pytest.mark.e2e

PARENT = "1700000001.000100"


async def test_command_and_reply_over_the_websocket(fake: FakeSlack) -> None:
    command_done = asyncio.Event()
    handler = RecordingHandler(reply=CommandReply(text="Started", ephemeral=False), gate=command_done)
    adapter = SlackAdapter(socket_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        form = ev.command_form("C1", "U1", "start quick", response_url=fake.response_url())
        ack = await fake.send_envelope("slash_commands", form, accepts_response_payload=True)
        assert handler.commands == []  # acknowledged while the command was still being carried out
        assert set(ack) <= {"envelope_id", "payload"}
        command_done.set()
        await eventually(lambda: len(fake.responses) == 1)
        assert fake.responses[0]["text"] == "Started"
        assert fake.responses[0]["response_type"] == "in_channel"
        assert handler.commands[0].args == ("quick",)

        body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "hi"), event_id="EvSOCK")
        await fake.send_envelope("events_api", body)
        assert [type(e) for e in handler.events] == [ReplyPosted]  # handled before the ack
        await fake.send_envelope("events_api", body)  # Slack's redelivery
        assert len(handler.events) == 1
    finally:
        await adapter.stop()


async def test_a_failing_store_leaves_the_envelope_unacked(fake: FakeSlack) -> None:
    handler = RecordingHandler(fail_events=1)
    adapter = SlackAdapter(socket_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "hi"), event_id="EvFAIL")
        with pytest.raises(TimeoutError):
            await fake.send_envelope("events_api", body, within=1.0)
        await fake.send_envelope("events_api", body)  # Slack tries again: stored this time
        assert len(handler.events) == 1
    finally:
        await adapter.stop()


async def test_a_refused_app_token_is_a_config_error(fake: FakeSlack) -> None:
    adapter = SlackAdapter(socket_settings(fake, app_token="xapp-wrong"), post_interval=0)
    with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN was refused by Slack \(invalid_auth\)") as info:
        await adapter.start(RecordingHandler())
    assert "xapp-wrong" not in str(info.value)
    await adapter.stop()


async def test_an_unreachable_websocket_times_out_instead_of_retrying_forever(fake: FakeSlack) -> None:
    fake.socket_url = "ws://127.0.0.1:9/nothing-listens-here"
    adapter = SlackAdapter(socket_settings(fake), post_interval=0, connect_timeout=0.5, socket_ping_interval=0.1)
    # Ended by its own bound (the message says which), not by the test's ceiling on a hang.
    with pytest.raises(PopupError, match=r"did not connect within 0\.5 s"):
        async with asyncio.timeout(30):
            await adapter.start(RecordingHandler())
    await adapter.stop()


async def test_missing_app_token_is_refused_up_front(fake: FakeSlack) -> None:
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN is not set"):
        SlackAdapter(socket_settings(fake, app_token=""))
    with pytest.raises(ConfigError, match="xapp-"):
        SlackAdapter(socket_settings(fake, app_token="xoxb-not-an-app-token"))
