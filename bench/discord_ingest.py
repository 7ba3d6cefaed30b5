"""Discord ingest: a real ``discord.Client`` fed thread replies as MESSAGE_CREATE dispatches.

The bot is built as ``popup run`` builds it (:class:`adapters.discord.adapter.DiscordAdapter` with
the engine and the SQLite store). The fake gateway and REST API of the adapter tests run in a
child process (so generating the traffic does not steal the bot's loop); once the session's
prompt threads are open the child dispatches the replies back to back, as fast as its websocket
takes them. Figures: replies/s from the first dispatch until the last reply is durably stored
(wall clock, both processes on one machine), and the bot process's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, flag, peak_rss_mb, plan
from bot.loop import run as run_loop
from bot.loop import tune_for_serving

PROMPTS = 5
USERS = 300


# -- the fake Discord (child process) ---------------------------------------------------------------


async def _fake_main() -> None:
    from tests.fakes.discord_server import FakeDiscord, User

    fake = FakeDiscord()
    await fake.start()
    users = [User(id=fake.snowflake(), username=f"member{i}") for i in range(USERS)]
    info = {
        "api": fake.api_base_url,
        "gateway": fake.gateway_url,
        "token": fake.token,
        "guild_id": fake.guild_id,
        "channel_id": fake.channel_id,
    }
    print(json.dumps(info), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    command = (await reader.readline()).decode().split()
    count = int(command[1])
    while len(fake.threads) < PROMPTS:
        await asyncio.sleep(0.01)
    threads = sorted(fake.threads)
    first = time.time()
    for i in range(count):
        await fake.say(threads[i % PROMPTS], users[i % USERS], f"Reply {i}: what I learned today is to ask early")
    print(json.dumps({"first": first, "last": time.time(), "sent": count}), flush=True)
    await reader.readline()  # "quit" (or EOF)
    await fake.close()


# -- the bot side -----------------------------------------------------------------------------------


def _count(db_path: Path) -> int:
    db = sqlite3.connect(db_path)
    try:
        (count,) = db.execute("SELECT count(*) FROM replies").fetchone()
        return int(count)
    finally:
        db.close()


async def _bot(folder: Path, replies: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from adapters.discord.adapter import DiscordAdapter
    from adapters.discord.settings import DiscordSettings
    from sessions.engine import Engine, EngineSettings
    from sessions.model import ChannelRef, CommandInvoked, Member
    from sessions.wakeups import Wakeups, utc_now
    from storage.sqlite import SqliteStore

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.discord_ingest", "--fake",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    info = json.loads(await child.stdout.readline())
    db_path = folder / "discord.db"
    store = await SqliteStore.open(db_path)
    settings = DiscordSettings(
        enabled=True,
        guild_ids=(int(info["guild_id"]),),
        api_base_url=info["api"],
        gateway_url=info["gateway"],
        token=info["token"],
    )
    adapter = DiscordAdapter(settings, plan_names=["discord"])  # as bot.app.build_adapters does
    engine = Engine(
        store=store,
        ports={"discord": adapter},
        plans=[plan("discord", ["+0s"] * PROMPTS)],
        settings=EngineSettings(default_plan="discord"),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    try:
        await adapter.start(engine)
        await engine.start()
        tune_for_serving()  # as `popup run` does once started
        answer = await engine.on_command(
            CommandInvoked(
                channel=ChannelRef(platform="discord", channel_id=str(info["channel_id"])),
                member=Member(platform="discord", user_id="1", display_name="Org", is_admin=True),
                name="start",
                at=datetime.now(UTC),
            )
        )
        assert answer.text.startswith("Started session #1"), answer.text
        for _ in range(1000):
            if len([p for p in await store.posts(1) if p.thread is not None]) == PROMPTS:
                break
            await asyncio.sleep(0.01)
        rss_before = peak_rss_mb()
        child.stdin.write(f"go {replies}\n".encode())
        await child.stdin.drain()
        sent = json.loads(await child.stdout.readline())
        deadline = time.time() + 120
        stored = 0
        while True:
            stored = await asyncio.to_thread(_count, db_path)
            if stored >= replies or time.time() > deadline:
                break
            await asyncio.sleep(0.02)
        done = time.time()
        if stored < replies:
            raise RuntimeError(f"only {stored} of {replies} replies were stored")
        return {
            "replies": replies,
            "per_s": replies / (done - sent["first"]),
            "dispatch_per_s": replies / (sent["last"] - sent["first"]),
            "seconds": done - sent["first"],
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": rss_before,
        }
    finally:
        await adapter.stop()
        await engine.stop()
        await store.close()
        child.stdin.write(b"quit\n")
        await child.stdin.drain()
        await child.wait()


def run(replies: int = 30_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-discord-") as tmp:
        return run_loop(_bot(Path(tmp), replies))


def report(r: dict[str, Any]) -> str:
    return (
        f"discord ingest: {r['replies']:,} MESSAGE_CREATE thread replies through a real discord.Client\n"
        f"  stored {r['per_s']:,.0f} replies/s (first dispatch → last durable; {r['seconds']:.2f} s); the fake "
        f"dispatched at {r['dispatch_per_s']:,.0f}/s\n"
        f"  bot peak RSS {r['peak_rss_mb']:.0f} MB ({r['rss_before_mb']:.0f} MB before the replies)"
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--fake"]:
        run_loop(_fake_main())
        return 0
    results = run(replies=flag("replies", 30_000))
    print(report(results), flush=True)
    emit(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
