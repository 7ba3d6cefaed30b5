"""The HTTP server's fast path for event callbacks, the shared users.info lookups, the responder.

The EventsServer tests put a bolt app behind it that must never be reached by event callbacks,
and a sink in place of the adapter; the adapter tests drive the real thing over loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.slack.client import NameCache, make_clients
from adapters.slack.http_server import EventsServer, NotStored
from sessions.model import ReplyPosted
from tests.fakes import slack_events as ev
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender
from tests.slack.conftest import RecordingApp, Sink, http_settings
from tests.support import eventually

pytestmark = pytest.mark.e2e

PARENT = "1700000001.000100"


@pytest.fixture
async def server() -> AsyncIterator[tuple[EventsServer, RecordingApp, Sink]]:
    app, sink = RecordingApp(), Sink()
    events = EventsServer(app, signing_secret=SIGNING_SECRET, host="127.0.0.1", port=0, path="/slack/events",
                          events=sink)
    await events.start()
    yield events, app, sink
    await events.stop()


@pytest.fixture
async def client(server: tuple[EventsServer, RecordingApp, Sink]) -> AsyncIterator[SlackSender]:
    async with SlackSender(f"http://127.0.0.1:{server[0].port}/slack/events") as sender:
        yield sender


async def test_event_callbacks_skip_bolt_and_are_acked_once_the_sink_returns(
    server: tuple[EventsServer, RecordingApp, Sink], client: SlackSender
) -> None:
    _, app, sink = server
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "fast"), event_id="EvFAST")
    status, text = await client.event(body)
    assert (status, text) == (200, "")
    assert sink.bodies == [body]
    assert app.dispatched == []


async def test_commands_and_url_verification_still_go_through_bolt(
    server: tuple[EventsServer, RecordingApp, Sink], client: SlackSender
) -> None:
    _, app, sink = server
    status, text = await client.event({"token": "x", "challenge": "c1", "type": "url_verification"})
    assert (status, json.loads(text)) == (200, {"challenge": "c1"})
    status, _ = await client.command(ev.command_form("C1", "U1", "status", response_url="http://127.0.0.1:9/r"))
    assert status == 200
    assert [b.get("type") or b.get("command") for b in app.dispatched] == ["url_verification", "/popup"]
    assert sink.bodies == []


async def test_the_fast_path_refuses_unsigned_stale_and_forged_requests(
    server: tuple[EventsServer, RecordingApp, Sink], client: SlackSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    _, app, sink = server
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "sneaky"))
    unsigned = await client.event(body, signed=False)
    stale = await client.event(body, timestamp=int(time.time()) - 6 * 60)
    forged = await SlackSender(client.url, secret="not-the-secret", session=client.session).event(body)
    assert [unsigned[0], stale[0], forged[0]] == [401, 401, 401]
    assert sink.bodies == []
    assert app.dispatched == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    for reason in ("no signature", "stale timestamp", "bad signature"):
        assert reason in messages


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "event_callback", "event": "a string"}',
        b'{"type": "event_callback", "event": {"type": ["list"]}}',
        b'{"type": "event_callback", "event": {"type": "message", "user": 7}}',
        b'{"type": "event_callback", "event": {"type": "message"}, "authorizations": "all"}',
        b'{"type": "event_callback", "event": {"type": "message"',
    ],
)
async def test_the_fast_path_refuses_malformed_bodies_and_logs_them(
    server: tuple[EventsServer, RecordingApp, Sink], client: SlackSender, caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    _, app, sink = server
    status, _ = await client.raw(body, content_type="application/json")
    assert status == 400
    assert any("malformed" in r.getMessage() for r in caplog.records)
    assert sink.bodies == []
    assert app.dispatched == []


async def test_not_stored_is_a_500_so_slack_sends_the_event_again(
    server: tuple[EventsServer, RecordingApp, Sink], client: SlackSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    _, _, sink = server
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "x"), event_id="EvNOT")
    sink.fail = NotStored("EvNOT")
    assert (await client.event(body))[0] == 500
    sink.fail = RuntimeError("a bug")  # an unexpected failure is not an acknowledgement either
    assert (await client.event(body))[0] == 500
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "event EvNOT not stored" in messages
    assert "could not handle an event" in messages
    sink.fail = None
    assert (await client.event(body))[0] == 200


async def test_other_paths_and_methods_are_not_served(
    server: tuple[EventsServer, RecordingApp, Sink], client: SlackSender
) -> None:
    _, app, sink = server
    assert client.session is not None
    base = f"http://127.0.0.1:{server[0].port}"
    async with client.session.post(f"{base}/elsewhere", data=b"{}") as response:
        assert response.status == 404
    async with client.session.get(f"{base}/slack/events") as response:
        assert response.status == 405
    assert sink.bodies == []
    assert app.dispatched == []


# -- through the adapter ----------------------------------------------------------------------------


async def test_concurrent_deliveries_of_one_event_are_stored_once(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack's retries can overlap the first delivery: all wait on the one write and are acked."""
    handler = RecordingHandler(delay=0.2)
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        async with SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as sender:
            body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "once"), event_id="EvOVERLAP")
            statuses = await asyncio.gather(*(sender.event(body, retry_num=n or None) for n in range(4)))
            assert [s for s, _ in statuses] == [200, 200, 200, 200]
            again, _ = await sender.event(body, retry_num=4)  # after it is stored: answered from memory
            assert again == 200
    finally:
        await adapter.stop()
    assert len(handler.events) == 1


async def test_a_failing_store_over_the_fast_path_is_a_500_then_stored_on_redelivery(
    sender: SlackSender, handler: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    handler.fail_events = 1
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "retry me"), event_id="EvFAIL")
    assert (await sender.event(body))[0] == 500
    assert any("EvFAIL not stored" in r.getMessage() for r in caplog.records)
    assert (await sender.event(body, retry_num=1))[0] == 200
    assert [e.text for e in handler.events if isinstance(e, ReplyPosted)] == ["retry me"]


async def test_bot_messages_over_the_fast_path_are_acked_and_ignored(
    sender: SlackSender, handler: RecordingHandler
) -> None:
    bot = {**ev.reply_event("C1", PARENT, "U1", "beep"), "bot_id": "B9"}
    assert (await sender.event(ev.event_callback(bot)))[0] == 200
    assert handler.events == []


async def test_concurrent_misses_for_one_user_share_one_users_info_call(fake: FakeSlack) -> None:
    fake.users["U5"] = "Bea"
    _, reader = make_clients(token=BOT_TOKEN, base_url=fake.base_url)
    names = NameCache(reader)
    found = await asyncio.gather(*(names.get("U5") for _ in range(10)), names.get("U6"))
    assert found == ["Bea"] * 10 + ["name-U6"]
    assert sorted(str(c.args.get("user")) for c in fake.calls_to("users.info")) == ["U5", "U6"]
    assert names.cached("U5") == "Bea"
    assert await names.get("U5") == "Bea"
    assert len(fake.calls_to("users.info")) == 2


async def test_a_failed_users_info_is_not_remembered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    _, reader = make_clients(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/")  # nothing listens
    reader.retry_handlers = []
    names = NameCache(reader)
    assert list(await asyncio.gather(names.get("U1", fallback="ana"), names.get("U1"))) == ["ana", "U1"]
    assert names.cached("U1") is None
    assert any("users.info for U1 failed" in r.getMessage() for r in caplog.records)


async def test_a_refused_command_answer_is_logged(
    sender: SlackSender, handler: RecordingHandler, caplog: pytest.LogCaptureFixture, fake: FakeSlack
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    url = fake.response_url("r1").replace("/respond/", "/no-such-respond/")
    status, _ = await sender.command(ev.command_form("C1", "U1", "status", response_url=url))
    assert status == 200
    await eventually(lambda: len(handler.commands) == 1)
    await eventually(
        lambda: any("could not answer /popup status" in r.getMessage() for r in caplog.records), what="the warning"
    )
