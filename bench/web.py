"""The web side under load: a participant page served to many browsers at once.

The server is a child process (``python -m bench.web --serve FOLDER``): the real engine on SQLite,
the web adapter on 127.0.0.1, one running session whose page already holds 100 answers. This
process is the crowd, over aiohttp:

* GET: ``clients`` browsers at once, each loading the page ``gets`` times about a second apart
  (people reading, ~500 pages/s offered); the page's p99. And the ceiling: every client loading
  it at the same moment, in pages per second (a closed loop of 500 with no pause measures only
  that ceiling: its latency is 500 divided by it, whatever the page costs).
* POST: answers offered at ``rate`` per second for ``seconds`` (open loop: one is sent on time
  whether or not the last came back); p99 from sending to the answer coming back, which the server
  sends only once the reply is stored.
* Fan-out: ``live`` pages hold the live stream open; one answer is sent; the time from sending it
  until the last of those pages has it.
* The server's peak RSS (VmHWM) over all of it.

Targets (issue 15): GET p99 < 50 ms, POST p99 < 100 ms, fan-out < 1 s, RSS < 250 MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import emit, flag, percentile

SECRET = "bench-web-secret-0123456789abcdef"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_THREAD = re.compile(r'name="thread" value="([^"]+)"')


# -- the server (child process) --------------------------------------------------------------------


async def serve(folder: Path) -> None:
    from dataclasses import replace

    from adapters.web.adapter import WebAdapter
    from adapters.web.settings import WebSettings
    from bench.common import ORGANISER, StampingPort, plan
    from bot.loop import tune_for_serving
    from sessions.engine import Engine, EngineSettings
    from sessions.model import ChannelRef, CommandInvoked
    from sessions.plan_book import PlanBook
    from sessions.wakeups import Wakeups, utc_now
    from storage.sqlite import SqliteStore

    store = await SqliteStore.open(folder / "popup.db")
    chat = StampingPort()
    # The crowd comes from one address: the per-client limit is lifted for the bench.
    settings = WebSettings(
        enabled=True, host="127.0.0.1", port=0, secret=SECRET, answers_per_minute=1e9, answer_burst=1_000_000
    )
    plans = PlanBook([plan("web", ("+0s", "+1h"), recap="+2h")])
    engine_settings = EngineSettings(default_plan="web")
    web = WebAdapter(settings, store=store, plans=plans, engine=engine_settings)
    engine = Engine(
        store=store,
        ports={"bench": chat, "web": web},
        plans=plans,
        settings=engine_settings,
        wakeups=Wakeups(),
        clock=utc_now,
        web=web,
    )
    await web.start(engine)
    web.settings = web.ctx.settings = replace(settings, port=web.port or 0)
    await engine.start()
    tune_for_serving()
    reply = await engine.on_command(
        CommandInvoked(
            channel=ChannelRef(platform="bench", channel_id="C1"), member=ORGANISER, name="start", at=utc_now()
        )
    )
    found = re.search(r"anyone with it can answer\): (\S+)", reply.text)
    assert found is not None, reply.text
    url = found[1]
    while not any(p.thread_id for p in await store.web_posts("s1")):
        await asyncio.sleep(0.01)
    print(json.dumps({"url": url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await engine.stop()
    await web.stop()
    await store.close()


# -- the crowd (this process) ----------------------------------------------------------------------


class Crowd:
    """Browsers over one connection pool: one browser answers (its cookie), the readers (another) read."""

    def __init__(self, url: str, connections: int) -> None:
        self.url = url
        limits = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
        self.http = aiohttp.ClientSession(
            connector=limits, cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60)
        )
        # The readers have not answered on the page: they are most of a page's visitors.
        self.readers = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        self.csrf = ""
        self.thread = ""

    async def prime(self) -> None:
        async with self.http.get(self.url) as response:
            page = await response.text()
        csrf, thread = _CSRF.search(page), _THREAD.search(page)
        assert csrf is not None, page[:500]
        assert thread is not None, page[:500]
        self.csrf, self.thread = csrf[1], thread[1]

    async def get(self) -> float:
        started = time.perf_counter()
        async with self.readers.get(self.url) as response:
            await response.read()
            assert response.status == 200, response.status
        return time.perf_counter() - started

    async def answer(self, text: str) -> float:
        form = {"csrf": self.csrf, "thread": self.thread, "name": "Bench", "text": text, "consent": "yes"}
        started = time.perf_counter()
        async with self.http.post(self.url + "/answer", data=form, headers={"Accept": "application/json"}) as r:
            body = await r.json()
            assert r.status == 200, body
            assert body["ok"], body
        return time.perf_counter() - started

    async def close(self) -> None:
        await self.http.close()
        await self.readers.close()


async def _gets(crowd: Crowd, clients: int, gets: int, think: float) -> list[float]:
    """``clients`` browsers at once, each loading the page ``gets`` times, ``think`` seconds apart on
    average (uniformly 0 to twice that, and as much before the first): people reading a page."""
    chance = random.Random(15)

    async def browser() -> list[float]:
        times = []
        for _ in range(gets):
            await asyncio.sleep(chance.uniform(0, 2 * think))
            times.append(await crowd.get())
        return times

    return [t for times in await asyncio.gather(*(browser() for _ in range(clients))) for t in times]


async def _burst(crowd: Crowd, clients: int) -> float:
    """Every client loads the page at the same moment, once: pages per second (the server's ceiling)."""
    started = time.perf_counter()
    await asyncio.gather(*(crowd.get() for _ in range(clients)))
    return clients / (time.perf_counter() - started)


async def _posts(crowd: Crowd, rate: int, seconds: float) -> list[float]:
    count = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(crowd.answer(f"answer {i} at {rate}/s")))
    return list(await asyncio.gather(*tasks))


async def _fan_out(url: str, crowd: Crowd, live: int) -> float:
    received: list[float] = []
    connected = 0
    everyone = asyncio.Event()
    marker = "fan-out-marker"
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=live + 10, limit_per_host=live + 10),
        timeout=aiohttp.ClientTimeout(total=120),
    )

    async def page() -> None:
        nonlocal connected
        async with session.get(url + "/live") as response:
            connected += 1
            async for line in response.content:
                if marker.encode() in line:
                    received.append(time.perf_counter())
                    if len(received) == live:
                        everyone.set()
                    return

    try:
        pages = [asyncio.create_task(page()) for _ in range(live)]
        while connected < live:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the last streams' first bytes are written
        sent = time.perf_counter()
        await crowd.answer(marker)
        await asyncio.wait_for(everyone.wait(), 60)
        await asyncio.gather(*pages)
        return max(received) - sent
    finally:
        await session.close()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _drive(
    url: str, pid: int, *, clients: int, gets: int, think: float, rate: int, seconds: float, live: int, seed: int
) -> dict[str, Any]:
    crowd = Crowd(url, max(clients, 64))
    try:
        await crowd.prime()
        for i in range(seed):  # a page with answers on it, as a real one has
            await crowd.answer(f"an earlier answer, number {i}, with a few words in it")
        await _burst(crowd, clients)  # warm-up: every client's connection open, the page made
        burst = await _burst(crowd, clients)
        get_times = await _gets(crowd, clients, gets, think)
        post_times = await _posts(crowd, rate, seconds)
        fan_out = await _fan_out(url, crowd, live)
    finally:
        await crowd.close()
    return {
        "clients": clients,
        "gets": len(get_times),
        "get_p50_ms": percentile(get_times, 50) * 1000,
        "get_p99_ms": percentile(get_times, 99) * 1000,
        "think_s": think,
        "burst_per_s": burst,
        "rate": rate,
        "posts": len(post_times),
        "post_p50_ms": percentile(post_times, 50) * 1000,
        "post_p99_ms": percentile(post_times, 99) * 1000,
        "live": live,
        "fan_out_s": fan_out,
        "rss_mb": _peak_rss_mb(pid),
    }


def run(
    clients: int = 500,
    gets: int = 5,
    think: float = 1.0,
    rate: int = 200,
    seconds: float = 5.0,
    live: int = 1000,
    seed: int = 100,
) -> dict[str, Any]:
    _raise_file_limit()
    with tempfile.TemporaryDirectory(prefix="popup-bench-web-") as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.web", "--serve", tmp],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the bench server did not start")
            url = json.loads(line)["url"]
            return asyncio.run(
                _drive(
                    url,
                    server.pid,
                    clients=clients,
                    gets=gets,
                    think=think,
                    rate=rate,
                    seconds=seconds,
                    live=live,
                    seed=seed,
                )
            )
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def report(r: dict[str, Any]) -> str:
    return (
        f"web: page GET p99 {r['get_p99_ms']:.1f} ms (p50 {r['get_p50_ms']:.1f}) with {r['clients']} clients "
        f"reading (a load every ~{r['think_s']:.0f} s each) [target < 50], {r['burst_per_s']:.0f} pages/s when all "
        f"load at once; answers at {r['rate']}/s POST→stored p99 {r['post_p99_ms']:.1f} ms "
        f"(p50 {r['post_p50_ms']:.1f}) [< 100]; {r['live']} live pages have a new reply in "
        f"{r['fan_out_s'] * 1000:.0f} ms [< 1000]; server peak RSS {r['rss_mb']:.0f} MB [< 250]"
    )


def main() -> None:
    if "--serve" in sys.argv:
        _raise_file_limit()
        asyncio.run(serve(Path(sys.argv[sys.argv.index("--serve") + 1])))
        return
    results = run(clients=flag("clients", 500), gets=flag("gets", 5), rate=flag("rate", 200), live=flag("live", 1000))
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()
