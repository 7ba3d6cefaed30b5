"""The real bolt AsyncApp behind our aiohttp endpoint, driven with requests signed as Slack signs them."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.adapter import SlackAdapter
from sessions.errors import ConfigError
from sessions.model import CommandReply, ReactionChanged, ReplyDeleted, ReplyEdited, ReplyPosted
from tests.fakes import slack_events as ev
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.slack.conftest import http_settings
from tests.support import eventually

pytestmark = pytest.mark.e2e

PARENT = "1700000001.000100"


async def test_url_verification_answers_the_challenge(sender: SlackSender) -> None:
    status, text = await sender.event({"token": "x", "challenge": "abc123", "type": "url_verification"})
    assert status == 200
    assert json.loads(text) == {"challenge": "abc123"}


async def test_reply_edit_delete_reaction_reach_the_handler(
    sender: SlackSender, handler: RecordingHandler, fake: FakeSlack
) -> None:
    fake.users["U1"] = "Ana"
    reply = ev.reply_event("C1", PARENT, "U1", "my answer")
    for event in (
        reply,
        ev.edit_event("C1", PARENT, "U1", reply["ts"], "my answer", "my better answer"),
        ev.reaction_event("C1", reply["ts"], "U2", "tada"),
        ev.delete_event("C1", PARENT, "U1", reply["ts"]),
    ):
        status, _ = await sender.event(ev.event_callback(event))
        assert status == 200
    kinds = [type(e) for e in handler.events]
    assert kinds == [ReplyPosted, ReplyEdited, ReactionChanged, ReplyDeleted]
    posted = handler.events[0]
    assert isinstance(posted, ReplyPosted)
    assert posted.author.display_name == "Ana"  # resolved through users.info
    assert posted.thread.thread_id == f"C1:{PARENT}"


async def test_display_names_are_cached(sender: SlackSender, handler: RecordingHandler, fake: FakeSlack) -> None:
    for _ in range(3):
        await sender.event(ev.event_callback(ev.reply_event("C1", PARENT, "U7", "hi")))
    assert len(handler.events) == 3
    assert len(fake.calls_to("users.info")) == 1


async def test_unsigned_and_stale_requests_are_refused_and_logged(
    sender: SlackSender, handler: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "sneaky"))
    unsigned = await sender.event(body, signed=False)
    stale = await sender.event(body, timestamp=int(time.time()) - 6 * 60)
    wrong_secret = SlackSender(sender.url, secret="not-the-secret", session=sender.session)
    wrong = await wrong_secret.event(body)
    assert [unsigned[0], stale[0], wrong[0]] == [401, 401, 401]
    assert handler.events == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "no signature" in messages
    assert "stale timestamp" in messages
    assert "bad signature" in messages


async def test_forged_signature_is_refused(http_adapter: SlackAdapter, handler: RecordingHandler) -> None:
    async with SlackSender(f"http://127.0.0.1:{http_adapter.http_port}/slack/events") as sender:
        body = json.dumps(ev.event_callback(ev.reply_event("C1", PARENT, "U1", "x"))).encode()
        assert sender.session is not None
        async with sender.session.post(
            sender.url,
            data=body,
            headers={"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(int(time.time())),
                     "X-Slack-Signature": "v0=" + "0" * 64},
        ) as response:
            assert response.status == 401
    assert handler.events == []


async def test_one_event_delivered_four_times_is_handled_once(sender: SlackSender, handler: RecordingHandler) -> None:
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "once"), event_id="EvSAME")
    statuses = [(await sender.event(body, retry_num=n or None))[0] for n in range(4)]
    assert statuses == [200, 200, 200, 200]
    assert len(handler.events) == 1


async def test_a_failing_store_fails_the_request_so_slack_retries(
    sender: SlackSender, handler: RecordingHandler
) -> None:
    handler.fail_events = 1
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "retry me"), event_id="EvRETRY")
    first, _ = await sender.event(body)
    second, _ = await sender.event(body, retry_num=1)
    assert first >= 500
    assert second == 200
    assert len(handler.events) == 1


async def test_a_slow_store_is_never_acknowledged_early(fake: FakeSlack) -> None:
    """Within the budget the answer is a 500 (Slack sends again), never a 200 before the store."""
    store_done = asyncio.Event()
    handler = RecordingHandler(gate=store_done)  # a store that takes until the test says so
    adapter = SlackAdapter(http_settings(fake), post_interval=0, ack_budget=0.2)
    await adapter.start(handler)
    try:
        async with SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as sender:
            body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "slow"))
            status, _ = await sender.event(body)
            assert status == 500
            assert handler.events == []  # answered on the budget, the store still under way
            store_done.set()
            await eventually(lambda: len(handler.events) == 1)
            again, _ = await sender.event(body, retry_num=1)  # Slack's redelivery
            assert again == 200
            assert len(handler.events) == 1
    finally:
        await adapter.stop()


async def test_slash_command_is_acked_at_once_and_answered_via_response_url(
    sender: SlackSender, handler: RecordingHandler, fake: FakeSlack
) -> None:
    fake.users["U1"] = "Ana"
    handler.reply = CommandReply(text="Started <!channel> & co", ephemeral=False)
    form = ev.command_form("C1", "U1", "start learning tomorrow", response_url=fake.response_url("r1"))
    status, text = await sender.command(form)
    assert status == 200
    assert text == ""
    await eventually(lambda: len(fake.responses) == 1)
    [command] = handler.commands
    assert (command.name, command.args) == ("start", ("learning", "tomorrow"))
    assert command.member.display_name == "Ana"
    assert fake.responses[0]["response_type"] == "in_channel"
    assert fake.responses[0]["text"] == "Started &lt;!channel&gt; &amp; co"


async def test_ephemeral_reply_and_empty_text_means_help(
    sender: SlackSender, handler: RecordingHandler, fake: FakeSlack
) -> None:
    handler.reply = CommandReply(text="help text", ephemeral=True)
    await sender.command(ev.command_form("C1", "U1", "", response_url=fake.response_url()))
    await eventually(lambda: len(fake.responses) == 1)
    assert handler.commands[0].name == "help"
    assert fake.responses[0]["response_type"] == "ephemeral"


async def test_slow_command_is_still_acked_at_once(fake: FakeSlack) -> None:
    command_done = asyncio.Event()
    handler = RecordingHandler(gate=command_done)  # a command that takes until the test says so
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        async with SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as sender:
            status, _ = await sender.command(ev.command_form("C1", "U1", "status", response_url=fake.response_url()))
            assert status == 200
            assert handler.commands == []  # acknowledged while the command was still being carried out
            assert fake.responses == []
            command_done.set()
            await eventually(lambda: len(fake.responses) == 1)
    finally:
        await adapter.stop()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
        (b'{"type": "event_callback", "event": "a string"}', "application/json"),
        (b'{"type": "event_callback", "event": {"type": ["list"]}}', "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),  # deeper than any JSON parser goes
    ],
)
async def test_malformed_payloads_are_refused_logged_and_the_bot_keeps_serving(
    sender: SlackSender, handler: RecordingHandler, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.WARNING)
    status, _ = await sender.raw(body, content_type=content_type)
    assert 400 <= status < 500 or status == 200  # refused, or harmlessly acknowledged as "not ours"
    if status != 200:
        assert any("malformed" in r.getMessage() for r in caplog.records)
    good = await sender.event(ev.event_callback(ev.reply_event("C1", PARENT, "U1", "still here")))
    assert good[0] == 200
    assert [e.text for e in handler.events if isinstance(e, ReplyPosted)] == ["still here"]


async def test_bad_settings_are_one_clear_line_without_the_token(fake: FakeSlack) -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        SlackAdapter(http_settings(fake, bot_token=""))
    with pytest.raises(ConfigError) as info:
        SlackAdapter(http_settings(fake, bot_token="xoxp-secret-user-token"))
    assert "secret-user-token" not in str(info.value)
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        SlackAdapter(http_settings(fake, signing_secret=""))


async def test_a_refused_token_is_a_config_error(fake: FakeSlack) -> None:
    adapter = SlackAdapter(http_settings(fake, bot_token="xoxb-wrong"), post_interval=0)
    with pytest.raises(ConfigError, match=r"refused by Slack \(invalid_auth\)") as info:
        await adapter.start(RecordingHandler())
    assert "xoxb-wrong" not in str(info.value)
    await adapter.stop()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_slack_keys = st.sampled_from(
    ["type", "event", "user", "channel", "team", "enterprise", "authorizations", "command", "text", "event_id",
     "team_id", "user_id", "channel_id", "response_url", "item", "message", "is_ext_shared_channel", "view"]
)
_slackish = st.recursive(
    st.dictionaries(_slack_keys, _json | st.sampled_from(["event_callback", "message", "/popup", True]), max_size=6),
    lambda children: st.dictionaries(_slack_keys, children | _json, max_size=6),
    max_leaves=25,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(_slackish, _json), min_size=1, max_size=6))
def test_no_signed_json_breaks_the_endpoint(bodies: list[object]) -> None:
    """Whatever JSON a signed request carries: never a 5xx, never an event handed on, still serving."""

    async def scenario() -> None:
        fake = await FakeSlack().start()
        handler = RecordingHandler()
        adapter = SlackAdapter(http_settings(fake), post_interval=0)
        await adapter.start(handler)
        try:
            async with SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as sender:
                for body in bodies:
                    status, _ = await sender.raw(json.dumps(body).encode(), content_type="application/json")
                    assert status < 500, body
                good = await sender.event(ev.event_callback(ev.reply_event("C1", PARENT, "U1", "fine")))
                assert good[0] == 200
                assert [e.text for e in handler.events if isinstance(e, ReplyPosted)] == ["fine"]
        finally:
            await adapter.stop()
            await fake.stop()

    asyncio.run(scenario())


async def test_a_busy_port_is_a_config_error(http_adapter: SlackAdapter, fake: FakeSlack) -> None:
    second = SlackAdapter(http_settings(fake, port=http_adapter.http_port), post_interval=0)
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
        await second.start(RecordingHandler())
    await second.stop()
