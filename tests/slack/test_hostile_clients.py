"""The HTTP endpoint against clients that mean harm, over real loopback sockets: slow heads and
bodies, strangers holding connections, oversized, aborted, broken, deeply nested and replayed
requests. Each is refused (or cut off) in bounded time, logged at most once a minute per reason
without a traceback, and the endpoint goes on serving signed requests.

The limits are shortened for the tests (``HttpLimits``); the waits are bounded loops that end as
soon as the server acts, never sleeps that hope it has.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from adapters.slack.connections import HttpLimits
from adapters.slack.http_server import EventsServer
from adapters.slack.refusals import RefusalLog
from adapters.slack.replay import RecentSignatures
from tests.fakes import slack_events as ev
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender
from tests.slack.conftest import RecordingApp, Sink
from tests.support import eventually

pytestmark = pytest.mark.e2e

PARENT = "1700000001.000100"
SHORT = HttpLimits(header_timeout=0.5, body_timeout=0.5, max_body=64 * 1024, max_unauthenticated=4)
STEP = 0.05  # how often a trickling client sends a byte
STEPS = 200  # ... for at most 10 s: far beyond any limit here, so only a failing test waits that long


class Minutes:
    """A monotonic clock the test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Endpoint:
    server: EventsServer
    app: RecordingApp
    sink: Sink
    clock: Minutes
    client: SlackSender

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    async def still_serving(self) -> None:
        """A signed event is acknowledged and handed on: whatever came before, the server serves."""
        before = len(self.sink.bodies)
        body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "still here"))
        assert (await self.client.event(body))[0] == 200
        assert self.sink.bodies[before:] == [body]


async def _endpoint(limits: HttpLimits) -> AsyncIterator[Endpoint]:
    app, sink, clock = RecordingApp(), Sink(), Minutes()
    server = EventsServer(app, signing_secret=SIGNING_SECRET, host="127.0.0.1", port=0, path="/slack/events",
                          events=sink, limits=limits, monotonic=clock)
    await server.start()
    try:
        async with SlackSender(f"http://127.0.0.1:{server.port}/slack/events") as client:
            yield Endpoint(server=server, app=app, sink=sink, clock=clock, client=client)
    finally:
        await server.stop()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    async for made in _endpoint(SHORT):
        yield made


@pytest.fixture
async def roomy() -> AsyncIterator[Endpoint]:
    """Default body size, short timeouts."""
    async for made in _endpoint(HttpLimits(header_timeout=0.5, body_timeout=0.5)):
        yield made


class Client:
    """A raw TCP client: sends what it likes, and notices when the server hangs up."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.received = bytearray()
        self.answer: asyncio.Future[bytes] = asyncio.ensure_future(self._read_all(reader))

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _read_all(self, reader: asyncio.StreamReader) -> bytes:
        """Everything the server sends, until it closes (or resets) the connection."""
        try:
            while chunk := await reader.read(65536):
                self.received += chunk
        except ConnectionError:
            pass  # reset: what came before it still counts
        return bytes(self.received)

    @property
    def cut_off(self) -> bool:
        return self.answer.done()

    async def send(self, data: bytes) -> bool:
        """Whether it could be sent (False once the server has hung up)."""
        if self.cut_off:
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            return False
        return True

    async def trickle(self, pieces: Iterable[bytes]) -> bool:
        """Send ``pieces`` one every STEP seconds until the server answers or hangs up; whether
        it did (once it answers, sending on would only make it reset the connection)."""
        for piece in pieces:
            if self.received or not await self.send(piece):
                break
            await asyncio.wait({self.answer}, timeout=STEP)
        for _ in range(STEPS):
            if self.cut_off:
                break
            await asyncio.wait({self.answer}, timeout=STEP)
        return self.cut_off

    async def status(self, within: float = STEP * STEPS) -> int:
        """The status of the server's answer, once it has answered and hung up (0 if none)."""
        answer = await asyncio.wait_for(asyncio.shield(self.answer), within)
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0

    def close(self) -> None:
        self.answer.cancel()
        self.writer.transport.abort()


def head(length: int, *, signed: bool = True, extra: str = "") -> bytes:
    """A POST head for a body of ``length`` bytes, signed (with a signature nobody checked yet:
    only a body would tell whether it is right) or not."""
    lines = ["POST /slack/events HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {length}"]
    if signed:
        lines += [f"X-Slack-Request-Timestamp: {int(time.time())}", "X-Slack-Signature: v0=" + "ab" * 32]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _messages(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def _logged(caplog: pytest.LogCaptureFixture, words: str) -> None:
    for _ in range(STEPS):
        if _messages(caplog, words):
            return
        await asyncio.sleep(STEP)
    raise AssertionError(f"nothing logged with {words!r}")


# -- time: slow heads and bodies ---------------------------------------------------------------------


async def test_a_client_trickling_its_request_head_is_cut_off(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    client = await Client.connect(endpoint.port)
    header_lines = (f"X-Trickle-{i}: a\r\n".encode() for i in range(STEPS))
    assert await client.trickle([b"POST /slack/events HTTP/1.1\r\n", *header_lines])
    assert _messages(caplog, "no complete request head within 0.5 s")
    await endpoint.still_serving()


async def test_a_connection_that_sends_nothing_is_closed(endpoint: Endpoint) -> None:
    client = await Client.connect(endpoint.port)
    assert await client.trickle([b""] * STEPS)
    await endpoint.still_serving()


async def test_a_client_trickling_its_body_is_answered_408_and_cut_off(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    client = await Client.connect(endpoint.port)
    await client.send(head(10_000))
    assert await client.trickle([b"{"] + [b" "] * STEPS)
    assert await client.status() == 408
    assert _messages(caplog, "slow body")
    assert endpoint.sink.bodies == []
    await endpoint.still_serving()


# -- bytes: nothing unsigned or oversized is read ---------------------------------------------------


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (head(1_000_000, signed=False), 401),  # unsigned: refused on its headers
        (head(SHORT.max_body + 1), 413),  # larger than any Slack request
        (head(0, extra="Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b""), 411),
    ],
    ids=["unsigned", "oversized", "chunked"],
)
async def test_a_body_that_cannot_be_wanted_is_refused_before_it_is_sent(
    endpoint: Endpoint, request_head: bytes, status: int
) -> None:
    client = await Client.connect(endpoint.port)
    await client.send(request_head)  # and not one byte of the body
    assert await client.status() == status
    assert endpoint.sink.bodies == []
    await endpoint.still_serving()


# -- connections: strangers cannot lock Slack out --------------------------------------------------------


async def test_strangers_holding_connections_do_not_lock_out_a_signed_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    # Long timeouts: here only the cap on connections that never signed anything acts.
    async for endpoint in _endpoint(HttpLimits(header_timeout=30, body_timeout=30, max_unauthenticated=4)):
        strangers = [await Client.connect(endpoint.port) for _ in range(6)]
        trickling = [await Client.connect(endpoint.port) for _ in range(4)]
        for client in strangers:
            await client.send(b"POST /slack")
        for client in trickling:
            await client.send(head(1000) + b"{")
        await endpoint.still_serving()  # Slack's request gets through all the same
        everyone = strangers + trickling
        for _ in range(STEPS):  # the oldest strangers are closed as newer ones come
            if sum(c.cut_off for c in everyone) >= len(everyone) - 4:
                break
            await asyncio.sleep(STEP)
        assert sum(c.cut_off for c in everyone) >= len(everyone) - 4
        assert not any(c.cut_off for c in trickling[-3:])  # the newest are left alone
        [logged] = _messages(caplog, "connections have sent no signed request")  # once a minute
        assert "more than 4" in logged
        for client in everyone:
            client.close()
        await endpoint.still_serving()


# -- the log: once per reason a minute, no tracebacks ------------------------------------------------------


async def test_refusals_are_logged_once_per_reason_per_minute(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "sneaky"))
    for _ in range(10):
        assert (await endpoint.client.event(body, signed=False))[0] == 401
    assert (await endpoint.client.event(body, timestamp=int(time.time()) - 600))[0] == 401
    assert len(_messages(caplog, "no signature")) == 1
    assert len(_messages(caplog, "stale timestamp")) == 1  # another reason: logged on its own
    endpoint.clock.now += 61
    assert (await endpoint.client.event(body, signed=False))[0] == 401
    [_, later] = _messages(caplog, "no signature")
    assert "and 9 more like it in the last 61 s" in later
    await endpoint.still_serving()


def test_the_refusal_log_counts_what_it_does_not_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="test.refusals")
    clock = Minutes()
    log = RefusalLog(logging.getLogger("test.refusals"), period=60, clock=clock)
    for _ in range(3):
        log.refused("a", "refused %s", "one")
    log.refused("b", "refused %s", "two")
    clock.now += 59
    log.refused("a", "refused %s", "three")
    clock.now += 2
    log.refused("a", "refused %s", "four")
    log.refused("b", "refused %s", "five")
    assert [r.getMessage() for r in caplog.records] == [
        "refused one",
        "refused two",
        "refused four (and 3 more like it in the last 61 s)",
        "refused five",
    ]


async def test_a_client_going_away_mid_body_is_one_line_not_a_traceback(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        client = await Client.connect(endpoint.port)
        await client.send(head(1000) + b'{"type": ')
        await endpoint.still_serving()  # a round trip after it: the server is reading its body by now
        client.close()
    await _logged(caplog, "went away")
    await endpoint.still_serving()
    assert len(_messages(caplog, "went away")) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_broken_http_is_one_line_not_a_traceback(endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for garbage in (b"POST /slack/events HTTP/1.1\r\nNo colon here\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n"):
        client = await Client.connect(endpoint.port)
        await client.send(garbage)
        assert await client.status() in (0, 400)
    await endpoint.still_serving()
    assert len(_messages(caplog, "not valid HTTP")) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# -- malformed: nested deeper than any parser goes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"type": "event_callback", "event": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "application/json"),
        (urlencode({"payload": "[" * 50_000 + "]" * 50_000}).encode(), "application/x-www-form-urlencoded"),
    ],
    ids=["array", "event", "form-payload"],
)
async def test_a_deeply_nested_signed_body_is_a_400_like_any_malformed_one(
    roomy: Endpoint, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    status, _ = await roomy.client.raw(body, content_type=content_type)
    assert status == 400
    assert _messages(caplog, "malformed")
    assert roomy.sink.bodies == []
    assert roomy.app.dispatched == []
    await roomy.still_serving()


# -- replays ---------------------------------------------------------------------------------------------------


async def test_a_replayed_signed_command_is_refused(endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    form = ev.command_form("C1", "U1", "start", response_url="http://127.0.0.1:9/r")
    stamp = int(time.time())
    first, _ = await endpoint.client.command(form, timestamp=stamp)
    again, _ = await endpoint.client.command(form, timestamp=stamp)  # the captured bytes, sent again
    assert (first, again) == (200, 401)
    assert [b.get("text") for b in endpoint.app.dispatched] == ["start"]
    assert _messages(caplog, "replayed")
    typed_again, _ = await endpoint.client.command(form, timestamp=stamp - 1)  # Slack signs anew each time
    assert typed_again == 200
    await endpoint.still_serving()


async def test_a_redelivered_event_is_not_refused_as_a_replay(endpoint: Endpoint) -> None:
    """Slack's retries of an event may carry the same signature; the adapter dedupes them by event id."""
    body = json.dumps(ev.event_callback(ev.reply_event("C1", PARENT, "U1", "again"), event_id="EvAGAIN")).encode()
    stamp = int(time.time())
    statuses = [(await endpoint.client.raw(body, content_type="application/json", timestamp=stamp))[0]
                for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(endpoint.sink.bodies) == 3


async def test_a_replayed_popup_start_reaches_the_engine_once(
    sender: SlackSender, handler: RecordingHandler, fake: FakeSlack
) -> None:
    form = ev.command_form("C1", "U1", "start", response_url=fake.response_url())
    stamp = int(time.time())
    statuses = [(await sender.command(form, timestamp=stamp))[0] for _ in range(3)]
    assert statuses == [200, 401, 401]
    await eventually(lambda: len(fake.responses) == 1)
    assert [c.name for c in handler.commands] == ["start"]


def test_recent_signatures_are_forgotten_once_stale_and_bounded_in_number() -> None:
    clock = Minutes()
    recent = RecentSignatures(window=300, capacity=3, clock=clock)
    stamp = int(clock.now)
    assert recent.first_time("v0=a", stamp)
    assert not recent.first_time("v0=a", stamp)
    clock.now += 301  # its timestamp is now refused as stale anyway: no need to remember it
    assert recent.first_time("v0=b", int(clock.now))
    assert len(recent) == 1
    for name in "cdef":
        recent.first_time(f"v0={name}", int(clock.now))
    assert len(recent) == 3
