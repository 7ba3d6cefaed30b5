"""Slack acknowledgement: p99 time to ack signed requests over loopback, 200 in flight, engine busy.

The bot side is the real thing: slack-bolt's ``AsyncApp`` behind the adapter's aiohttp Events API
endpoint, the engine and the SQLite store, with its Web API client pointed at the fake Slack Web
API of the adapter tests, on the event loop and tuned as ``popup run`` runs it (bot/loop.py). A
child process keeps 200 correctly signed requests in flight over 200 keep-alive connections: 95%
reply events in the prompts' threads (acknowledged once durably stored, as the adapter promises),
5% ``/popup status`` slash commands (acknowledged at once; the answer goes to ``response_url``).
Meanwhile the engine takes 2,000 replies/s more through its ingest path (open loop), so it is busy.

The requests are signed before the clock starts (with one timestamp: Slack allows five minutes)
and sent as raw bytes: the generator shares two cores with the bot, and aiohttp's client spent
about 250 µs of them a request, this one about 50. Latency is from the first byte written to the
whole answer read, so it includes everything the bot does, and the queueing: with 200 always in
flight, the median is about 200 / throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from bench.common import emit, flag, percentile, plan
from bot.loop import run as run_loop
from bot.loop import tune_for_serving

CHANNEL = "C0BENCH"
MEMBERS = 500
COMMAND_EVERY = 20  # one request in 20 is a slash command


# -- the load generator (child process) ------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight: the least a client can do.

    The generator shares the machine's two cores with the bot, so every microsecond it spends is
    one the bot does not get; aiohttp's client costs about 250 µs a request, this about a fifth.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self._buffer) < end + 4 + length:
            return
        del self._buffer[: end + 4 + length]
        self._waiter.set_result(int(head[0].split()[1]))

    async def send(self, request: bytes) -> int:
        """The status of the answer to ``request``."""
        if self._transport is None or self._lost:
            raise ConnectionError("not connected")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _requests(spec: dict[str, Any], indexes: range) -> list[tuple[bytes, bool]]:
    """Signed HTTP requests, made before the clock starts: (the bytes, whether a slash command)."""
    from tests.fakes import slack_events as ev

    threads: list[str] = spec["threads"]
    members: int = spec["members"]
    host = spec["host"]
    out = []
    stamp = str(int(time.time()))
    for i in indexes:
        user = f"U{i % members:05d}"
        is_command = i % COMMAND_EVERY == COMMAND_EVERY - 1
        if is_command:
            form = ev.command_form(CHANNEL, user, "status", response_url=spec["response_url"])
            body, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        else:
            reply = ev.reply_event(CHANNEL, threads[i % len(threads)], user, f"Slack reply {i}: learning out loud")
            body = json.dumps(ev.event_callback(reply, event_id=f"EvB{i:08d}")).encode()
            content_type = "application/json"
        head = (
            f"POST {spec['path']} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {stamp}\r\n"
            f"X-Slack-Signature: {ev.sign(ev.SIGNING_SECRET, stamp, body)}\r\n\r\n"
        )
        out.append((head.encode() + body, is_command))
    return out


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    total: int = spec["requests"]
    concurrency: int = spec["concurrency"]
    members: int = spec["members"]
    loop = asyncio.get_running_loop()
    # Warm-up first: every member once (the adapter looks names up once).
    warm = _requests(spec, range(total, total + members))
    requests = _requests(spec, range(total))
    connections = [
        (await loop.create_connection(_Connection, spec["host_ip"], spec["port"]))[1] for _ in range(concurrency)
    ]
    events: list[float] = []
    commands: list[float] = []
    failures: dict[str, int] = {}
    perf_counter = time.perf_counter

    async def worker(connection: _Connection, queue: Iterator[tuple[bytes, bool]], timed: bool) -> None:
        for request, is_command in queue:
            started = perf_counter()
            status = await connection.send(request)
            elapsed = perf_counter() - started
            if status != 200:
                failures[str(status)] = failures.get(str(status), 0) + 1
            if timed:
                (commands if is_command else events).append(elapsed)

    shared_warm = iter(warm)
    await asyncio.gather(*(worker(c, shared_warm, False) for c in connections[:20]))
    shared = iter(requests)
    started = perf_counter()
    await asyncio.gather(*(worker(c, shared, True) for c in connections))
    wall = perf_counter() - started
    for connection in connections:
        connection.close()
    every = events + commands
    return {
        "requests": total,
        "concurrency": concurrency,
        "per_s": total / wall,
        "p50_ms": percentile(every, 50) * 1000,
        "p99_ms": percentile(every, 99) * 1000,
        "max_ms": max(every) * 1000,
        "event_p99_ms": percentile(events, 99) * 1000,
        "command_p50_ms": percentile(commands, 50) * 1000,
        "command_p99_ms": percentile(commands, 99) * 1000,
        "failures": failures,
    }


# -- the bot side -------------------------------------------------------------------------------------


async def _busy(engine: Any, threads: list[Any], rate: float, stop: asyncio.Event) -> int:
    """Replies into the engine at ``rate``/s (open loop) until ``stop``: how many were stored."""
    from datetime import UTC, datetime

    from sessions.model import Member, MessageRef, ReplyPosted

    loop = asyncio.get_running_loop()
    members = [Member(platform="slack", user_id=f"UB{i:04d}", display_name=f"Busy {i}") for i in range(200)]
    tasks: set[asyncio.Task[None]] = set()
    begin = loop.time()
    sent = 0
    while not stop.is_set():
        due = begin + sent / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        thread = threads[sent % len(threads)]
        event = ReplyPosted(
            thread=thread,
            message=MessageRef(channel=thread.channel, message_id=f"busy.{sent}"),
            author=members[sent % len(members)],
            text=f"Busy reply {sent}",
            at=datetime.now(UTC),
        )
        task = asyncio.create_task(engine.on_event(event))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    if tasks:
        await asyncio.gather(*list(tasks))
    return sent


async def _server(folder: Path, requests: int, concurrency: int, busy_rate: float, members: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from adapters.slack.adapter import SlackAdapter
    from adapters.slack.settings import SlackSettings
    from sessions.engine import Engine, EngineSettings
    from sessions.model import ChannelRef, CommandInvoked, Member
    from sessions.wakeups import Wakeups, utc_now
    from storage.sqlite import SqliteStore
    from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
    from tests.fakes.slack_events import SIGNING_SECRET

    fake = await FakeSlack().start()
    store = await SqliteStore.open(folder / "slack.db")
    settings = SlackSettings(
        enabled=True, mode="http", host="127.0.0.1", port=0, path="/slack/events",
        api_base_url=fake.base_url, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
    )
    adapter = SlackAdapter(settings, post_interval=0)
    engine = Engine(
        store=store,
        ports={"slack": adapter},
        plans=[plan("slack", ["+0s"] * 5)],
        settings=EngineSettings(default_plan="slack"),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    try:
        await adapter.start(engine)
        await engine.start()
        tune_for_serving()  # as `popup run` does once started
        answer = await engine.on_command(
            CommandInvoked(
                channel=ChannelRef(platform="slack", channel_id=CHANNEL),
                member=Member(platform="slack", user_id="UORG", display_name="Org", is_admin=True),
                name="start",
                at=datetime.now(UTC),
            )
        )
        assert answer.text.startswith("Started session #1"), answer.text
        threads = []
        for _ in range(500):
            threads = [p.thread for p in await store.posts(1) if p.thread is not None]
            if len(threads) == 5:
                break
            await asyncio.sleep(0.01)
        assert len(threads) == 5, threads
        spec = {
            "host_ip": "127.0.0.1",
            "port": adapter.http_port,
            "host": f"127.0.0.1:{adapter.http_port}",
            "path": "/slack/events",
            "response_url": fake.response_url("bench"),
            "threads": [t.thread_id.partition(":")[2] for t in threads if t is not None],
            "requests": requests,
            "concurrency": concurrency,
            "members": members,
        }
        spec_file, out_file = folder / "spec.json", folder / "client.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        stop = asyncio.Event()
        busy = asyncio.create_task(_busy(engine, threads, busy_rate, stop))
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.slack_ack", "--client", str(spec_file), str(out_file)
        )
        code = await client.wait()
        stop.set()
        busy_sent = await busy
        if code != 0:
            raise RuntimeError(f"the Slack load generator failed ({code})")
        result: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
        stats = await store.session_stats(1)
        result["stored"] = stats.replies
        result["busy_replies"] = busy_sent
        result["busy_rate"] = busy_rate
        expected = busy_sent + sum(1 for i in [*range(requests), *range(requests, requests + members)]
                                   if i % COMMAND_EVERY != COMMAND_EVERY - 1)
        result["expected"] = expected
        return result
    finally:
        with contextlib.suppress(Exception):
            await adapter.stop()
        await engine.stop()
        await store.close()
        await fake.stop()


def run(
    requests: int = 6_000, concurrency: int = 200, busy_rate: float = 2_000, members: int = MEMBERS
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-slack-") as tmp:
        return run_loop(_server(Path(tmp), requests, concurrency, busy_rate, members))


def report(r: dict[str, Any]) -> str:
    failures = f"; non-200: {r['failures']}" if r["failures"] else ""
    return (
        f"slack ack: {r['requests']:,} signed requests, {r['concurrency']} in flight, engine also taking "
        f"{r['busy_rate']:,.0f} replies/s\n"
        f"  all      p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms "
        f"({r['per_s']:,.0f} requests/s)\n"
        f"  events   p99 {r['event_p99_ms']:.1f} ms (acked once stored); commands p50 {r['command_p50_ms']:.1f} ms, "
        f"p99 {r['command_p99_ms']:.1f} ms\n"
        f"  stored {r['stored']:,} replies (expected {r['expected']:,}){failures}"
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--client"]:
        spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        Path(argv[2]).write_text(json.dumps(run_loop(_client(spec))), encoding="utf-8")
        return 0
    results = run(requests=flag("requests", 6_000))
    print(report(results), flush=True)
    emit(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
